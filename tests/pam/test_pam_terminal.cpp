// pam::terminal in one process: what it does to the termios, to the signal
// dispositions, with signals that land on another thread or that every thread
// blocks, with a terminal that hangs up or refuses a background job, and when
// the system refuses a descriptor or a wait. The same behaviour as a shell
// sees it (stops, deaths, pamtester beside) is in terminal_signals.py.
#include <handoff/pam.hpp>

#include "../doctest.hpp"
#include "pipe_pair.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

namespace pam = handoff::pam;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// libgcov's dump, linked in coverage builds only (tests/pam/meson.build): a
// forked child that ends with _exit writes its coverage counters with it.
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): libgcov's name
extern "C" void __gcov_dump() __attribute__((weak));

namespace {

// A pseudo-terminal: the test types on master, the terminal reads slave.
struct pty_pair {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    int slave = -1;
    pty_pair() {
        REQUIRE(master >= 0);
        REQUIRE(::grantpt(master) == 0);
        REQUIRE(::unlockpt(master) == 0);
        slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
        REQUIRE(slave >= 0);
    }
    ~pty_pair() {
        ::close(slave);
        if (master >= 0) ::close(master);
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

// Waits (up to 5 s) until process `pid` sleeps, blocked in a system call
// (state S in /proc/PID/stat).
bool asleep(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (steady_clock::now() < deadline) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        char buf[512] = {};
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        std::string_view stat(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        std::size_t paren = stat.rfind(')');  // the command name may hold anything
        if (paren != std::string_view::npos && stat.substr(paren).rfind(") S", 0) == 0) {
            return true;
        }
        std::this_thread::sleep_for(milliseconds(1));
    }
    return false;
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

// termios has padding: compared field by field.
bool same_termios(const termios& a, const termios& b) {
    return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag &&
           a.c_lflag == b.c_lflag && a.c_line == b.c_line &&
           std::memcmp(a.c_cc, b.c_cc, sizeof a.c_cc) == 0 &&
           ::cfgetispeed(&a) == ::cfgetispeed(&b) && ::cfgetospeed(&a) == ::cfgetospeed(&b);
}

// Blocks `sig` in the calling thread for the scope (threads it starts inherit that).
class scoped_block {
public:
    explicit scoped_block(int sig) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        REQUIRE(::pthread_sigmask(SIG_BLOCK, &set, &old_) == 0);
    }
    ~scoped_block() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    scoped_block(const scoped_block&) = delete;
    scoped_block& operator=(const scoped_block&) = delete;

private:
    sigset_t old_{};
};

void set_blocked(int sig, bool blocked) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

// Runs `body` in a forked child (no other thread runs there) while this
// process runs `meanwhile(child)`, and returns the child's exit status (the
// int `body` returns), or 128 + the signal that ended it. The child writes
// its coverage counters before it ends.
template <class Body, class Meanwhile>
int in_child(Body body, Meanwhile meanwhile) {
    static_cast<void>(std::fflush(nullptr));
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const int code = body();
        if (__gcov_dump != nullptr) __gcov_dump();
        ::_exit(code);
    }
    meanwhile(child);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Sets the soft limit on descriptors for the scope; a new descriptor must be
// numbered below it, and poll(2) may watch no more than it.
class scoped_fd_limit {
public:
    explicit scoped_fd_limit(rlim_t soft) {
        ::getrlimit(RLIMIT_NOFILE, &old_);
        rlimit lower = old_;
        lower.rlim_cur = soft;
        ::setrlimit(RLIMIT_NOFILE, &lower);
    }
    ~scoped_fd_limit() { ::setrlimit(RLIMIT_NOFILE, &old_); }
    scoped_fd_limit(const scoped_fd_limit&) = delete;
    scoped_fd_limit& operator=(const scoped_fd_limit&) = delete;

private:
    rlimit old_{};
};

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

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a signal handler's count
std::atomic<int> host_calls{0};
extern "C" void count_host_call(int) { host_calls.fetch_add(1); }

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a signal handler's record
std::atomic<int> host_siginfo_signo{0};
extern "C" void record_host_siginfo(int, siginfo_t* info, void*) {
    host_siginfo_signo.store(info->si_signo);
}

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
    CHECK(same_termios(during, expected));
    termios after{};
    REQUIRE(::tcgetattr(pty.slave, &after) == 0);
    CHECK(same_termios(after, before));
}

TEST_CASE("the host's dispositions are back after a prompt and ignored signals stay ignored") {
    // A shell starts a background job with SIGQUIT (and SIGINT) ignored, and
    // exec passes that on: start from the defaults, so that what is checked is
    // what the terminal does, not what the test was started with.
    std::vector<std::unique_ptr<scoped_disposition>> defaults;
    for (const int sig : caught_signals) {
        if (sig != SIGHUP && sig != SIGTERM) {
            defaults.push_back(std::make_unique<scoped_disposition>(sig, SIG_DFL));
        }
    }
    scoped_disposition hup(SIGHUP, SIG_IGN);
    scoped_disposition term(SIGTERM, &count_host_call, SA_RESTART);
    struct sigaction before[9]{};
    for (int i = 0; i < 9; ++i) REQUIRE(::sigaction(caught_signals[i], nullptr, &before[i]) == 0);

    pipe_pair input;
    pipe_pair prompts;
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
    pipe_pair input;
    pipe_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    std::thread other([&] {
        // raise() in a thread signals that thread: not the one that prompts.
        if (wait_for(prompts.read_end, "Password: ")) static_cast<void>(::raise(SIGTERM));
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
    pipe_pair input;
    pipe_pair prompts;
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
        pipe_pair input;
        pipe_pair prompts;
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
    pipe_pair input;
    pipe_pair prompts;
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

TEST_CASE("a radio prompt is asked like an echo-on prompt: echo stays on") {
    pty_pair pty;
    pam::terminal t = terminal_on(pty.slave, pty.slave, 5000);
    termios during{};
    bool prompted = false;
    std::thread typist([&] {
        prompted = wait_for(pty.master, "Colour? ");
        ::tcgetattr(pty.slave, &during);
        static_cast<void>(::write(pty.master, "blue\n", 5));
    });
    pam::reply r = ask(t, pam::style::radio, "Colour? ");
    typist.join();
    REQUIRE(prompted);
    CHECK((during.c_lflag & ECHO) != 0);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "blue");
}

TEST_CASE("a style the terminal does not know is refused as bad_message and nothing is asked") {
    pipe_pair input;
    pipe_pair prompts;
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

TEST_CASE("a zero timeout takes a line typed ahead, and otherwise times out at once") {
    pipe_pair input;
    pipe_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 0);
    REQUIRE(::write(input.write_end, "ahead\n", 6) == 6);
    pam::reply typed = ask_secret(t);
    REQUIRE(typed.has_answer());
    CHECK(typed.text() == "ahead");
    auto start = steady_clock::now();
    CHECK(ask_secret(t).error() == pam::failure::timed_out);
    CHECK(steady_clock::now() - start < milliseconds(2000));
}

TEST_CASE("a host handler installed with SA_SIGINFO is restored and takes the re-sent signal") {
    host_siginfo_signo = 0;
    struct sigaction host {};
    host.sa_sigaction = &record_host_siginfo;
    sigemptyset(&host.sa_mask);
    host.sa_flags = SA_SIGINFO;
    struct sigaction old {};
    REQUIRE(::sigaction(SIGALRM, &host, &old) == 0);
    struct sigaction before {};
    REQUIRE(::sigaction(SIGALRM, nullptr, &before) == 0);

    pipe_pair input;
    pipe_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    const pthread_t prompter = ::pthread_self();
    std::thread other([&] {
        if (wait_for(prompts.read_end, "Password: ")) ::pthread_kill(prompter, SIGALRM);
    });
    pam::reply r = ask_secret(t);
    other.join();
    struct sigaction after {};
    REQUIRE(::sigaction(SIGALRM, nullptr, &after) == 0);
    ::sigaction(SIGALRM, &old, nullptr);
    CHECK(r.error() == pam::failure::cancelled);
    CHECK(host_siginfo_signo == SIGALRM);
    CHECK((after.sa_flags & SA_SIGINFO) != 0);
    const bool same_handler = after.sa_sigaction == before.sa_sigaction;
    CHECK(same_handler);
    CHECK(same_disposition(after, before));
}

TEST_CASE("a caught signal ends a prompt whose write it interrupted, even part-way") {
    // The prompt is longer than the pipe holds: the write blocks part-way
    // until the test sees the pipe full, then SIGHUP arrives.
    host_calls = 0;
    scoped_disposition hup(SIGHUP, &count_host_call);
    pipe_pair input;
    pipe_pair prompts;
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

TEST_CASE("the terminal hanging up during a secret prompt ends it as input_closed") {
    pty_pair pty;
    pam::terminal t = terminal_on(pty.slave, pty.slave, 5000);
    std::thread hangup([&] {
        wait_for(pty.master, "Password: ");
        ::close(pty.master);  // the other end is gone: the slave hangs up
        pty.master = -1;
    });
    pam::reply r = ask_secret(t);
    hangup.join();
    CHECK(r.error() == pam::failure::input_closed);
}

TEST_CASE("a stop signal that another thread's handler takes: the prompt is shown again") {
    // The prompting thread blocks SIGTSTP, so the terminal re-sends it to the
    // process; the host's handler on the other thread takes it, as a stop
    // would end, and the prompt comes back at once.
    host_calls = 0;
    scoped_disposition tstp(SIGTSTP, &count_host_call);
    scoped_block blocked_here(SIGTSTP);
    pipe_pair input;
    pipe_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    bool shown_twice = false;
    int taken_before_second_prompt = -1;
    std::thread other([&] {
        set_blocked(SIGTSTP, false);
        if (!wait_for(prompts.read_end, "Password: ")) return;
        ::kill(::getpid(), SIGTSTP);
        shown_twice = wait_for(prompts.read_end, "Password: ");
        taken_before_second_prompt = host_calls;
        static_cast<void>(::write(input.write_end, "pw\n", 3));
    });
    pam::reply r = ask_secret(t);
    other.join();
    CHECK(shown_twice);
    // Prompting again before the stop was taken would have caught it again.
    CHECK(taken_before_second_prompt == 1);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "pw");
    CHECK(host_calls == 1);
}

TEST_CASE(
    "a stop signal that every thread blocks is waited for a second, then the prompt returns") {
    host_calls = 0;
    scoped_disposition tstp(SIGTSTP, &count_host_call);
    pty_pair pty;  // input: a terminal, so the attempt ends its line
    pipe_pair prompts;
    pam::terminal t = terminal_on(pty.slave, prompts.write_end, 5000);
    bool shown_twice = false;
    {
        scoped_block blocked_here(SIGTSTP);
        std::thread other([&] {
            set_blocked(SIGTSTP, false);
            if (!wait_for(prompts.read_end, "Password: ")) return;
            // Fill the prompt pipe: the attempt's end blocks writing its newline
            // until this thread, blocking SIGTSTP too by then, drains it.
            const int flags = ::fcntl(prompts.write_end, F_GETFL);
            ::fcntl(prompts.write_end, F_SETFL, flags | O_NONBLOCK);
            const char block[512] = {};
            while (::write(prompts.write_end, block, sizeof block) > 0) {}
            ::fcntl(prompts.write_end, F_SETFL, flags);
            ::kill(::getpid(), SIGTSTP);  // taken here: the only thread that does not block it
            set_blocked(SIGTSTP, true);
            shown_twice = wait_for(prompts.read_end, "Password: ");
            static_cast<void>(::write(pty.master, "pw\n", 3));
        });
        auto start = steady_clock::now();
        pam::reply r = ask_secret(t);
        auto waited = steady_clock::now() - start;
        other.join();
        CHECK(shown_twice);
        REQUIRE(r.has_answer());
        CHECK(r.text() == "pw");
        CHECK(waited >= milliseconds(1000));
        CHECK(host_calls == 0);  // still pending: every thread blocks it
    }
    CHECK(host_calls == 1);  // taken by the host's handler once unblocked
}

TEST_CASE("a wake-up from a forked child that inherited the handler does not end the prompt") {
    pipe_pair input;
    pipe_pair prompts;
    pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
    int wake = -1;
    {
        std::lock_guard<std::mutex> no_prompt(pam::detail::terminal_prompt_lock());
        wake = pam::detail::terminal_wake_pipe();
    }
    REQUIRE(wake >= 0);
    int child_status = -1;
    std::thread other([&] {
        if (!wait_for(prompts.read_end, "Password: ")) return;
        pid_t child = ::fork();
        if (child == 0) {
            // The prompt's handler is installed here too, on the same pipe.
            static_cast<void>(::raise(SIGTERM));
            // Success once the prompting parent has drained the wake-up byte.
            bool drained = false;
            for (int tries = 0; tries < 500 && !drained; ++tries) {
                pollfd p{wake, POLLIN, 0};
                drained = ::poll(&p, 1, 0) == 0;
                const timespec pause{0, 10'000'000};
                if (!drained) ::nanosleep(&pause, nullptr);
            }
            // Ends by exec, not _exit: valgrind would count the stacks of the
            // threads that did not come along as leaks of this copy.
            ::execl(drained ? "/bin/true" : "/bin/false", "verdict", nullptr);
            ::_exit(2);
        }
        if (child < 0 || ::waitpid(child, &child_status, 0) != child) return;
        static_cast<void>(::write(input.write_end, "pw\n", 3));
    });
    pam::reply r = ask_secret(t);
    other.join();
    CHECK(WIFEXITED(child_status));
    CHECK(WEXITSTATUS(child_status) == 0);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "pw");
}

TEST_CASE("without a descriptor to spare for the wake-up pipe, a signal still ends the prompt") {
    // In a child process (the pipe is made once per process), with no
    // descriptor left to make it: poll(2) alone sees the signal.
    pipe_pair input;
    pipe_pair prompts;
    const int code = in_child(
        [&] {
            host_calls = 0;
            scoped_disposition term(SIGTERM, &count_host_call);
            scoped_fd_limit one(1);  // no new descriptor can be made
            pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
            const bool cancelled = ask_secret(t).error() == pam::failure::cancelled;
            return cancelled && host_calls == 1 ? 0 : 1;
        },
        [&](pid_t child) {
            CHECK(wait_for(prompts.read_end, "Password: "));
            CHECK(asleep(child));  // waiting for the answer
            ::kill(child, SIGTERM);
        });
    CHECK(code == 0);
}

TEST_CASE("a wait that poll(2) refuses fails the prompt as input_closed, at once") {
    pipe_pair input;
    pipe_pair prompts;
    REQUIRE(::write(input.write_end, "first\n", 6) == 6);
    const int code = in_child(
        [&] {
            pam::terminal t = terminal_on(input.read_end, prompts.write_end, 5000);
            if (ask_secret(t).text() != "first") return 2;  // the wake-up pipe is made
            scoped_fd_limit one(1);
            // poll(2) refuses to watch more descriptors than RLIMIT_NOFILE allows
            // (valgrind keeps its own limit: then there is nothing to check).
            pollfd two[2] = {{input.read_end, POLLIN, 0}, {input.read_end, POLLIN, 0}};
            if (::poll(two, 2, 0) != -1 || errno != EINVAL) return 77;
            auto start = steady_clock::now();
            const bool closed = ask_secret(t).error() == pam::failure::input_closed;
            return closed && steady_clock::now() - start < milliseconds(2000) ? 0 : 1;
        },
        [](pid_t) {});
    if (code == 77) {
        MESSAGE("poll(2) is not limited by RLIMIT_NOFILE here (valgrind?): nothing to check");
        return;
    }
    CHECK(code == 0);
}

TEST_CASE("a background job whose shell has gone is not asked for a secret: input_closed") {
    // An orphaned process group in the background of its controlling terminal:
    // tcsetattr fails with EIO there (no SIGTTOU can stop it), so echo cannot
    // be turned off and the secret is not asked for.
    pty_pair pty;
    std::string slave_name = ::ptsname(pty.master);
    pipe_pair result;  // the job's verdict, one byte
    pipe_pair alive;   // the session leader waits until the job closes its end
    static_cast<void>(std::fflush(nullptr));
    pid_t leader = ::fork();
    REQUIRE(leader >= 0);
    if (leader == 0) {
        // The session leader, with the pty as its controlling terminal and its
        // own process group in the foreground.
        if (::setsid() < 0) ::_exit(2);
        int tty = ::open(slave_name.c_str(), O_RDWR);
        if (tty < 0) ::_exit(2);
        pid_t middle = ::fork();
        if (middle == 0) {
            const pid_t middle_pid = ::getpid();
            if (::fork() == 0) {
                // The job: its own process group; once its parent has exited
                // (reparented outside the session) the group is orphaned.
                ::setpgid(0, 0);
                while (::getppid() == middle_pid) ::usleep(1000);
                char verdict = 'x';
                if (::tcgetpgrp(tty) != ::getpgrp()) {
                    termios before{};
                    termios after{};
                    ::tcgetattr(tty, &before);
                    pam::terminal_options o;  // the default input: /dev/tty
                    o.timeout_ms = 3000;
                    pam::terminal t(o);
                    pam::reply r = ask_secret(t);
                    ::tcgetattr(tty, &after);
                    verdict = r.error() != pam::failure::input_closed ? 'r'
                              : !same_termios(before, after)          ? 't'
                                                                      : '0';
                }
                static_cast<void>(::write(result.write_end, &verdict, 1));
                if (__gcov_dump != nullptr) __gcov_dump();
                ::_exit(0);
            }
            ::_exit(0);
        }
        ::close(alive.write_end);
        ::waitpid(middle, nullptr, 0);
        char sink = 0;
        while (::read(alive.read_end, &sink, 1) > 0) {}
        ::_exit(0);
    }
    ::close(alive.write_end);
    alive.write_end = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    char verdict = 0;
    pollfd p{result.read_end, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    REQUIRE(::read(result.read_end, &verdict, 1) == 1);
    int status = 0;
    REQUIRE(::waitpid(leader, &status, 0) == leader);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(verdict == '0');  // x: not in the background; r: asked; t: termios changed
    std::string screen;
    char buffer[256];
    pollfd m{pty.master, POLLIN, 0};
    while (::poll(&m, 1, 0) == 1) {
        ssize_t n = ::read(pty.master, buffer, sizeof buffer);
        if (n <= 0) break;
        screen.append(buffer, static_cast<std::size_t>(n));
    }
    CHECK(screen.find("Password") == std::string::npos);
}
