/* Completes README.md's hand-written C conversation: show() and ask(), then
   a call with an info message and a prompt, as libpam makes it. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show(const char* text, void* data) {
    (void)data;
    printf("shown: %s\n", text);
}

static const char* ask(const char* prompt, int echo, void* data) {
    (void)data;
    printf("asked: %s (echo %s)\n", prompt, echo ? "on" : "off");
    return "secret";
}

#include DOC_BLOCK

int main(void) {
    const struct pam_message info = {PAM_TEXT_INFO, "hello"};
    const struct pam_message prompt = {PAM_PROMPT_ECHO_OFF, "Password: "};
    const struct pam_message* msgs[] = {&info, &prompt};
    struct pam_response* resp = NULL;
    if (conv(2, msgs, &resp, NULL) != PAM_SUCCESS) return 1;
    printf("answer: %s\n", resp[1].resp);
    free(resp[1].resp);
    free(resp);
    return 0;
}
