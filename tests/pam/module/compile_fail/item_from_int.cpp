// The item calls take pam::item or module_item, never a plain int such as
// PAM_CONV (whose value is no string).
#include <handoff/pam_module.hpp>
bool has_user(handoff::pam::module_handle h) {
#ifdef HANDOFF_EXPECT_FAIL
    return h.get_item(PAM_USER).has_value();
#else
    return h.get_item(handoff::pam::item::user).has_value();
#endif
}
