// A PAM module of our own that sends what no stock module sends, to test
// conversations through the real libpam: several messages in one call, NULL
// texts, unknown styles, bad counts, a NULL entry, and info messages with no
// reply slot. The first module argument names the case. The module checks
// the conversation's answer itself and returns PAM_SUCCESS when it was right:
// answers where they belong for "multi", success without writing for
// "info_null_resp", and PAM_CONV_ERR with *resp untouched for the bad inputs.
// Three cases misbehave the way a module can take its process down, for the
// worker-process tests: "crash" (SIGSEGV), "exit" (exit(3) from inside
// pam_authenticate) and "hang" (never returns).
#include <security/pam_appl.h>
#include <security/pam_modules.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include <unistd.h>
#include <vector>

namespace {

int converse(pam_handle_t* pamh, int n, const pam_message** msg, pam_response** resp) {
    const void* item = nullptr;
    if (pam_get_item(pamh, PAM_CONV, &item) != PAM_SUCCESS || item == nullptr) return PAM_CONV_ERR;
    const pam_conv* conv = static_cast<const pam_conv*>(item);
    if (conv->conv == nullptr) return PAM_CONV_ERR;
    return conv->conv(n, msg, resp, conv->appdata_ptr);
}

void free_reply(pam_response* r, int n) {
    if (r == nullptr) return;
    for (int i = 0; i < n; ++i) std::free(r[i].resp);
    std::free(r);
}

// The conversation must refuse: PAM_CONV_ERR and *resp not written.
int expect_refusal(pam_handle_t* pamh, int n, const pam_message** msg) {
    pam_response sentinel_storage{};
    pam_response* const sentinel = &sentinel_storage;
    pam_response* r = sentinel;
    int rc = converse(pamh, n, msg, &r);
    if (rc == PAM_CONV_ERR && r == sentinel) return PAM_SUCCESS;
    if (r != sentinel) free_reply(r, n > 0 && n <= PAM_MAX_NUM_MSG ? n : 0);
    return PAM_AUTH_ERR;
}

bool is(const char* a, const char* b) { return a != nullptr && std::strcmp(a, b) == 0; }

}  // namespace

extern "C" {

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int, int argc, const char** argv) {
    const char* mode = argc > 0 ? argv[0] : "multi";
    if (is(mode, "multi")) {
        pam_message m[3] = {{PAM_TEXT_INFO, "three messages in one call"},
                            {PAM_PROMPT_ECHO_ON, "Login: "},
                            {PAM_PROMPT_ECHO_OFF, "Password: "}};
        const pam_message* p[3] = {&m[0], &m[1], &m[2]};
        pam_response* r = nullptr;
        int rc = converse(pamh, 3, p, &r);
        if (rc != PAM_SUCCESS || r == nullptr) return PAM_AUTH_ERR;
        bool ok = r[0].resp == nullptr && is(r[1].resp, "alice") && is(r[2].resp, "secret");
        free_reply(r, 3);
        return ok ? PAM_SUCCESS : PAM_AUTH_ERR;
    }
    if (is(mode, "info_null_resp")) {
        pam_message m{PAM_TEXT_INFO, "an info message with nowhere to reply"};
        const pam_message* p[1] = {&m};
        return converse(pamh, 1, p, nullptr) == PAM_SUCCESS ? PAM_SUCCESS : PAM_AUTH_ERR;
    }
    if (is(mode, "null_text")) {
        pam_message m{PAM_PROMPT_ECHO_OFF, nullptr};
        const pam_message* p[1] = {&m};
        return expect_refusal(pamh, 1, p);
    }
    if (is(mode, "bad_style")) {
        pam_message m{42, "what style is this?"};
        const pam_message* p[1] = {&m};
        return expect_refusal(pamh, 1, p);
    }
    if (is(mode, "null_entry")) {
        pam_message m{PAM_PROMPT_ECHO_ON, "first"};
        const pam_message* p[2] = {&m, nullptr};
        return expect_refusal(pamh, 2, p);
    }
    if (is(mode, "zero")) {
        pam_message m{PAM_PROMPT_ECHO_ON, "never shown"};
        const pam_message* p[1] = {&m};
        return expect_refusal(pamh, 0, p);
    }
    if (is(mode, "too_many")) {
        std::vector<pam_message> m(PAM_MAX_NUM_MSG + 1, pam_message{PAM_PROMPT_ECHO_ON, "q"});
        std::vector<const pam_message*> p;
        p.reserve(m.size());
        for (const pam_message& each : m) p.push_back(&each);
        return expect_refusal(pamh, static_cast<int>(p.size()), p.data());
    }
    if (is(mode, "crash")) static_cast<void>(std::raise(SIGSEGV));
    if (is(mode, "exit")) std::exit(3);
    if (is(mode, "hang")) {
        for (;;) ::pause();
    }
    return PAM_SERVICE_ERR;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t*, int, int, const char**) { return PAM_SUCCESS; }

}  // extern "C"
