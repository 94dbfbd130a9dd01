/* pam_c_demo.so: the demo module (examples/pam_module/pam_handoff_demo.cpp)
 * written again in C, the way Linux-PAM's own modules are written: pam_info
 * and pam_prompt (one message per conversation call), pam_get_data /
 * pam_set_data for the failure count, pam_fail_delay. Test-only: the
 * differential test (differential.py) runs it and the demo under the same
 * hostile applications (hostile_app.cpp).
 *
 *   auth  required  pam_c_demo.so code=<string>
 *
 * It keeps its count under the demo's data name, so that an application
 * touching that name meets both modules alike. Written as a careful C module
 * author would, no more: it checks what pam_prompt returns, maps
 * PAM_CONV_AGAIN to PAM_INCOMPLETE and wipes the answer; like most C modules
 * it keeps the pam_get_data pointer across the conversation. */
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define ATTEMPTS_NAME "pam_handoff_demo.attempts"

static void free_attempts(pam_handle_t* pamh, void* data, int error_status) {
    (void)pamh;
    (void)error_status;
    free(data);
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) {
    const char* code = NULL;
    const void* stored = NULL;
    unsigned* failed = NULL;
    char* answer = NULL;
    int rc = PAM_SUCCESS;
    int i = 0;
    int right = 0;

    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "code=", 5) == 0) {
            code = argv[i] + 5;
            break;
        }
    }
    if (code == NULL || *code == '\0') {
        pam_syslog(pamh, LOG_ERR, "no code= argument in the service file");
        return PAM_SERVICE_ERR;
    }

    if (pam_get_data(pamh, ATTEMPTS_NAME, &stored) == PAM_SUCCESS && stored != NULL) {
        failed = (unsigned*)stored; /* trusts whatever the name holds */
    }
    if (!(flags & PAM_SILENT)) {
        if (failed != NULL && *failed > 0) {
            (void)pam_info(pamh, "%u failed attempt%s so far.", *failed, *failed == 1 ? "" : "s");
        } else {
            (void)pam_info(pamh, "%s", "Enter the code.");
        }
    }

    rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "%s", "Code: ");
    if (rc == PAM_CONV_AGAIN) return PAM_INCOMPLETE;
    if (rc != PAM_SUCCESS || answer == NULL) {
        if (answer != NULL) free(answer);
        return PAM_CONV_ERR;
    }
    right = strcmp(answer, code) == 0;
    explicit_bzero(answer, strlen(answer));
    free(answer);
    if (right) return PAM_SUCCESS;

    if (failed == NULL) {
        failed = calloc(1, sizeof *failed);
        if (failed == NULL) return PAM_BUF_ERR;
        if (pam_set_data(pamh, ATTEMPTS_NAME, failed, free_attempts) != PAM_SUCCESS) {
            free(failed);
            return PAM_BUF_ERR;
        }
    }
    ++*failed;
    (void)pam_fail_delay(pamh, 2000000);
    return PAM_AUTH_ERR;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t* pamh, int flags, int argc, const char** argv) {
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_SUCCESS;
}
