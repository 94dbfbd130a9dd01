// A consumer of handoff-pam: drives the adapter's C function directly, so it
// needs libpam to link but no PAM service to run.
#include <handoff/pam.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main() {
    namespace pam = handoff::pam;
    pam::conversation conv(pam::scripted({"answer"}));
    ::pam_message prompt{PAM_PROMPT_ECHO_OFF, "Password: "};
    const ::pam_message* msgs[] = {&prompt};
    ::pam_response* resp = nullptr;
    ::pam_conv c = conv.c_conv();
    if (c.conv(1, msgs, &resp, c.appdata_ptr) != PAM_SUCCESS) return 1;
    bool ok = std::strcmp(resp[0].resp, "answer") == 0;
    std::free(resp[0].resp);
    std::free(resp);
    std::printf("handoff-pam: %s\n", ok ? "ok" : "wrong answer");
    return ok ? 0 : 1;
}
