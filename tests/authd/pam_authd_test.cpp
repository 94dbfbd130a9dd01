// A PAM module for authd's tests, for what no stock module does. The first
// argument names the case:
//   setcred_fails  authentication succeeds, pam_setcred fails (PAM_CRED_ERR)
//   visible        one visible prompt "Name: ", which must be answered "alice"
//   expired        pam_acct_mgmt says the password has expired
//                  (PAM_NEW_AUTHTOK_REQD); authentication succeeds
//   any            one secret prompt "Password: ", any answer accepted; the
//                  answer is wiped before it is freed and kept nowhere (so a
//                  scan of the application's memory finds only its copies)
// SPDX-License-Identifier: MIT
#include <security/pam_appl.h>
#include <security/pam_modules.h>

#include <cstdlib>
#include <cstring>

namespace {

bool is(const char* a, const char* b) { return a != nullptr && std::strcmp(a, b) == 0; }

const char* mode_of(int argc, const char** argv) { return argc > 0 ? argv[0] : ""; }

}  // namespace

extern "C" {

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int, int argc, const char** argv) {
    const bool visible = is(mode_of(argc, argv), "visible");
    const bool any = is(mode_of(argc, argv), "any");
    if (!visible && !any) return PAM_SUCCESS;
    const void* item = nullptr;
    if (pam_get_item(pamh, PAM_CONV, &item) != PAM_SUCCESS || item == nullptr) return PAM_CONV_ERR;
    const auto* conv = static_cast<const pam_conv*>(item);
    pam_message m{visible ? PAM_PROMPT_ECHO_ON : PAM_PROMPT_ECHO_OFF,
                  visible ? "Name: " : "Password: "};
    const pam_message* p[1] = {&m};
    pam_response* r = nullptr;
    const int rc = conv->conv(1, p, &r, conv->appdata_ptr);
    bool ok = rc == PAM_SUCCESS && r != nullptr && (any || is(r[0].resp, "alice"));
    if (r != nullptr) {
        if (r[0].resp != nullptr) explicit_bzero(r[0].resp, std::strlen(r[0].resp));
        std::free(r[0].resp);
        std::free(r);
    }
    return ok ? PAM_SUCCESS : PAM_AUTH_ERR;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t*, int, int argc, const char** argv) {
    return is(mode_of(argc, argv), "setcred_fails") ? PAM_CRED_ERR : PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t*, int, int argc, const char** argv) {
    return is(mode_of(argc, argv), "expired") ? PAM_NEW_AUTHTOK_REQD : PAM_SUCCESS;
}

}  // extern "C"
