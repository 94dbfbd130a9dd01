// A consumer of the PAM headers (handoff::pam, handoff-pam.pc, dependency
// 'handoff-pam', or the headers vendored with -lpam). It drives the adapter's
// C function directly, then, given a PAM configuration directory, runs a real
// transaction through pam_start_confdir whose handler the caller keeps and
// reads afterwards through std::ref.
//
// usage: pam_app CONFDIR    (CONFDIR holds the service "handoff-consumer")
#include <handoff/pam.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

namespace pam = handoff::pam;

namespace {

bool adapter_answers() {
    pam::conversation conv(pam::scripted({"answer"}));
    ::pam_message prompt{PAM_PROMPT_ECHO_OFF, "Password: "};
    const ::pam_message* msgs[] = {&prompt};
    ::pam_response* resp = nullptr;
    ::pam_conv c = conv.c_conv();
    if (c.conv(1, msgs, &resp, c.appdata_ptr) != PAM_SUCCESS) return false;
    bool ok = std::strcmp(resp[0].resp, "answer") == 0;
    std::free(resp[0].resp);
    std::free(resp);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CONFDIR\n", argv[0]);
        return 2;
    }
    if (!adapter_answers()) {
        std::printf("adapter: wrong answer\n");
        return 1;
    }
    std::printf("adapter: ok\n");

#if HANDOFF_PAM_HAS_START_CONFDIR
    pam::scripted script({});
    {
        pam::transaction tx("handoff-consumer", "alice", std::ref(script),
                            pam::start_options{argv[1]});
        pam::status s = tx.authenticate();
        if (!s) {
            std::printf("transaction: %s\n", s.message());
            return 1;
        }
    }
    // pam_echo's info message reached the handler the caller still owns.
    if (script.transcript().size() != 1 || script.transcript()[0] != "handoff consumer alice") {
        std::printf("transaction: the handler did not see pam_echo's message\n");
        return 1;
    }
    std::printf("transaction via pam_start_confdir: ok\n");
#else
    std::printf("transaction: HANDOFF_PAM_HAS_START_CONFDIR is 0\n");
#endif
    return 0;
}
