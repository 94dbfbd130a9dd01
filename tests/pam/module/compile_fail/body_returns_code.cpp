// A module body returns the PAM code that libpam receives.
#include <handoff/pam_module.hpp>
int entry(pam_handle_t* pamh) {
#ifdef HANDOFF_EXPECT_FAIL
    return handoff::pam::guarded(pamh, "entry", [] {});
#else
    return handoff::pam::guarded(pamh, "entry", [] { return PAM_SUCCESS; });
#endif
}
