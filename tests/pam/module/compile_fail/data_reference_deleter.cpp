// libpam keeps the owner until pam_end, long after the body returns: a
// reference deleter would refer to an object that is gone by then.
#include <handoff/pam_module.hpp>
#include <memory>
struct counting_deleter {
    void operator()(int* p) const noexcept { delete p; }
};
constexpr handoff::pam::data_key<int> key{"test.int"};
int store(handoff::pam::module_handle h) {
    counting_deleter d;
#ifdef HANDOFF_EXPECT_FAIL
    return h.try_set_data(key, std::unique_ptr<int, counting_deleter&>(new int(1), d)).code();
#else
    return h.try_set_data(key, std::unique_ptr<int, counting_deleter>(new int(1), d)).code();
#endif
}
