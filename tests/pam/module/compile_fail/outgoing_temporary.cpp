// A message's text is not copied: a temporary string would be gone before the call.
#include <handoff/pam_module.hpp>
#include <string>
int send(handoff::pam::module_handle h, const std::string& kept) {
#ifdef HANDOFF_EXPECT_FAIL
    return h.try_converse({handoff::pam::outgoing::info(kept + "!")}).code();
#else
    return h.try_converse({handoff::pam::outgoing::info(kept)}).code();
#endif
}
