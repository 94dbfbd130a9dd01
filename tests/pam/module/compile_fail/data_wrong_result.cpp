// get_data returns the key's type; it cannot be read as another.
#include <handoff/pam_module.hpp>
constexpr handoff::pam::data_key<int> key{"test.int"};
bool read(handoff::pam::module_handle h) {
#ifdef HANDOFF_EXPECT_FAIL
    long* p = h.get_data(key);
#else
    int* p = h.get_data(key);
#endif
    return p != nullptr;
}
