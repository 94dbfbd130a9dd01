// A PAM application whose conversation misbehaves in one chosen way, for the
// differential test (differential.py): the same case is run against the
// demo module and against its C twin (pam_c_demo.c), and what each one did is
// compared.
//
//   hostile_app SERVICE CASE
//
// Prints "codes: N[,N...]" (what pam_authenticate returned, once per attempt;
// "cancelled" for a thread cancelled in the conversation) and exits 0, unless
// the process dies first. The cases are listed in `cases` below.
#include <security/pam_appl.h>
#include <security/pam_modules.h>  // pam_set_data, called from inside the conversation

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

namespace {

const char* const data_name = "pam_handoff_demo.attempts";  // both modules' name
// The cancel case: a pipe to the main thread (the conversation's only way out).
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int inside_conversation[2] = {-1, -1};

struct app_state {
    std::string_view mode;
    pam_handle_t* pamh = nullptr;
    int attempt = 0;  // 1-based number of the pam_authenticate call running
};

char* copy(const char* text) {
    const std::size_t n = std::strlen(text) + 1;
    char* out = static_cast<char*>(std::malloc(n));
    if (out != nullptr) std::memcpy(out, text, n);
    return out;
}

bool is_prompt(const pam_message* m) {
    return m->msg_style == PAM_PROMPT_ECHO_OFF || m->msg_style == PAM_PROMPT_ECHO_ON;
}

void free_foreign(pam_handle_t*, void* data, int) { std::free(data); }

// A well-behaved reply: the answer to each prompt, nothing for messages.
int answer(int n, const pam_message** msg, pam_response** resp, const char* text) {
    auto* r =
        static_cast<pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        if (is_prompt(msg[i])) r[i].resp = copy(text);
    }
    *resp = r;
    return PAM_SUCCESS;
}

int conv(int n, const pam_message** msg, pam_response** resp, void* data) {
    auto* app = static_cast<app_state*>(data);
    const std::string_view m = app->mode;
    bool prompts = false;
    for (int i = 0; i < n; ++i) prompts = prompts || is_prompt(msg[i]);

    if (m == "right") return answer(n, msg, resp, "1234");
    if (m == "wrong") return answer(n, msg, resp, "9999");
    if (m == "null_resp") return PAM_SUCCESS;  // *resp left NULL
    if (m == "null_answer") {
        // An array, every slot NULL: the prompt is not answered.
        auto* r = static_cast<pam_response*>(
            std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        *resp = r;
        return PAM_SUCCESS;
    }
    if (m == "conv_again") return PAM_CONV_AGAIN;
    if (m == "buf_err") return PAM_BUF_ERR;
    if (m == "garbage") {
        // Every slot answered (messages too) with bytes that are no text,
        // and a resp_retcode no conversation may set.
        auto* r = static_cast<pam_response*>(
            std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        for (int i = 0; i < n; ++i) {
            r[i].resp = static_cast<char*>(std::malloc(100));
            if (r[i].resp != nullptr) {
                for (int j = 0; j < 99; ++j) r[i].resp[j] = static_cast<char>(0x80 + (j * 7) % 127);
                r[i].resp[99] = '\0';
            }
            r[i].resp_retcode = 0x5a5a5a5a;
        }
        *resp = r;
        return PAM_SUCCESS;
    }
    if (m == "wrong_count") {
        // One pam_response fewer than num_msg (the prompts among them answered).
        auto* r = static_cast<pam_response*>(
            std::malloc(static_cast<std::size_t>(n - 1) * sizeof(pam_response) + 1));
        if (r == nullptr) return PAM_BUF_ERR;
        for (int i = 0; i + 1 < n; ++i) {
            r[i] = pam_response{is_prompt(msg[i]) ? copy("1234") : nullptr, 0};
        }
        *resp = r;
        return PAM_SUCCESS;
    }
    if (m == "unterminated") {
        // The prompt's answer: 600 bytes and no NUL anywhere.
        auto* r = static_cast<pam_response*>(
            std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        for (int i = 0; i < n; ++i) {
            if (!is_prompt(msg[i])) continue;
            r[i].resp = static_cast<char*>(std::malloc(600));
            if (r[i].resp != nullptr) std::memset(r[i].resp, 'x', 600);
        }
        *resp = r;
        return PAM_SUCCESS;
    }
    if (m == "set_data_reentry") {
        // Attempt 1: a wrong code (the module stores its count). Attempt 2:
        // while the prompt waits, the conversation stores one byte of its own
        // under the module's data name (libpam allows it: the call comes from
        // inside the module), then answers wrongly. Attempt 3: the right code.
        if (app->attempt == 2 && prompts) {
            void* mine = std::malloc(1);
            if (mine != nullptr &&
                pam_set_data(app->pamh, data_name, mine, free_foreign) != PAM_SUCCESS) {
                std::free(mine);
            }
        }
        return answer(n, msg, resp, app->attempt == 3 ? "1234" : "9999");
    }
    if (m == "pam_end_inside") {
        // Ends the transaction from inside the conversation (libpam refuses),
        // then answers rightly.
        (void)pam_end(app->pamh, PAM_SUCCESS);
        return answer(n, msg, resp, "1234");
    }
    if (m == "cancel") {
        // Waits for an answer that never comes; the main thread, told that
        // the wait began, cancels this one (poll is a cancellation point).
        if (prompts) {
            (void)!write(inside_conversation[1], "!", 1);
            for (;;) (void)poll(nullptr, 0, 1000);
        }
        return answer(n, msg, resp, "1234");
    }
    return PAM_CONV_ERR;
}

// libpam would sleep for the modules' fail delay: the test has no time for it.
void no_delay(int, unsigned, void*) {}

struct run_state {
    app_state app;
    const char* service = nullptr;
    std::string codes;
};

// A cancelled transaction's handle, kept reachable (pam_end refuses it).
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): read by the leak checker
pam_handle_t* abandoned = nullptr;

void* run(void* arg) {
    auto* s = static_cast<run_state*>(arg);
    pam_conv c{&conv, &s->app};
    if (pam_start(s->service, "alice", &c, &s->app.pamh) != PAM_SUCCESS) {
        s->codes = "pam_start failed";
        (void)close(inside_conversation[1]);
        return nullptr;
    }
    abandoned = s->app.pamh;
    void (*delay)(int, unsigned, void*) = &no_delay;
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): PAM_FAIL_DELAY's C API
    (void)pam_set_item(s->app.pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(delay));
    const int attempts = s->app.mode == "set_data_reentry" ? 3 : 1;
    int last = PAM_SUCCESS;
    for (int i = 1; i <= attempts; ++i) {
        s->app.attempt = i;
        last = pam_authenticate(s->app.pamh, 0);
        if (!s->codes.empty()) s->codes += ",";
        s->codes += std::to_string(last);
    }
    (void)pam_end(s->app.pamh, last);
    abandoned = nullptr;
    (void)close(inside_conversation[1]);  // the main thread waits no longer
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: hostile_app SERVICE CASE\n");
        return 2;
    }
    run_state s;
    s.service = argv[1];
    s.app.mode = argv[2];
    if (pipe(inside_conversation) != 0) return 2;
    pthread_t t{};
    if (pthread_create(&t, nullptr, &run, &s) != 0) return 2;
    if (s.app.mode == "cancel") {
        char byte = 0;
        if (read(inside_conversation[0], &byte, 1) == 1) (void)pthread_cancel(t);
    }
    void* result = nullptr;
    (void)pthread_join(t, &result);
    if (result == PTHREAD_CANCELED) s.codes = "cancelled";
    std::printf("codes: %s\n", s.codes.c_str());
    return 0;
}
