// terminal_prompt: pam::terminal used directly, as a host program would, for
// the pty tests (tests/pam/terminal_signals.py). No libpam call: the
// conversation's C function is called the way libpam calls it.
//
//   terminal_prompt [options]
//     --echo-on          an echo-on prompt instead of an echo-off one
//     --prompts N        N prompts in one conversation call ("Password N: ")
//     --timeout MS       terminal_options::timeout_ms
//     --reraise          interrupt_action::reraise (SIGINT re-sent)
//     --stdin            input_source::standard_input
//     --ignore SIG       the process ignores SIG (HUP, TERM, ...) before prompting
//     --host-handler SIG the process has its own handler for SIG
//     --in-thread        prompt from a second thread; the main thread waits in join
//     --two-threads      two threads prompt at the same time ("First: ", "Second: ")
//
// Prints "answer N: TEXT" for each answer and "failure: WHY" when the call
// fails; exit 0 when every call succeeded, 1 otherwise.
#include <handoff/pam.hpp>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

namespace pam = handoff::pam;

// A whole decimal number, or exit 2.
int number(const char* text) {
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < INT_MIN || value > INT_MAX) {
        std::fprintf(stderr, "terminal_prompt: not a number: %s\n", text);
        std::exit(2);
    }
    return static_cast<int>(value);
}

int signal_named(const char* name) {
    static const std::pair<const char*, int> names[] = {
        {"ALRM", SIGALRM}, {"HUP", SIGHUP},   {"INT", SIGINT},
        {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT}, {"TERM", SIGTERM},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    };
    for (const auto& [n, v] : names) {
        if (std::strcmp(n, name) == 0) return v;
    }
    std::fprintf(stderr, "terminal_prompt: unknown signal %s\n", name);
    std::exit(2);
}

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a signal handler's record
volatile std::sig_atomic_t host_saw = 0;
extern "C" void host_handler(int sig) { host_saw = sig; }

struct settings {
    bool echo_on = false;
    int prompts = 1;
    pam::terminal_options options;
};

// One conversation call with `count` prompts, as libpam makes it.
int converse(pam::conversation<pam::terminal>& conv, const std::vector<std::string>& texts,
             bool echo_on, std::FILE* out) {
    std::vector<::pam_message> storage(texts.size());
    std::vector<const ::pam_message*> msgs(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        storage[i].msg_style = echo_on ? PAM_PROMPT_ECHO_ON : PAM_PROMPT_ECHO_OFF;
        storage[i].msg = texts[i].c_str();
        msgs[i] = &storage[i];
    }
    ::pam_conv c = conv.c_conv();
    ::pam_response* resp = nullptr;
    int rc = c.conv(static_cast<int>(texts.size()), msgs.data(), &resp, c.appdata_ptr);
    if (host_saw != 0) std::fprintf(out, "host handler ran: %d\n", static_cast<int>(host_saw));
    if (rc != PAM_SUCCESS) {
        std::fprintf(out, "failure: %s\n", pam::to_string(conv.last_failure()));
        static_cast<void>(std::fflush(out));  // the harness reads what arrived
        return 1;
    }
    // Wiped and freed the way the adapter's array does it.
    pam::response_array answers = pam::response_array::adopt(resp, texts.size());
    for (std::size_t i = 0; i < answers.size(); ++i) {
        std::fprintf(out, "answer %zu: %s\n", i + 1, answers[i].resp);
    }
    static_cast<void>(std::fflush(out));  // the harness reads what arrived
    return 0;
}

int prompt_once(const settings& s, const char* label) {
    pam::conversation<pam::terminal> conv{pam::terminal(s.options)};
    std::vector<std::string> texts;
    for (int i = 1; i <= s.prompts; ++i) {
        texts.push_back(label != nullptr ? std::string(label)
                        : s.prompts == 1 ? std::string("Password: ")
                                         : "Password " + std::to_string(i) + ": ");
    }
    return converse(conv, texts, s.echo_on, stdout);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    bool in_thread = false;
    bool two_threads = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "terminal_prompt: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--echo-on") {
            s.echo_on = true;
        } else if (arg == "--prompts") {
            s.prompts = number(next());
        } else if (arg == "--timeout") {
            s.options.timeout_ms = number(next());
        } else if (arg == "--reraise") {
            s.options.interrupt = pam::terminal_options::interrupt_action::reraise;
        } else if (arg == "--stdin") {
            s.options.input = pam::terminal_options::input_source::standard_input;
        } else if (arg == "--ignore") {
            if (std::signal(signal_named(next()), SIG_IGN) == SIG_ERR) return 2;
        } else if (arg == "--host-handler") {
            struct sigaction sa {};
            sa.sa_handler = &host_handler;
            sigemptyset(&sa.sa_mask);
            ::sigaction(signal_named(next()), &sa, nullptr);
        } else if (arg == "--in-thread") {
            in_thread = true;
        } else if (arg == "--two-threads") {
            two_threads = true;
        } else {
            std::fprintf(stderr, "terminal_prompt: unknown option %s\n", arg.c_str());
            return 2;
        }
    }
    if (two_threads) {
        int first = 1;
        int second = 1;
        std::thread a([&] { first = prompt_once(s, "First: "); });
        std::thread b([&] { second = prompt_once(s, "Second: "); });
        a.join();
        b.join();
        return first == 0 && second == 0 ? 0 : 1;
    }
    if (in_thread) {
        int code = 1;
        std::thread t([&] { code = prompt_once(s, nullptr); });
        t.join();
        return code;
    }
    return prompt_once(s, nullptr);
}
