// A key binds its name to one type: an owner of another type does not fit.
#include <handoff/pam_module.hpp>
#include <memory>
constexpr handoff::pam::data_key<int> key{"test.int"};
int store(handoff::pam::module_handle h) {
#ifdef HANDOFF_EXPECT_FAIL
    return h.try_set_data(key, std::make_unique<long>(1)).code();
#else
    return h.try_set_data(key, std::make_unique<int>(1)).code();
#endif
}
