// pam::terminal in one process: what it does to the termios, to the signal
// dispositions, and with signals that land on another thread. The same
// behaviour as a shell sees it (stops, deaths, pamtester beside) is in
// terminal_signals.py.
#include <handoff/pam.hpp>

#include "../doctest.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace pam = handoff::pam;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

struct fd_pair {
    int read_end = -1;
    int write_end = -1;
    fd_pair() {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~fd_pair() {
        ::close(read_end);
        ::close(write_end);
    }
    fd_pair(const fd_pair&) = delete;
    fd_pair& operator=(const fd_pair&) = delete;
};

// A pseudo-terminal: the test types on master, the terminal reads slave.
struct pty_pair {
    int master = -1;
    int slave = -1;
    pty_pair() {
        master = ::posix_openpt(O_RDWR | O_NOCTTY);
        REQUIRE(master >= 0);
        REQUIRE(::grantpt(master) == 0);
        REQUIRE(::unlockpt(master) == 0);
        slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
        REQUIRE(slave >= 0);
    }
    ~pty_pair() {
        ::close(slave);
        ::close(master);
    }
    pty_pair(const pty_pair&) = delete;
    pty_pair& operator=(const pty_pair&) = delete;
};

// Reads fd until `text` has shown (or 5 s passed); for helper threads.
bool wait_for(int fd, std::string_view text) {
    std::string seen;
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (seen.find(text) == std::string::npos) {
        if (steady_clock::now() > deadline) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[64];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return false;
        seen.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

pam::terminal terminal_on(int in_fd, int prompt_fd, int timeout_ms,
                          pam::terminal_options::interrupt_action on_int =
                              pam::terminal_options::interrupt_action::cancel) {
    pam::terminal_options o;
    o.input_fd = in_fd;
    o.prompt_fd = prompt_fd;
    o.timeout_ms = timeout_ms;
    o.interrupt = on_int;
    return pam::terminal(o);
}

pam::reply ask(pam::terminal& t, pam::style kind, const char* text) {
    ::pam_message raw{static_cast<int>(kind), text};
    return t(pam::message(kind, &raw));
}

pam::reply ask_secret(pam::terminal& t) {
    return ask(t, pam::style::prompt_echo_off, "Password: ");
}

// Sets a disposition for the test and puts the old one back at the end.
class scoped_disposition {
public:
    scoped_disposition(int sig, void (*handler)(int), int flags = 0) : sig_(sig) {
        struct sigaction sa {};
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = flags;
        REQUIRE(::sigaction(sig, &sa, &old_) == 0);
    }
    ~scoped_disposition() { ::sigaction(sig_, &old_, nullptr); }
    scoped_disposition(const scoped_disposition&) = delete;
    scoped_disposition& operator=(const scoped_disposition&) = delete;

private:
    int sig_;
    struct sigaction old_ {};
};

std::atomic<int> host_calls{0};
extern "C" void count_host_call(int) { host_calls.fetch_add(1); }

constexpr int caught_signals[] = {SIGALRM, SIGHUP,  SIGINT,  SIGPIPE, SIGQUIT,
                                  SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};

bool same_disposition(const struct sigaction& a, const struct sigaction& b) {
    if (a.sa_handler != b.sa_handler || a.sa_flags != b.sa_flags) return false;
    for (int s = 1; s < SIGRTMIN; ++s) {
        if (sigismember(&a.sa_mask, s) != sigismember(&b.sa_mask, s)) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("an echo-off prompt clears ECHO and ECHONL only and puts the exact termios back") {
    pty_pair pty;
    termios before{};
    REQUIRE(::tcgetattr(pty.slave, &before) == 0);
    // A user's own settings (ECHONL on, ECHOE and ECHOK on) must survive.
    before.c_lflag |= ECHONL | ECHOE | ECHOK;
    REQUIRE(::tcsetattr(pty.slave, TCSANOW, &before) == 0);
    REQUIRE(::tcgetattr(pty.slave, &before) == 0);

    pam::terminal t = terminal_on(pty.slave, pty.slave, 5000);
    termios during{};
    bool prompted = false;
    std::thread typist([&] {
        prompted = wait_for(pty.master, "Password: ");
        ::tcgetattr(pty.slave, &during);
        static_cast<void>(::write(pty.master, "pw\n", 3));
    });
    pam::reply r = ask_secret(t);
    typist.join();
    REQUIRE(prompted);
    CHECK(r.text() == "pw");

    termios expected = before;
    expected.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    CHECK(during.c_lflag == expected.c_lflag);
    CHECK(std::memcmp(&during, &expected, sizeof during) == 0);
    termios after{};
    REQUIRE(::tcgetattr(pty.slave, &after) == 0);
    CHECK(std::memcmp(&after, &before, sizeof after) == 0);
}

TEST_CASE("the host's dispositions are back after a prompt and ignored signals stay ignored") {
    scoped_disposition hup(SIGHUP, SIG_IGN);
    scoped_disposition term(SIGTERM, &count_host_call, SA_RESTART);
    struct sigaction before[9]{};
    for (int i = 0; i < 9; ++i) REQUIRE(::sigaction(caught_signals[i], nullptr, &before[i]) == 0);

    fd_pair input;
    fd_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    struct sigaction during[9]{};
    std::thread typist([&] {
        if (wait_for(prompts.read_end, "Password: ")) {
            for (int i = 0; i < 9; ++i) ::sigaction(caught_signals[i], nullptr, &during[i]);
        }
        static_cast<void>(::write(input.write_end, "pw\n", 3));
    });
    pam::reply r = ask_secret(t);
    typist.join();
    CHECK(r.text() == "pw");
    for (int i = 0; i < 9; ++i) {
        CAPTURE(caught_signals[i]);
        if (caught_signals[i] == SIGHUP) {
            const bool still_ignored = during[i].sa_handler == SIG_IGN;
            CHECK(still_ignored);  // the process ignores it: so do we
        } else {
            const bool caught = during[i].sa_handler != before[i].sa_handler;
            CHECK(caught);
            CHECK((during[i].sa_flags & SA_RESTART) == 0);  // so poll returns EINTR
        }
        struct sigaction after {};
        REQUIRE(::sigaction(caught_signals[i], nullptr, &after) == 0);
        CHECK(same_disposition(after, before[i]));
    }
}

TEST_CASE("a signal that lands on another thread still ends the prompt at once") {
    host_calls = 0;
    scoped_disposition term(SIGTERM, &count_host_call);
    fd_pair input;
    fd_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    std::thread other([&] {
        // raise() in a thread signals that thread: not the one that prompts.
        if (wait_for(prompts.read_end, "Password: ")) ::raise(SIGTERM);
    });
    auto start = steady_clock::now();
    pam::reply r = ask_secret(t);
    auto waited = steady_clock::now() - start;
    other.join();
    // The host's handler took the re-sent signal: the prompt ends as cancelled.
    CHECK(r.error() == pam::failure::cancelled);
    CHECK(waited < milliseconds(4000));  // not the 5 s timeout
    CHECK(host_calls == 1);
}

TEST_CASE("signals the terminal does not catch neither end the prompt nor stretch its timeout") {
    host_calls = 0;
    scoped_disposition usr1(SIGUSR1, &count_host_call);  // no SA_RESTART: poll sees EINTR
    fd_pair input;
    fd_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 300);
    std::atomic<bool> done{false};
    pthread_t prompter = ::pthread_self();
    std::thread pest([&] {
        auto stop = steady_clock::now() + std::chrono::seconds(3);
        while (!done && steady_clock::now() < stop) {
            ::pthread_kill(prompter, SIGUSR1);
            std::this_thread::sleep_for(milliseconds(20));
        }
    });
    auto start = steady_clock::now();
    pam::reply r = ask_secret(t);
    auto waited = steady_clock::now() - start;
    done = true;
    pest.join();
    CHECK(r.error() == pam::failure::timed_out);
    CHECK(waited < milliseconds(2000));
    CHECK(host_calls > 0);
}

TEST_CASE("Ctrl-C cancels without the host's SIGINT handler; reraise hands it to that handler") {
    for (auto mode : {pam::terminal_options::interrupt_action::cancel,
                      pam::terminal_options::interrupt_action::reraise}) {
        const bool reraise = mode == pam::terminal_options::interrupt_action::reraise;
        CAPTURE(reraise);
        host_calls = 0;
        scoped_disposition on_int(SIGINT, &count_host_call);
        fd_pair input;
        fd_pair prompts;
        pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000, mode);
        std::thread other([&] {
            if (wait_for(prompts.read_end, "Password: ")) ::kill(::getpid(), SIGINT);
        });
        pam::reply r = ask_secret(t);
        other.join();
        CHECK(r.error() == pam::failure::cancelled);
        CHECK(host_calls == (reraise ? 1 : 0));
    }
}

TEST_CASE("a call's first failed prompt ends it: later prompts are not shown") {
    fd_pair input;
    fd_pair prompts;
    ::close(input.write_end);  // EOF at once
    input.write_end = ::open("/dev/null", O_WRONLY);
    pam::conversation conv(terminal_on(input.read_end, prompts.write_end, 5000));
    ::pam_message first{PAM_PROMPT_ECHO_OFF, "first: "};
    ::pam_message second{PAM_PROMPT_ECHO_ON, "second: "};
    const ::pam_message* msgs[] = {&first, &second};
    ::pam_conv c = conv.c_conv();
    ::pam_response* resp = nullptr;
    CHECK(c.conv(2, msgs, &resp, c.appdata_ptr) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::input_closed);
    CHECK(resp == nullptr);
    ::close(prompts.write_end);
    prompts.write_end = ::open("/dev/null", O_WRONLY);
    char shown[64] = {};
    CHECK(::read(prompts.read_end, shown, sizeof shown - 1) == 7);
    CHECK(std::string_view(shown) == "first: ");
}

TEST_CASE("a style the terminal does not know is refused as bad_message and nothing is asked") {
    fd_pair input;
    fd_pair prompts;
    REQUIRE(::write(input.write_end, "unread\n", 7) == 7);
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    pam::reply r = ask(t, static_cast<pam::style>(42), "Which? ");
    CHECK(r.error() == pam::failure::bad_message);
    CHECK_FALSE(r.has_answer());
    pollfd shown{prompts.read_end, POLLIN, 0};
    CHECK(::poll(&shown, 1, 0) == 0);  // no prompt
    pollfd unread{input.read_end, POLLIN, 0};
    REQUIRE(::poll(&unread, 1, 0) == 1);  // the input was left alone
    char first = 0;
    CHECK(::read(input.read_end, &first, 1) == 1);
    CHECK(first == 'u');
}

TEST_CASE("a caught signal ends a prompt whose write it interrupted, even part-way") {
    // The prompt is longer than the pipe holds: the write blocks part-way
    // until the test sees the pipe full, then SIGHUP arrives.
    host_calls = 0;
    scoped_disposition hup(SIGHUP, &count_host_call);
    fd_pair input;
    fd_pair prompts;
    const int capacity = ::fcntl(prompts.write_end, F_GETPIPE_SZ);
    REQUIRE(capacity > 0);
    const std::string prompt(static_cast<std::size_t>(capacity) * 2, 'p');
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    const pthread_t prompter = ::pthread_self();
    std::atomic<bool> done{false};
    std::size_t shown = 0;
    std::thread other([&] {
        int queued = 0;
        auto give_up = steady_clock::now() + std::chrono::seconds(5);
        while (queued < capacity && steady_clock::now() < give_up) {
            std::this_thread::sleep_for(milliseconds(1));
            ::ioctl(prompts.read_end, FIONREAD, &queued);
        }
        ::pthread_kill(prompter, SIGHUP);
        // If the write went on after the signal, unblock it (the test then fails).
        give_up = steady_clock::now() + std::chrono::seconds(3);
        while (!done && steady_clock::now() < give_up) std::this_thread::sleep_for(milliseconds(5));
        char buffer[4096];
        for (;;) {
            pollfd p{prompts.read_end, POLLIN, 0};
            if (::poll(&p, 1, done ? 0 : 200) <= 0) break;
            ssize_t n = ::read(prompts.read_end, buffer, sizeof buffer);
            if (n <= 0) break;
            shown += static_cast<std::size_t>(n);
        }
    });
    auto start = steady_clock::now();
    pam::reply r = ask(t, pam::style::prompt_echo_on, prompt.c_str());
    auto waited = steady_clock::now() - start;
    done = true;
    other.join();
    CHECK(r.error() == pam::failure::cancelled);
    CHECK(host_calls == 1);
    CHECK(shown == static_cast<std::size_t>(capacity));  // the rest was never written
    CHECK(waited < milliseconds(2500));
}
