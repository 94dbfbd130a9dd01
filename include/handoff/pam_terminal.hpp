// handoff::pam::terminal: a ready conversation handler that prompts on the
// terminal, with echo off for secrets. Included by pam.hpp.
// SPDX-License-Identifier: MIT
#ifndef HANDOFF_PAM_TERMINAL_HPP
#define HANDOFF_PAM_TERMINAL_HPP

#include <handoff/pam_types.hpp>

#include <cerrno>
#include <csignal>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace handoff::pam {

struct terminal_options {
    enum class input_source { automatic, tty, standard_input };
    // automatic: standard input when it is not a terminal (scripts, pipes),
    // otherwise /dev/tty.
    input_source input = input_source::automatic;
    // Milliseconds to wait for each answer; negative waits forever.
    int timeout_ms = -1;
    // false: prompts fail (input_closed) at once, info and errors still show.
    bool interactive = true;
    // Explicit descriptors (tests, embedding); -1 chooses as above.
    int input_fd = -1;
    int prompt_fd = -1;
};

// Prompts on the terminal. Echo is turned off with termios for echo-off
// prompts and restored on every path (answer, EOF, timeout, Ctrl-C, throw).
// Input is read one byte at a time up to the newline, so several prompts can
// share a pipe and nothing past an answer is consumed. An overlong line is
// drained to its end and refused, so its tail is never taken as the next
// answer. EOF before any byte is input_closed; a last line without a newline
// is still an answer. Ctrl-C cancels the call (failure::cancelled). Prompts go
// to the terminal (or stderr when input is not a terminal), info to stdout,
// errors to stderr.
class terminal {
public:
    explicit terminal(terminal_options options = {})
        : options_(options), in_fd_(options.input_fd), prompt_fd_(options.prompt_fd) {
        if (in_fd_ < 0) {
            bool want_tty = options_.input == terminal_options::input_source::tty ||
                            (options_.input == terminal_options::input_source::automatic &&
                             ::isatty(STDIN_FILENO) == 1);
            if (want_tty) {
                tty_fd_ = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
            }
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

    reply operator()(const message& m) {
        switch (m.kind()) {
        case style::text_info: print(STDOUT_FILENO, m.text(), true); return reply::none();
        case style::error_msg: print(STDERR_FILENO, m.text(), true); return reply::none();
        case style::binary_prompt: return reply::refuse(failure::refused);
        case style::prompt_echo_off:
        case style::prompt_echo_on:
        case style::radio: break;
        }
        if (!options_.interactive) return reply::refuse(failure::input_closed);
        print(prompt_fd_, m.text(), false);
        secret_string line;
        failure why = read_line(line, m.kind() != style::prompt_echo_off);
        if (why != failure::none) return reply::refuse(why);
        return reply::answer(std::move(line));
    }

private:
    static void print(int fd, std::string_view text, bool newline) noexcept {
        write_all(fd, text);
        if (newline && (text.empty() || text.back() != '\n')) write_all(fd, "\n");
    }
    static void write_all(int fd, std::string_view text) noexcept {
        while (!text.empty()) {
            ssize_t n = ::write(fd, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Turns echo off for its lifetime (if the input is a terminal) and puts
    // the old state back, whatever path leaves the scope.
    class echo_guard {
    public:
        echo_guard(int fd, bool echo) noexcept : fd_(fd) {
            if (echo || ::tcgetattr(fd, &saved_) != 0) return;
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
            active_ = ::tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
        }
        echo_guard(const echo_guard&) = delete;
        echo_guard& operator=(const echo_guard&) = delete;
        ~echo_guard() {
            if (!active_) return;
            ::tcsetattr(fd_, TCSAFLUSH, &saved_);
            // The user's Enter was not echoed: end the prompt's line ourselves.
            static_cast<void>(::write(fd_, "\n", 1));
        }

    private:
        int fd_;
        termios saved_{};
        bool active_ = false;
    };

    // SIGINT during a prompt cancels it: the handler only sets a flag, poll()
    // returns EINTR, and the guards restore the terminal on the way out.
    class interrupt_guard {
    public:
        interrupt_guard() noexcept {
            flag() = 0;
            struct sigaction sa {};
            sa.sa_handler = &on_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = 0;  // no SA_RESTART: poll must return EINTR
            installed_ = ::sigaction(SIGINT, &sa, &old_) == 0;
        }
        interrupt_guard(const interrupt_guard&) = delete;
        interrupt_guard& operator=(const interrupt_guard&) = delete;
        ~interrupt_guard() {
            // sigaction with a valid signal and action does not fail.
            if (installed_) ::sigaction(SIGINT, &old_, nullptr);  // LCOV_EXCL_BR_LINE
        }
        static bool fired() noexcept { return flag() != 0; }

    private:
        static volatile std::sig_atomic_t& flag() noexcept {
            static volatile std::sig_atomic_t f = 0;
            return f;
        }
        static void on_signal(int) noexcept { flag() = 1; }
        struct sigaction old_ {};
        bool installed_ = false;
    };

    failure read_line(secret_string& line, bool echo) {
        interrupt_guard interrupts;
        echo_guard quiet(in_fd_, echo);
        bool too_long = false;
        bool any = false;
        for (;;) {
            pollfd p{in_fd_, POLLIN, 0};
            int ready = ::poll(&p, 1, options_.timeout_ms);
            if (interrupt_guard::fired()) return failure::cancelled;
            // Besides EINTR, poll of one valid pollfd fails only for lack of kernel memory.
            if (ready < 0 && errno == EINTR) continue;    // LCOV_EXCL_BR_LINE
            if (ready < 0) return failure::input_closed;  // LCOV_EXCL_BR_LINE
            if (ready == 0) return failure::timed_out;
            char c = 0;
            ssize_t n = ::read(in_fd_, &c, 1);
            // LCOV_EXCL_START: after poll said readable, read blocks (and so sees EINTR)
            // only if another reader takes the byte first: no test can order that.
            if (n < 0 && errno == EINTR) {
                if (interrupt_guard::fired()) return failure::cancelled;
                continue;
            }
            // LCOV_EXCL_STOP
            if (n <= 0) {  // EOF
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
