// handoff::pam::terminal: a ready conversation handler that prompts on the
// terminal, with echo off for secrets, at the standard of OpenBSD's
// readpassphrase(3). Included by pam.hpp.
// SPDX-License-Identifier: MIT
#ifndef HANDOFF_PAM_TERMINAL_HPP
#define HANDOFF_PAM_TERMINAL_HPP

#include <handoff/pam_types.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <ctime>
#include <mutex>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <termios.h>
#include <unistd.h>

namespace handoff::pam {

struct terminal_options {
    enum class input_source {
        // Standard input when it is not a terminal (pipes, scripts: where
        // pamtester reads), otherwise /dev/tty.
        automatic,
        // /dev/tty, the controlling terminal, when there is one; otherwise
        // standard input with prompts on standard error. readpassphrase(3)'s way.
        tty,
        // Standard input, prompts on standard error.
        standard_input,
    };
    enum class interrupt_action {
        // Ctrl-C (SIGINT) fails the call with failure::cancelled and the
        // process lives on: a library must not kill its host.
        cancel,
        // readpassphrase(3)'s way: SIGINT is re-sent once the terminal is
        // restored, so the process dies of it (or its own handler runs).
        reraise,
    };
    input_source input = input_source::tty;
    interrupt_action interrupt = interrupt_action::cancel;
    // Milliseconds to wait for each answer (poll(2), no SIGALRM); negative
    // waits forever.
    int timeout_ms = -1;
    // false: prompts fail (input_closed) at once, info and errors still show.
    bool interactive = true;
    // Explicit descriptors (tests, embedding); -1 chooses as above.
    int input_fd = -1;
    int prompt_fd = -1;
};

namespace detail {

// The signals that would end or stop the process while echo is off, caught
// for the duration of a prompt as readpassphrase(3) does. SIGKILL and SIGSTOP
// cannot be caught by anyone.
inline constexpr int terminal_signals[] = {SIGALRM, SIGHUP,  SIGINT,  SIGPIPE, SIGQUIT,
                                           SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
inline constexpr std::size_t terminal_signal_count = sizeof terminal_signals / sizeof(int);

// Sets of those signals are bit masks: bit i stands for terminal_signals[i].
constexpr unsigned stop_signal_bits() noexcept {
    unsigned bits = 0;
    for (std::size_t i = 0; i < terminal_signal_count; ++i) {
        const int sig = terminal_signals[i];
        if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) bits |= 1u << i;
    }
    return bits;
}
inline constexpr unsigned terminal_stop_bits = stop_signal_bits();

inline sigset_t terminal_signal_set() noexcept {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : terminal_signals) sigaddset(&set, sig);
    return set;
}

// The terminal signals that are members of `set`.
inline unsigned terminal_signal_bits(const sigset_t& set) noexcept {
    unsigned bits = 0;
    for (std::size_t i = 0; i < terminal_signal_count; ++i) {
        bits |= static_cast<unsigned>(sigismember(&set, terminal_signals[i]) == 1) << i;
    }
    return bits;
}

// What the signal handler touches: lock-free atomics and write(2), nothing
// else (async-signal-safe; nothing allocates, nothing locks). The atomics are
// constant-initialised, so reaching them runs no guard.
class terminal_signal_state {
public:
    static_assert(std::atomic<unsigned>::is_always_lock_free &&
                      std::atomic<int>::is_always_lock_free,
                  "the signal handler needs lock-free atomics");
    // The terminal signals that arrived during the current prompt.
    static std::atomic<unsigned>& caught() noexcept {
        static std::atomic<unsigned> bits{0};
        return bits;
    }
    // Write end of the wake-up pipe the prompting thread polls, so a signal
    // that lands on another thread still ends its wait.
    static std::atomic<int>& wake_fd() noexcept {
        static std::atomic<int> fd{-1};
        return fd;
    }

    static void on_signal(int sig) noexcept {
        const int saved_errno = errno;
        for (std::size_t i = 0; i < terminal_signal_count; ++i) {
            if (terminal_signals[i] == sig) caught().fetch_or(1u << i);
        }
        const int fd = wake_fd().load();
        if (fd >= 0) {
            const char byte = 0;
            if (::write(fd, &byte, 1) < 0) {
                // A full pipe: the prompting thread is awake already.
            }
        }
        errno = saved_errno;
    }
};

// Signal dispositions belong to the process, so one prompt at a time owns
// them: prompts from several threads (on one terminal or several) take turns.
inline std::mutex& terminal_prompt_lock() noexcept {
    static std::mutex m;
    return m;
}

// The read end of the wake-up pipe (-1 if none could be made: then only
// signals that land on the prompting thread end its wait). Made once per
// process and never closed, so a handler still running on another thread
// never writes to a descriptor that has been reused. Called under the lock.
inline int terminal_wake_pipe() noexcept {
    static int fds[2] = {-1, -1};
    static pid_t owner = 0;
    if (owner != ::getpid()) {  // first use, or a child after fork()
        if (fds[0] >= 0) {
            terminal_signal_state::wake_fd().store(-1);
            ::close(fds[0]);
            ::close(fds[1]);
            fds[0] = fds[1] = -1;
        }
        int made[2];
        if (::pipe(made) != 0) return -1;
        for (int fd : made) {
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        }
        fds[0] = made[0];
        fds[1] = made[1];
        owner = ::getpid();
        terminal_signal_state::wake_fd().store(fds[1]);
    }
    return fds[0];
}

// While alive, a cancellation of this thread waits (pthread_setcancelstate).
class cancellation_held_off {
public:
    cancellation_held_off() noexcept { ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
    cancellation_held_off(const cancellation_held_off&) = delete;
    cancellation_held_off& operator=(const cancellation_held_off&) = delete;
    ~cancellation_held_off() { ::pthread_setcancelstate(old_, nullptr); }

private:
    int old_ = PTHREAD_CANCEL_ENABLE;
};

inline void drain(int fd) noexcept {
    if (fd < 0) return;
    char sink[64];
    while (::read(fd, sink, sizeof sink) > 0) {}
}

// One attempt at one prompt, from installing the handlers to re-sending what
// arrived. The order is what makes it safe:
//   begin: take the lock; install a recording handler for every signal that
//          is not ignored (ignored stays ignored); save the termios and clear
//          ECHO and ECHONL (nothing else), flushing type-ahead.
//   end:   block those signals in this thread; end the prompt's line; put the
//          saved termios back byte for byte (TCSAFLUSH: nothing typed with
//          echo off is left for the shell); restore the old dispositions;
//          re-send what arrived; release the lock; restore the signal mask,
//          which is when a re-sent signal ends or stops the process.
//
// Both steps hold off the thread's cancellation until they are done (they
// read, write and sleep: cancellation points), so neither stops halfway; a
// thread cancelled while it waits for the answer unwinds through end().
class prompt_attempt {
public:
    prompt_attempt(int in_fd, int prompt_fd, bool echo_off, bool reraise_interrupt) noexcept
        : lock_(terminal_prompt_lock()),
          in_fd_(in_fd),
          prompt_fd_(prompt_fd),
          wake_(terminal_wake_pipe()),
          reraise_interrupt_(reraise_interrupt) {
        const cancellation_held_off hold;
        drain(wake_);
        terminal_signal_state::caught().store(0);
        const sigset_t ours = terminal_signal_set();
        sigset_t mask;
        ::pthread_sigmask(SIG_BLOCK, &ours, &mask);
        // sigaction fails only for a signal that cannot be caught, and these can.
        struct sigaction record {};
        record.sa_handler = &terminal_signal_state::on_signal;
        record.sa_mask = ours;
        record.sa_flags = 0;  // no SA_RESTART: a blocked call must return EINTR
        for (std::size_t i = 0; i < terminal_signal_count; ++i) {
            const int sig = terminal_signals[i];
            ::sigaction(sig, nullptr, &old_[i]);
            if ((old_[i].sa_flags & SA_SIGINFO) == 0 && old_[i].sa_handler == SIG_IGN) continue;
            ::sigaction(sig, &record, nullptr);
            installed_ |= 1u << i;
        }
        ::pthread_sigmask(SIG_SETMASK, &mask, nullptr);

        if (!echo_off || ::tcgetattr(in_fd_, &saved_) != 0) return;  // not a terminal
        termios quiet = saved_;
        // ECHONL goes too: the line is ended by end() on every path, and with
        // ECHONL left on an Enter would end it twice.
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
        // From a background process group this raises SIGTTOU, which is
        // recorded: the attempt ends, the process stops, and the prompt starts
        // again once the job is in the foreground. A background group whose
        // shell has gone (an orphaned process group) gets EIO instead.
        while (::tcsetattr(in_fd_, TCSAFLUSH, &quiet) != 0) {
            if (errno != EINTR) {
                unusable_ = true;
                return;
            }
            // EINTR with nothing recorded: a host's signal while a real line drains
            // its output. On a pseudo-terminal only our SIGTTOU interrupts, recorded.
            if (interrupted()) return;  // LCOV_EXCL_BR_LINE: see above
        }
        changed_ = true;
        termios now{};
        // tcsetattr succeeds if any change took; a secret needs this one.
        // LCOV_EXCL_BR_START: Linux applies a termios whole, so no test there fails this.
        unusable_ = ::tcgetattr(in_fd_, &now) != 0 || (now.c_lflag & ECHO) != 0;
        // LCOV_EXCL_BR_STOP
    }
    prompt_attempt(const prompt_attempt&) = delete;
    prompt_attempt& operator=(const prompt_attempt&) = delete;
    ~prompt_attempt() { end(); }

    // Echo could not be turned off on a terminal: the secret must not be asked.
    bool unusable() const noexcept { return unusable_; }
    int wake_fd() const noexcept { return wake_; }
    static bool interrupted() noexcept { return terminal_signal_state::caught().load() != 0; }

    // Returns the signals that arrived (bit i: terminal_signals[i]). Those
    // re-sent have already ended or stopped (and continued) the process, or
    // run the host's handler, by the time this returns.
    unsigned end() noexcept {
        if (ended_) return 0;
        ended_ = true;
        const cancellation_held_off hold;
        const sigset_t ours = terminal_signal_set();
        sigset_t mask;
        ::pthread_sigmask(SIG_BLOCK, &ours, &mask);
        if (changed_) {
            // The user's Enter was not echoed: end the prompt's line ourselves.
            if (::write(prompt_fd_, "\n", 1) < 0) {
                // Nowhere to show it; the terminal is restored all the same.
            }
            // EIO (the terminal hung up) is final. EINTR needs a host's signal while
            // a real line drains its output; a pseudo-terminal never waits to drain.
            while (::tcsetattr(in_fd_, TCSAFLUSH, &saved_) != 0) {
                if (errno != EINTR) break;  // LCOV_EXCL_BR_LINE: see above
            }
        }
        for (std::size_t i = 0; i < terminal_signal_count; ++i) {
            if ((installed_ & (1u << i)) != 0) ::sigaction(terminal_signals[i], &old_[i], nullptr);
        }
        const unsigned caught = terminal_signal_state::caught().exchange(0) & installed_;
        drain(wake_);

        const unsigned blocked_here = terminal_signal_bits(mask);
        unsigned sent_elsewhere = 0;
        for (std::size_t i = 0; i < terminal_signal_count; ++i) {
            const int sig = terminal_signals[i];
            if ((caught & (1u << i)) == 0 || (sig == SIGINT && !reraise_interrupt_)) continue;
            if ((blocked_here & (1u << i)) == 0) {
                // Pending on this thread until the mask is restored below.
                ::pthread_kill(::pthread_self(), sig);
            } else {
                // This thread blocks it: let a thread that takes it have it.
                ::kill(::getpid(), sig);
                sent_elsewhere |= 1u << i;
            }
        }
        lock_.unlock();  // before delivery: a handler that longjmps leaves it free
        ::pthread_sigmask(SIG_SETMASK, &mask, nullptr);
        wait_until_taken(sent_elsewhere & terminal_stop_bits);
        return caught;
    }

private:
    // A stop signal sent to the process is taken by another thread; prompting
    // again before it is taken would catch it once more. If no thread takes
    // it (all block it), the prompt comes back after a second all the same.
    static void wait_until_taken(unsigned stops) noexcept {
        for (int tries = 0; stops != 0 && tries < 1000; ++tries) {
            const timespec millisecond{0, 1000000};
            ::nanosleep(&millisecond, nullptr);
            sigset_t pending;
            ::sigpending(&pending);  // fails only for a bad pointer
            stops &= terminal_signal_bits(pending);
        }
    }

    std::unique_lock<std::mutex> lock_;
    int in_fd_;
    int prompt_fd_;
    int wake_ = -1;
    bool reraise_interrupt_;
    bool changed_ = false;
    bool unusable_ = false;
    bool ended_ = false;
    unsigned installed_ = 0;
    termios saved_{};
    struct sigaction old_[terminal_signal_count] {};
};

}  // namespace detail

// Prompts on the terminal, at the standard of readpassphrase(3).
//
// Input and output: /dev/tty by default (terminal_options::input), prompts on
// the terminal (or stderr), info to stdout, errors to stderr. Input is read
// one byte at a time up to the newline, so several prompts can share a pipe
// and nothing past an answer is consumed. An overlong line is drained to its
// end and refused. EOF before any byte is input_closed; a last line without a
// newline is still an answer. The first failed prompt ends the call: later
// prompts of the same call are not shown.
//
// The terminal: for an echo-off prompt only ECHO and ECHONL are cleared, and
// the exact termios found is put back on every path (answer, EOF, timeout,
// Ctrl-C, every signal below). Echo is never touched when the input is not a
// terminal; if echo cannot be turned off, the secret is not asked for.
//
// Signals: while a prompt waits, SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT,
// SIGTERM, SIGTSTP, SIGTTIN and SIGTTOU are caught by a handler that only
// records them (signals the process ignores stay ignored). The terminal and
// the old dispositions are restored, then the signal is re-sent, so the
// process ends or stops as it would have. After a stop (SIGCONT) echo is
// turned off again and the prompt shown again. Two exceptions keep a host
// alive: Ctrl-C gives failure::cancelled (unless interrupt_action::reraise),
// and a timeout is a poll(2) deadline (failure::timed_out), no SIGALRM. A
// signal that the host's own handler takes ends the prompt as cancelled.
//
// Threads: the dispositions change process-wide for the duration of one
// prompt, so prompts are serialised process-wide (a second thread waits for
// the first prompt to end). The handler may run on any thread; it wakes the
// prompting thread through a pipe, and the signal is re-sent to the prompting
// thread (or to the process, if that thread blocks it). A host that blocks
// these signals everywhere and takes them with sigwait/signalfd keeps them,
// and must restore the terminal itself. Not async-signal-safe to call.
class terminal {
public:
    explicit terminal(terminal_options options = {})
        : options_(options), in_fd_(options.input_fd), prompt_fd_(options.prompt_fd) {
        using source = terminal_options::input_source;
        if (in_fd_ < 0) {
            bool want_tty = options_.input == source::tty ||
                            (options_.input == source::automatic && ::isatty(STDIN_FILENO) == 1);
            if (want_tty) tty_fd_ = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
            in_fd_ = tty_fd_ >= 0 ? tty_fd_ : STDIN_FILENO;
        }
        if (prompt_fd_ < 0) prompt_fd_ = tty_fd_ >= 0 ? tty_fd_ : STDERR_FILENO;
    }
    terminal(const terminal&) = delete;
    terminal& operator=(const terminal&) = delete;
    terminal(terminal&& other) noexcept
        : options_(other.options_),
          tty_fd_(std::exchange(other.tty_fd_, -1)),
          in_fd_(other.in_fd_),
          prompt_fd_(other.prompt_fd_) {}
    terminal& operator=(terminal&&) = delete;
    ~terminal() {
        if (tty_fd_ >= 0) ::close(tty_fd_);
    }

    // One message.
    reply operator()(const message& m) {
        switch (m.kind()) {
        case style::text_info: print(STDOUT_FILENO, m.text(), true); return reply::none();
        case style::error_msg: print(STDERR_FILENO, m.text(), true); return reply::none();
        case style::binary_prompt: return reply::refuse(failure::refused);
        case style::prompt_echo_off:
        case style::prompt_echo_on:
        case style::radio: return prompt(m);
        }
        // A style no enumerator names: the adapter refuses those before any
        // handler sees them, but a direct caller might not. Never asked.
        return reply::refuse(failure::bad_message);
    }

    // One call: Ctrl-C, a timeout or EOF ends it; later prompts are not shown.
    void operator()(const message_batch& batch, reply_batch& replies) {
        for (std::size_t i = 0; i < batch.size(); ++i) {
            replies[i] = (*this)(batch[i]);
            if (replies[i].error() != failure::none) return;
        }
    }

private:
    reply prompt(const message& m) {
        if (!options_.interactive) return reply::refuse(failure::input_closed);
        secret_string line;
        failure why = ask(m.text(), m.kind() != style::prompt_echo_off, line);
        if (why != failure::none) return reply::refuse(why);
        return reply::answer(std::move(line));
    }

    // write(2) is a cancellation point: these let the unwind pass.
    static void print(int fd, std::string_view text, bool newline) HANDOFF_PAM_CANCELLABLE {
        write_all(fd, text);
        if (newline && (text.empty() || text.back() != '\n')) write_all(fd, "\n");
    }
    static void write_all(int fd, std::string_view text) HANDOFF_PAM_CANCELLABLE {
        // A recorded signal ends the prompt, also when it cut a write short
        // (a background write under TOSTOP raises SIGTTOU on every try).
        while (!text.empty() && !detail::prompt_attempt::interrupted()) {
            ssize_t n = ::write(fd, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Prompts until an answer, a failure, or a signal that does not stop us.
    failure ask(std::string_view prompt, bool echo, secret_string& line) {
        const bool reraise = options_.interrupt == terminal_options::interrupt_action::reraise;
        for (;;) {
            failure why = failure::input_closed;
            detail::prompt_attempt attempt(in_fd_, prompt_fd_, !echo, reraise);
            if (!attempt.unusable() && !detail::prompt_attempt::interrupted()) {
                print(prompt_fd_, prompt, false);
                why = read_line(line, attempt.wake_fd());
            }
            const unsigned caught = attempt.end();
            if (caught == 0) return why;
            line.clear();  // an interrupted answer is wiped, never used
            // Ctrl-C, or a signal that the host's own handler took.
            if ((caught & ~detail::terminal_stop_bits) != 0) return failure::cancelled;
            // Only stops: stopped and continued; echo off again, prompt again.
        }
    }

    failure read_line(secret_string& line, int wake_fd) {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::milliseconds(options_.timeout_ms);
        bool too_long = false;
        bool any = false;
        for (;;) {
            // Checked before each wait too: a wake-up byte drained below may
            // have been a signal's that arrived after the last check.
            if (detail::prompt_attempt::interrupted()) return failure::cancelled;
            int wait = -1;
            if (options_.timeout_ms >= 0) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
                wait = left.count() <= 0 ? 0 : static_cast<int>(left.count());
            }
            pollfd p[2] = {{in_fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
            int ready = ::poll(p, wake_fd >= 0 ? 2 : 1, wait);
            if (detail::prompt_attempt::interrupted()) return failure::cancelled;
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return failure::input_closed;  // e.g. EINVAL: over RLIMIT_NOFILE
            if (ready == 0) return failure::timed_out;
            if (p[0].revents == 0) {  // a wake-up with nothing recorded (a forked child's)
                detail::drain(wake_fd);
                continue;
            }
            char c = 0;
            ssize_t n = ::read(in_fd_, &c, 1);
            // After poll said readable, read blocks (and so can see EINTR) only if
            // another reader takes the byte first: no test can order that.
            if (n < 0 && errno == EINTR) continue;  // LCOV_EXCL_BR_LINE: see above
            if (n <= 0) {                           // EOF, or the terminal hung up
                if (!any) return failure::input_closed;
                break;
            }
            any = true;
            if (c == '\n') break;
            if (too_long) continue;  // drain the rest of an overlong line
            if (line.size() + 1 >= PAM_MAX_RESP_SIZE) {
                too_long = true;
                line.clear();
                continue;
            }
            if (line.try_push_back(c) != errc::ok) return failure::out_of_memory;
        }
        if (too_long) return failure::answer_too_long;
        if (!line.empty() && line.view().back() == '\r') line.pop_back();
        return failure::none;
    }

    terminal_options options_;
    int tty_fd_ = -1;
    int in_fd_ = STDIN_FILENO;
    int prompt_fd_ = STDERR_FILENO;
};

}  // namespace handoff::pam

#endif  // HANDOFF_PAM_TERMINAL_HPP
