// A data deleter runs inside libpam (pam_end, pam_set_data), where nothing may
// unwind: one that may throw is refused before it can end the process.
#include <handoff/pam_module.hpp>
#include <memory>
struct careless_deleter {
    void operator()(int* p) const { delete p; }  // not noexcept
};
struct careful_deleter {
    void operator()(int* p) const noexcept { delete p; }
};
constexpr handoff::pam::data_key<int> key{"test.int"};
int store(handoff::pam::module_handle h) {
#ifdef HANDOFF_EXPECT_FAIL
    return h.try_set_data(key, std::unique_ptr<int, careless_deleter>(new int(1))).code();
#else
    return h.try_set_data(key, std::unique_ptr<int, careful_deleter>(new int(1))).code();
#endif
}
