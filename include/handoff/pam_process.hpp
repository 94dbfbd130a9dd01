// handoff::pam process: a PAM transaction in a worker process of its own.
// SPDX-License-Identifier: MIT
//
// PAM stacks are written for a process of their own: Debian's libpam calls
// libaudit's static buffer, modules keep globals, NSS modules and libcrypt
// keep secrets in the heap, and a module may crash, exit or never return.
// greetd, sshd, sddm and lightdm run PAM in a helper process. This header does
// the same behind the channel of async_transaction (pam_async.hpp):
//
//   process_transaction  the body runs in a child process forked for it; each
//                        conversation call crosses a socketpair to the owner,
//                        whose end is the same async_channel
//   worker               what the body may hold in the child: it awaits the
//                        owner's session_request (greetd's start_session) and
//                        reports what it learnt (a short text) to the owner
//   worker_exit          how a worker process ended
//
// Fork safety, by construction: the owner forks only when it is proven to be
// single-threaded at that moment (/proc/self/task has one entry), and refuses
// otherwise with PAM_SYSTEM_ERR and "process_transaction refuses to fork: the
// process has other threads" (channel().error() is EDEADLK). With one thread
// no lock can be held by anyone else, so the child may malloc, dlopen and
// call NSS as any process does; and no other thread can appear between the
// check and the fork, since only a thread of the process can make one. What
// the owner must do: create process transactions from a single-threaded
// event loop (authd's shape), before any thread is started.
//
// Linux only (socketpair(SOCK_SEQPACKET), epoll, timerfd, prctl).
#ifndef HANDOFF_PAM_PROCESS_HPP
#define HANDOFF_PAM_PROCESS_HPP

#include <handoff/pam_async.hpp>

#if !defined(__linux__)
#error "handoff/pam_process.hpp needs Linux (SOCK_SEQPACKET, epoll, timerfd, prctl)"
#endif

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace handoff::pam {

struct process_options {
    // How long a worker has to end after cancel(), or after the channel's
    // deadline, or after its socket closed, before it is killed (SIGKILL).
    std::chrono::milliseconds grace{1000};
    // The longest the worker may run without a word (a conversation call,
    // the session wait, or its end) while it owes one: from its start or the
    // owner's last answer. Past it the worker is killed (PAM_ABORT,
    // failure::timed_out): a module that never returns. Negative: no limit.
    std::chrono::milliseconds silence_limit{-1};
    // Runs in the worker just before it leaves with _exit (no atexit handler
    // of the owner runs there): for example libgcov's __gcov_dump.
    void (*before_exit)() = nullptr;
};

// The last request the owner hands a worker after authentication: the
// command and environment of greetd's start_session.
struct session_request {
    std::vector<std::string> command;
    std::vector<std::string> environment;
};

// How a worker process ended: exit_code >= 0 when it exited, signal > 0 when
// a signal killed it; both unset (-1, 0) while it runs or when none started.
struct worker_exit {
    int exit_code = -1;
    int signal = 0;
};

namespace detail {

// What crosses the socket, one SOCK_SEQPACKET packet each.
enum class wire_kind : unsigned char {
    call = 'C',       // worker: a conversation call (sequence, messages)
    withdrawn = 'W',  // worker: the call timed out or was cancelled on its side
    ready = 'R',      // worker: the body awaits a session_request (report)
    done = 'D',       // worker: the body returned and pam_end ran (status, PAM user, report)
    answer = 'A',     // owner: the replies to a call (sequence, replies)
    cancel = 'X',     // owner: cancel()
    close = 'Z',      // owner: close()
    deadline = 'T',   // owner: set_deadline() (CLOCK_MONOTONIC, the same in both processes)
    session = 'S',    // owner: the session_request
};

// One packet's buffer, heap only, wiped over what it held before reuse and
// before it is freed: answers cross the socket once and leave no copy.
class wire {
public:
    static constexpr std::size_t capacity = std::size_t{64} * 1024;

    wire() noexcept : data_(static_cast<char*>(std::malloc(capacity))) {}
    wire(const wire&) = delete;
    wire& operator=(const wire&) = delete;
    ~wire() {
        clear();
        std::free(data_);
    }

    bool usable() const noexcept { return data_ != nullptr; }
    void clear() noexcept {
        // Branch not covered: data_ is null only when malloc failed (out of memory).
        if (data_ != nullptr && used_ > 0) secure_wipe(data_, used_);  // LCOV_EXCL_BR_LINE
        used_ = size_ = pos_ = 0;
        bad_ = false;
    }
    void start(wire_kind kind) noexcept {
        clear();
        put_u8(static_cast<unsigned char>(kind));
    }

    void put_u8(unsigned char v) noexcept { put(&v, 1); }
    void put_u32(std::uint32_t v) noexcept { put(&v, sizeof v); }
    void put_i64(std::int64_t v) noexcept { put(&v, sizeof v); }
    void put_text(std::string_view t) noexcept {
        put_u32(static_cast<std::uint32_t>(t.size()));
        put(t.data(), t.size());
    }
    bool bad() const noexcept { return bad_; }

    // Sends the packet; false when it could not go whole (peer gone, full).
    bool send(int fd, int flags = 0) noexcept {
        // LCOV_EXCL_START: a packet too big, or no buffer (out of memory)
        if (bad_ || data_ == nullptr) return false;
        // LCOV_EXCL_STOP
        ssize_t n = 0;
        do {
            n = ::send(fd, data_, size_, flags | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        return n == static_cast<ssize_t>(size_);
    }
    // Receives one packet: its length, 0 at end of stream, -1 on error
    // (errno; EAGAIN when nothing waits on a non-blocking call).
    ssize_t receive(int fd, int flags = 0) noexcept {
        clear();
        if (data_ == nullptr) return -1;  // LCOV_EXCL_LINE: no buffer (out of memory)
        ssize_t n = 0;
        // EINTR cannot happen here, but is retried if it ever does: the worker
        // receives only after poll said a packet waits, the owner with
        // MSG_DONTWAIT, so this recv never blocks for a signal to interrupt.
        do {
            n = ::recv(fd, data_, capacity, flags);
        } while (n < 0 && errno == EINTR);  // LCOV_EXCL_BR_LINE: see above
        if (n > 0) used_ = size_ = static_cast<std::size_t>(n);
        return n;
    }

    wire_kind kind() noexcept { return static_cast<wire_kind>(get_u8()); }
    unsigned char get_u8() noexcept {
        unsigned char v = 0;
        get(&v, 1);
        return v;
    }
    std::uint32_t get_u32() noexcept {
        std::uint32_t v = 0;
        get(&v, sizeof v);
        return v;
    }
    std::int64_t get_i64() noexcept {
        std::int64_t v = 0;
        get(&v, sizeof v);
        return v;
    }
    std::string_view get_text() noexcept {
        std::uint32_t n = get_u32();
        // LCOV_EXCL_START: packets come from this header only
        if (bad_ || n > size_ - pos_) {
            bad_ = true;
            return {};
        }
        // LCOV_EXCL_STOP
        std::string_view t(data_ + pos_, n);
        pos_ += n;
        return t;
    }

private:
    void put(const void* p, std::size_t n) noexcept {
        // LCOV_EXCL_START: a packet over 64 KiB, or no buffer
        if (bad_ || data_ == nullptr || n > capacity - size_) {
            bad_ = true;
            return;
        }
        // LCOV_EXCL_STOP
        if (n == 0) return;  // an empty text's data() may be NULL
        std::memcpy(data_ + size_, p, n);
        size_ += n;
        used_ = size_;
    }
    void get(void* p, std::size_t n) noexcept {
        // LCOV_EXCL_START: packets come from this header only
        if (bad_ || n > size_ - pos_) {
            bad_ = true;
            return;
        }
        // LCOV_EXCL_STOP
        std::memcpy(p, data_ + pos_, n);
        pos_ += n;
    }

    char* data_;
    std::size_t used_ = 0;  // bytes that held data since the last wipe
    std::size_t size_ = 0;
    std::size_t pos_ = 0;
    bool bad_ = false;
};

inline std::int64_t to_wire_time(std::chrono::steady_clock::time_point t) noexcept {
    if (t == std::chrono::steady_clock::time_point::max()) return INT64_MAX;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline std::chrono::steady_clock::time_point from_wire_time(std::int64_t ns) noexcept {
    if (ns == INT64_MAX) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(ns)));
}
// Milliseconds from now until `t` for poll(2): -1 for never, 0 when past.
inline int poll_wait(std::chrono::steady_clock::time_point t) noexcept {
    using namespace std::chrono;
    if (t == steady_clock::time_point::max()) return -1;
    auto left = duration_cast<milliseconds>(t - steady_clock::now()).count() + 1;
    if (left <= 0) return 0;
    return left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

// The number of threads of this process, or -errno when /proc cannot say.
inline int thread_count() noexcept {
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return -errno;
    int n = 0;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    return n;
}

// ===========================================================================
// The worker's side (in the child)
// ===========================================================================

// The worker's end of the socket: the conversation handler's transport and
// the session request's. Lives in the child only; single-threaded.
class worker_end {
public:
    // The most a body's report may hold, in bytes (worker::report).
    static constexpr std::size_t report_limit = 4096;

    worker_end(int sock, std::chrono::milliseconds answer_timeout) noexcept
        : sock_(sock), timeout_(answer_timeout) {}

    void converse(const message_batch& batch, reply_batch& out) noexcept {
        if (failure ended = end_reason(); ended != failure::none) return refuse_all(out, ended);
        const std::uint32_t seq = ++seq_;
        out_.start(wire_kind::call);
        out_.put_u32(seq);
        out_.put_u32(static_cast<std::uint32_t>(batch.size()));
        for (const message m : batch) {
            out_.put_u32(static_cast<std::uint32_t>(m.kind()));
            out_.put_text(m.kind() == style::binary_prompt ? std::string_view() : m.text());
        }
        // LCOV_EXCL_START: a call over 64 KiB: no module sends one
        if (out_.bad()) return refuse_all(out, failure::out_of_memory);
        // LCOV_EXCL_STOP
        // LCOV_EXCL_START: the owner died: its death signal races this
        if (!out_.send(sock_)) {
            eof_ = true;  // the owner is gone
            return refuse_all(out, failure::input_closed);
        }
        // LCOV_EXCL_STOP
        out_.clear();
        const auto give_up = deadline_after(std::chrono::steady_clock::now(), timeout_);
        for (;;) {
            const auto until = std::min(give_up, deadline_);
            if (!wait_readable(until)) {
                withdraw(seq);
                return refuse_all(out, failure::timed_out);
            }
            // LCOV_EXCL_START: the owner died: its death signal races this
            if (!receive()) return refuse_all(out, failure::input_closed);
            // LCOV_EXCL_STOP
            if (in_kind_ == wire_kind::answer) {
                if (in_.get_u32() == seq && in_.get_u32() == batch.size()) {
                    take_answer(out);
                    return;
                }
                // LCOV_EXCL_START: an answer racing the worker's own timeout
                in_.clear();
                continue;
                // LCOV_EXCL_STOP
            }
            // A deadline already past may be followed by a later one queued
            // behind it: the wait above (with no time left) reads that first.
            failure ended = end_reason();
            if (ended != failure::none && ended != failure::timed_out) {
                return refuse_all(out, ended);
            }
        }
    }

    std::optional<session_request> await_session() {
        if (!session_ && end_reason() == failure::none) {
            out_.start(wire_kind::ready);
            out_.put_text(std::string_view(report_, report_size_));
            // LCOV_EXCL_START: the owner died: its death signal races this
            if (!out_.send(sock_)) eof_ = true;
            // LCOV_EXCL_STOP
        }
        while (!session_ && end_reason() == failure::none) {
            // LCOV_EXCL_START: the deadline passing while the body awaits
            if (!wait_readable(deadline_)) break;
            // LCOV_EXCL_STOP
            if (!receive()) break;  // LCOV_EXCL_LINE: the owner died: its death signal races this
            // LCOV_EXCL_START: an answer racing the worker's own timeout
            if (in_kind_ == wire_kind::answer) in_.clear();
            // LCOV_EXCL_STOP
        }
        return std::exchange(session_, std::nullopt);
    }

    void send_done(const status& st, std::string_view pam_user) noexcept {
        out_.start(wire_kind::done);
        out_.put_u32(static_cast<std::uint32_t>(st.code()));
        out_.put_u8(static_cast<unsigned char>(st.conversation_failure()));
        out_.put_text(pam_user);
        out_.put_text(std::string_view(report_, report_size_));
        (void)out_.send(sock_);
        out_.clear();
    }

    bool set_report(std::string_view text) noexcept {
        if (text.size() > report_limit) return false;
        if (!text.empty()) std::memcpy(report_, text.data(), text.size());
        report_size_ = text.size();
        return true;
    }

private:
    failure end_reason() const noexcept {
        if (cancelled_) return failure::cancelled;
        if (closed_ || eof_) return failure::input_closed;
        if (std::chrono::steady_clock::now() >= deadline_) return failure::timed_out;
        return failure::none;
    }
    static void refuse_all(reply_batch& out, failure why) noexcept {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = reply::refuse(why);
    }
    // Whether a packet waits before `until`.
    bool wait_readable(std::chrono::steady_clock::time_point until) noexcept {
        for (;;) {
            pollfd p{sock_, POLLIN, 0};
            int rc = ::poll(&p, 1, poll_wait(until));
            if (rc > 0) return true;
            if (rc == 0) {
                // poll waits at least its timeout, which poll_wait rounds up:
                if (std::chrono::steady_clock::now() >= until) return false;  // LCOV_EXCL_BR_LINE
                continue;  // LCOV_EXCL_LINE: poll's millisecond rounding woke us early
            }
            if (errno != EINTR) return false;  // LCOV_EXCL_LINE: poll on one valid descriptor
        }
    }
    void withdraw(std::uint32_t seq) noexcept {
        out_.start(wire_kind::withdrawn);
        out_.put_u32(seq);
        (void)out_.send(sock_);
        out_.clear();
    }
    // Reads one packet and applies what it says; false at the owner's end.
    // An answer is left in in_ (kind read) for the caller.
    bool receive() noexcept {
        // LCOV_EXCL_START: the owner died: its death signal races this
        if (in_.receive(sock_) <= 0) {
            eof_ = true;
            return false;
        }
        // LCOV_EXCL_STOP
        in_kind_ = in_.kind();
        switch (in_kind_) {
        case wire_kind::cancel: cancelled_ = true; break;
        case wire_kind::close: closed_ = true; break;
        case wire_kind::deadline: deadline_ = from_wire_time(in_.get_i64()); break;
        case wire_kind::session: read_session(); break;
        default: return true;  // an answer, read by the caller
        }
        in_.clear();
        return true;
    }
    void read_session() {
        session_request r;
        for (std::uint32_t n = in_.get_u32(); n > 0 && !in_.bad(); --n)
            r.command.emplace_back(in_.get_text());
        for (std::uint32_t n = in_.get_u32(); n > 0 && !in_.bad(); --n)
            r.environment.emplace_back(in_.get_text());
        // LCOV_EXCL_START: packets come from this header's owner side only
        if (!in_.bad()) session_ = std::move(r);
        // LCOV_EXCL_STOP
    }
    // Each reply is copied once into C memory for libpam; in_ is wiped.
    void take_answer(reply_batch& out) noexcept {
        for (std::size_t i = 0; i < out.size(); ++i) {
            const unsigned char kind = in_.get_u8();
            const auto why = static_cast<failure>(in_.get_u8());
            const std::string_view text = in_.get_text();
            // LCOV_EXCL_START: packets come from this header's owner side only
            if (in_.bad()) break;
            // LCOV_EXCL_STOP
            if (kind == 1) {
                out[i] = reply::answer(text);
            } else if (kind == 2) {
                out[i] = reply::refuse(why);
            }
        }
        // LCOV_EXCL_START: packets come from this header's owner side only
        if (in_.bad()) refuse_all(out, failure::bad_reply);
        // LCOV_EXCL_STOP
        in_.clear();
    }

    int sock_;
    std::chrono::milliseconds timeout_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::uint32_t seq_ = 0;
    bool cancelled_ = false;
    bool closed_ = false;
    bool eof_ = false;
    std::optional<session_request> session_;
    wire out_;
    wire in_;
    wire_kind in_kind_ = wire_kind::answer;
    char report_[report_limit] = {};
    std::size_t report_size_ = 0;
};

// The conversation handler of a worker's transaction.
class worker_handler {
public:
    explicit worker_handler(worker_end* end) noexcept : end_(end) {}
    void operator()(const message_batch& batch, reply_batch& out) const noexcept {
        end_->converse(batch, out);
    }

private:
    worker_end* end_;
};

}  // namespace detail

// What the body holds in the worker besides its transaction (a body taking
// (transaction&, worker&) gets one). Single-threaded, like the worker.
class worker {
public:
    // Tells the owner that the body waits (process_transaction::
    // awaiting_session() turns true, the channel's descriptor readable), then
    // blocks until the owner's start_session() arrives: the request, or
    // nullopt when the owner cancels, closes, goes away, or the channel's
    // deadline passes. Call it after authenticate/acct_mgmt; setcred and
    // open_session then run here, in the process that owns the session.
    std::optional<session_request> await_session() { return end_->await_session(); }

    // The most a report may hold, in bytes.
    static constexpr std::size_t report_limit = detail::worker_end::report_limit;
    // What the body learnt that the owner should know (the body's writes to
    // the owner's memory stay in the worker): a short text of the body's own
    // format, read with process_transaction::report(). It travels with
    // await_session()'s notice and with the body's result, each time the
    // last one set; a worker that dies before either loses it. Not for
    // secrets. False, and the report unchanged, when longer than report_limit.
    bool report(std::string_view text) noexcept { return end_->set_report(text); }

private:
    friend class process_transaction;
    explicit worker(detail::worker_end* end) noexcept : end_(end) {}
    detail::worker_end* end_;
};

namespace detail {

// ===========================================================================
// The owner's side
// ===========================================================================

// The owner's end of one worker: the socket, the worker's pid, and what the
// worker said. fd() is an epoll descriptor over the socket and a timerfd, so
// the owner's loop also wakes when a grace period runs out (the worker is then
// killed) or when news was read by someone else. Thread-safe (one mutex).
class process_link final : public channel_core {
public:
    process_link(const async_options& options, const process_options& process) noexcept
        : timeout_(options.answer_timeout),
          grace_(process.grace),
          silence_(process.silence_limit),
          heard_at_(std::chrono::steady_clock::now()) {}
    process_link(const process_link&) = delete;
    process_link& operator=(const process_link&) = delete;
    ~process_link() override { close_all(); }

    // Owner, before the fork: the socketpair (the worker's end is returned
    // through `worker_sock`), the epoll and timer descriptors. errno-like
    // result, 0 on success.
    int open(int& worker_sock) noexcept {
        int sv[2];
        if (!in_.usable()) return error_ = ENOMEM;  // LCOV_EXCL_LINE: out of memory
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return error_ = errno;
        sock_ = above_stdio(sv[0]);
        worker_sock = sv[1];
        ::fcntl(sock_, F_SETFL, ::fcntl(sock_, F_GETFL) | O_NONBLOCK);
        epoll_ = above_stdio(::epoll_create1(EPOLL_CLOEXEC));
        timer_ = above_stdio(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (epoll_ < 0 || timer_ < 0) {
            error_ = errno;
            ::close(worker_sock);
            worker_sock = -1;
            return error_;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = sock_;
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, sock_, &ev);
        ev.data.fd = timer_;
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &ev);
        return 0;
    }
    void started(pid_t pid) noexcept { pid_ = pid; }
    void refuse(int error) noexcept {
        error_ = error;
        closed_ = true;
    }

    int fd() const noexcept override { return epoll_; }
    int error() const noexcept override { return error_; }  // LCOV_EXCL_LINE: unused (see fail)

    // No PAM end lives here: the worker's handler is in the child.
    void converse(const message_batch&, reply_batch& out) noexcept override {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = reply::refuse(failure::refused);
    }

    std::optional<pending_call> take(
        std::optional<std::chrono::milliseconds> wait_for) noexcept override {
        std::unique_lock<std::mutex> lock(mu_);
        pump_locked();
        if (wait_for) {
            const auto until = wait_for->count() < 0
                                   ? std::chrono::steady_clock::time_point::max()
                                   : deadline_after(std::chrono::steady_clock::now(), *wait_for);
            while (!has_call_locked() && !over_locked() &&
                   std::chrono::steady_clock::now() < until) {
                lock.unlock();
                pollfd p{epoll_, POLLIN, 0};
                (void)::poll(&p, 1, poll_wait(until));
                lock.lock();
                pump_locked();
            }
        }
        news_ = false;
        rearm_locked();
        if (!has_call_locked()) return std::nullopt;
        std::optional<pending_call> copy(std::in_place);
        copy->id_ = call_.id_;
        for (std::size_t i = 0; i < call_.size_; ++i) {
            copy->messages_[i].kind_ = call_.messages_[i].kind_;
            copy->size_ = i + 1;
            // LCOV_EXCL_BR_START: try_append fails only out of memory
            if (copy->messages_[i].text_.try_append(call_.messages_[i].text()) != errc::ok) {
                // LCOV_EXCL_BR_STOP
                refuse_call_locked(failure::out_of_memory);  // LCOV_EXCL_LINE: out of memory
                return std::nullopt;                         // LCOV_EXCL_LINE
            }
        }
        return copy;
    }

    bool answer(pending_call& call) noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        pump_locked();
        bool taken = false;
        if (has_call_locked() && !cancelled_ && !closed_ && call.id_ == call_.id_ &&
            call.size_ == call_.size_ && std::chrono::steady_clock::now() < expiry_locked()) {
            out_.start(wire_kind::answer);
            out_.put_u32(seq_);
            out_.put_u32(static_cast<std::uint32_t>(call.size_));
            for (std::size_t i = 0; i < call.size_; ++i) {
                const reply& r = call.replies_[i];
                out_.put_u8(r.has_answer() ? 1 : (r.error() != failure::none ? 2 : 0));
                out_.put_u8(static_cast<unsigned char>(r.error()));
                out_.put_text(r.text());
            }
            taken = out_.send(sock_, MSG_DONTWAIT);
            out_.clear();  // the answers' copy in this process is wiped here
            if (taken) {
                call_.clear();
                heard_at_ = std::chrono::steady_clock::now();  // its turn to speak again
            }
            rearm_locked();
        }
        call.clear();
        return taken;
    }

    void end(bool cancel) noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        if (cancel ? cancelled_ : closed_) return;
        (cancel ? cancelled_ : closed_) = true;
        call_.clear();
        out_.start(cancel ? wire_kind::cancel : wire_kind::close);
        (void)out_.send(sock_, MSG_DONTWAIT);
        out_.clear();
        if (cancel) cancel_at_ = std::chrono::steady_clock::now();
        news_ = true;
        rearm_locked();
    }
    bool cancelled() const noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        return cancelled_;
    }
    bool closed() const noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        return closed_;
    }
    void set_deadline(std::chrono::steady_clock::time_point when) noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        deadline_ = when;
        out_.start(wire_kind::deadline);
        out_.put_i64(to_wire_time(when));
        (void)out_.send(sock_, MSG_DONTWAIT);
        out_.clear();
        rearm_locked();
    }

    // ---- for process_transaction -------------------------------------------

    // Never blocks: reads what the worker said, reaps it once it has ended,
    // kills it once a grace period has run out.
    bool finished() noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        pump_locked();
        return reaped_;
    }
    // Blocks until the worker has been reaped (killing it after a grace
    // period if cancel, the deadline, or `kill_after` asks).
    void wait_reaped(bool cancel_first) noexcept {
        if (cancel_first) end(true);
        std::unique_lock<std::mutex> lock(mu_);
        pump_locked();
        while (!reaped_) {
            const auto next = next_event_locked();
            lock.unlock();
            pollfd p{epoll_, POLLIN, 0};
            (void)::poll(&p, 1, poll_wait(next));
            lock.lock();
            pump_locked();
        }
    }
    bool awaiting_session() const noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        return ready_ && !session_sent_;
    }
    bool send_session(const session_request& r) noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        if (session_sent_ || cancelled_ || closed_ || sock_ < 0) return false;
        out_.start(wire_kind::session);
        out_.put_u32(static_cast<std::uint32_t>(r.command.size()));
        for (const std::string& s : r.command) out_.put_text(s);
        out_.put_u32(static_cast<std::uint32_t>(r.environment.size()));
        for (const std::string& s : r.environment) out_.put_text(s);
        session_sent_ = out_.send(sock_, MSG_DONTWAIT);
        out_.clear();
        heard_at_ = std::chrono::steady_clock::now();
        rearm_locked();
        return session_sent_;
    }
    status outcome() const noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        // Its result came after pam_end: what happens to it later (a slow
        // exit killed after a grace period, valgrind's exit code) changes nothing.
        if (done_) {
            return status(done_code_, ::pam_strerror(nullptr, done_code_), done_failure_);
        }
        if (killed_for_ == failure::cancelled) {
            return status(PAM_ABORT, "the PAM worker was killed: cancelled and not ending",
                          failure::cancelled);
        }
        if (killed_for_ == failure::timed_out) {
            return status(PAM_ABORT, "the PAM worker was killed: silent past its deadline",
                          failure::timed_out);
        }
        if (!lost_ && WIFSIGNALED(wait_status_)) {
            return status(PAM_SYSTEM_ERR, "the PAM worker was killed by a signal",
                          failure::worker_died);
        }
        return status(PAM_SYSTEM_ERR, "the PAM worker exited before its result",
                      failure::worker_died);
    }
    worker_exit exit_info() const noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        worker_exit e;
        if (!reaped_ || lost_) return e;
        if (WIFEXITED(wait_status_)) e.exit_code = WEXITSTATUS(wait_status_);
        if (WIFSIGNALED(wait_status_)) e.signal = WTERMSIG(wait_status_);
        return e;
    }
    std::string pam_user() const {
        std::lock_guard<std::mutex> lock(mu_);
        return pam_user_;
    }
    std::string report() const {
        std::lock_guard<std::mutex> lock(mu_);
        return report_;
    }
    // Closes the owner's descriptors (after the worker has been reaped).
    void close_all() noexcept {
        for (int* fd : {&sock_, &timer_, &epoll_}) {
            if (*fd >= 0) ::close(*fd);
            *fd = -1;
        }
    }

private:
    // An owner that closed 0, 1 or 2 would otherwise give its own descriptors
    // those numbers, and the worker would inherit them as its stdio (a
    // module's stderr write read back by the worker as a command).
    static int above_stdio(int fd) noexcept {
        if (fd < 0 || fd > 2) return fd;
        const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        ::close(fd);
        return moved;
    }
    bool has_call_locked() const noexcept { return call_.size_ > 0; }
    bool over_locked() const noexcept { return cancelled_ || closed_; }
    std::chrono::steady_clock::time_point expiry_locked() const noexcept {
        return std::min(give_up_, deadline_);
    }
    // LCOV_EXCL_START: only when a copy of the call cannot be allocated
    void refuse_call_locked(failure why) noexcept {
        out_.start(wire_kind::answer);
        out_.put_u32(seq_);
        out_.put_u32(static_cast<std::uint32_t>(call_.size_));
        for (std::size_t i = 0; i < call_.size_; ++i) {
            out_.put_u8(2);
            out_.put_u8(static_cast<unsigned char>(why));
            out_.put_text({});
        }
        (void)out_.send(sock_, MSG_DONTWAIT);
        out_.clear();
        call_.clear();
    }
    // LCOV_EXCL_STOP

    // Reads every packet waiting, reaps, kills, and re-arms the timer.
    void pump_locked() noexcept {
        std::uint64_t expirations = 0;
        if (timer_ >= 0) (void)!::read(timer_, &expirations, sizeof expirations);
        drain_locked();
        const auto now = std::chrono::steady_clock::now();
        if (!reaped_ && pid_ > 0) {
            const pid_t w = ::waitpid(pid_, &wait_status_, WNOHANG);
            // LCOV_EXCL_BR_START: waitpid with WNOHANG and a pid of ours fails
            // only with ECHILD (it does not block, so no EINTR; no EINVAL)
            if (w < 0 && errno == ECHILD) {
                // SIGCHLD ignored (or reaped by another): the kernel reaped it.
                lost_ = true;  // how it ended is unknown: its result says, if it came
            }
            if (w == pid_ || (w < 0 && errno == ECHILD)) {
                // LCOV_EXCL_BR_STOP
                // What it sent after the drain above and before it died.
                drain_locked();
                reaped_ = true;
                closed_ = true;
                // A helper the worker forked may still hold its end.
                if (!eof_) ::epoll_ctl(epoll_, EPOLL_CTL_DEL, sock_, nullptr);
                call_.clear();
                news_ = true;
            } else if (cancel_at_ && now >= *cancel_at_ + grace_) {
                kill_locked(failure::cancelled);
            } else if ((deadline_ != std::chrono::steady_clock::time_point::max() &&
                        now >= deadline_ + grace_) ||
                       silent_since_locked() <= now) {
                kill_locked(failure::timed_out);
            } else if ((eof_ && now >= eof_at_ + grace_) || (done_ && now >= done_at_ + grace_)) {
                // It closed its socket, or sent its result, but lives on.
                kill_locked(failure::none);
            }
        }
        rearm_locked();
    }
    // Reads every packet waiting on the socket.
    void drain_locked() noexcept {
        while (sock_ >= 0 && !eof_) {
            ssize_t n = in_.receive(sock_, MSG_DONTWAIT);
            if (n < 0 && errno == EAGAIN) break;
            // The worker ended with a packet of ours unread: the first read
            // says ECONNRESET (once), and what it sent (its result) is still queued.
            // LCOV_EXCL_BR_START: a non-blocking recv on a connected AF_UNIX
            // socket fails with EAGAIN or the socket's pending error, which
            // the kernel reports once (ECONNRESET, when the worker left a
            // packet unread): no other errno, no second reset
            if (n < 0 && errno == ECONNRESET && !reset_) {
                // LCOV_EXCL_BR_STOP
                reset_ = true;
                continue;
            }
            if (n <= 0) {
                eof_ = true;
                closed_ = true;  // no more calls will come
                eof_at_ = std::chrono::steady_clock::now();
                ::epoll_ctl(epoll_, EPOLL_CTL_DEL, sock_, nullptr);
                news_ = true;
                break;
            }
            heard_at_ = std::chrono::steady_clock::now();
            read_packet_locked();
            in_.clear();
        }
    }
    void read_packet_locked() noexcept {
        switch (in_.kind()) {
        case wire_kind::call: {
            call_.clear();
            seq_ = in_.get_u32();
            std::uint32_t n = in_.get_u32();
            if (n == 0 || n > PAM_MAX_NUM_MSG) return;  // not a call: a worker gone wrong
            for (std::uint32_t i = 0; i < n; ++i) {
                call_.messages_[i].kind_ = static_cast<style>(in_.get_u32());
                call_.messages_[i].text_.clear();
                // LCOV_EXCL_START: out of memory
                if (call_.messages_[i].text_.try_append(in_.get_text()) != errc::ok) {
                    call_.size_ = i + 1;
                    return refuse_call_locked(failure::out_of_memory);
                }
                // LCOV_EXCL_STOP
                call_.size_ = i + 1;
            }
            if (in_.bad()) {  // truncated: not a call either
                call_.clear();
                return;
            }
            call_.id_ = next_call_id();
            give_up_ = deadline_after(std::chrono::steady_clock::now(), timeout_);
            news_ = true;
            return;
        }
        case wire_kind::withdrawn:
            if (in_.get_u32() == seq_) call_.clear();
            news_ = true;
            return;
        case wire_kind::ready:
            ready_ = true;
            news_ = true;
            take_report_locked();
            return;
        case wire_kind::done: {
            const auto code = static_cast<int>(in_.get_u32());
            const auto why = static_cast<failure>(in_.get_u8());
            const std::string_view user = in_.get_text();
            const std::string_view report = in_.get_text();
            if (in_.bad()) return;  // truncated: no result (the worker ends without one)
            done_code_ = code;
            done_failure_ = why;
            pam_user_.assign(user.data(), user.size());
            report_.assign(report.data(), report.size());
            done_ = true;
            done_at_ = std::chrono::steady_clock::now();
            return;
        }
        default: return;  // LCOV_EXCL_LINE: the worker sends no other kind
        }
    }
    void take_report_locked() noexcept {
        std::string_view text = in_.get_text();
        report_.clear();
        if (!in_.bad()) report_.append(text.data(), text.size());
    }
    // When the worker has been silent too long (max: never, or it waits on us).
    std::chrono::steady_clock::time_point silent_since_locked() const noexcept {
        using clock = std::chrono::steady_clock;
        if (silence_.count() < 0 || has_call_locked() || (ready_ && !session_sent_) || eof_ ||
            done_)
            return clock::time_point::max();
        return deadline_after(heard_at_, silence_);
    }
    void kill_locked(failure why) noexcept {
        if (kill_sent_) return;
        ::kill(pid_, SIGKILL);
        kill_sent_ = true;
        killed_for_ = why;
    }
    // The next moment pump_locked has work without a packet: news for the
    // owner (at once), a grace period's end, or the reap after a kill.
    std::chrono::steady_clock::time_point next_event_locked() const noexcept {
        using clock = std::chrono::steady_clock;
        auto when = clock::time_point::max();
        if (reaped_) return when;
        // After its result or end of file it exits soon: polled, as a helper
        // it forked may hold its socket, and then no end of file comes.
        if (kill_sent_ || eof_ || done_) when = clock::now() + std::chrono::milliseconds(1);
        if (cancel_at_) when = std::min(when, *cancel_at_ + grace_);
        if (deadline_ != clock::time_point::max()) when = std::min(when, deadline_ + grace_);
        if (eof_) when = std::min(when, eof_at_ + grace_);
        if (done_) when = std::min(when, done_at_ + grace_);
        when = std::min(when, silent_since_locked());
        return when;
    }
    void rearm_locked() noexcept {
        if (timer_ < 0) return;
        using namespace std::chrono;
        itimerspec at{};
        auto when = news_ ? steady_clock::now() : next_event_locked();
        if (when == steady_clock::time_point::max()) {
            ::timerfd_settime(timer_, 0, &at, nullptr);
            return;
        }
        const std::int64_t ns = std::max<std::int64_t>(to_wire_time(when), 1);
        at.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
        at.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
        ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &at, nullptr);
    }

    mutable std::mutex mu_;
    int sock_ = -1;
    int epoll_ = -1;
    int timer_ = -1;
    int error_ = 0;
    pid_t pid_ = -1;
    const std::chrono::milliseconds timeout_;
    const std::chrono::milliseconds grace_;
    const std::chrono::milliseconds silence_;
    std::chrono::steady_clock::time_point heard_at_;  // the worker's last word, or our last answer
    wire in_;
    wire out_;
    pending_call call_;  // the call the worker waits on (messages only)
    std::uint32_t seq_ = 0;
    std::chrono::steady_clock::time_point give_up_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::optional<std::chrono::steady_clock::time_point> cancel_at_;
    std::chrono::steady_clock::time_point eof_at_;
    std::chrono::steady_clock::time_point done_at_;
    bool cancelled_ = false;
    bool closed_ = false;
    bool news_ = false;
    bool eof_ = false;
    bool reset_ = false;  // ECONNRESET read: the worker left a packet of ours unread
    bool ready_ = false;
    bool session_sent_ = false;
    bool done_ = false;
    bool reaped_ = false;
    bool kill_sent_ = false;
    bool lost_ = false;  // reaped by the kernel, wait status unknown
    failure killed_for_ = failure::none;
    int done_code_ = PAM_SYSTEM_ERR;
    failure done_failure_ = failure::none;
    int wait_status_ = 0;
    std::string pam_user_;
    std::string report_;
};

// In the child, before anything else: die with the owner, default signal
// handling, and no descriptor of the owner but the socket (moved to 3) and
// 0, 1, 2.
inline void prepare_worker(int sock, pid_t owner) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != owner) ::_exit(127);  // LCOV_EXCL_LINE: the owner died before prctl
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
        struct sigaction old {};
        if (::sigaction(sig, nullptr, &old) != 0) continue;
        const bool ignored = (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_IGN;
        if (!ignored) ::sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (sock != 3 && ::dup2(sock, 3) != 3) ::_exit(127);  // LCOV_EXCL_LINE
    ::fcntl(3, F_SETFD, FD_CLOEXEC);                      // not into a program a module runs
    if (sock < 3) {
        // LCOV_EXCL_START: an owner that closed 0, 1 or 2 before the fork
        int null = ::open("/dev/null", O_RDWR);
        if (null >= 0 && null != sock) {
            ::dup2(null, sock);
            ::close(null);
        }
        // LCOV_EXCL_STOP
    }
#if defined(SYS_close_range)
    // Fails only before Linux 5.9 (ENOSYS): the loop below then does its work.
    if (::syscall(SYS_close_range, 4U, ~0U, 0U) == 0) return;  // LCOV_EXCL_BR_LINE
#endif
    // LCOV_EXCL_START: kernels before 5.9
    long max = ::sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 4; fd < max; ++fd) ::close(fd);
    // LCOV_EXCL_STOP
}

}  // namespace detail

// A PAM transaction in a worker process of its own: pam_start (or
// pam_start_confdir), then body(transaction&) -> status (or body(transaction&,
// worker&)), then pam_end, all in a child forked for it; the owner answers
// through channel(), the same async_channel as async_transaction's.
//
// What differs from async_transaction, and why:
// - The constructor refuses (PAM_SYSTEM_ERR, channel().error() EDEADLK) when
//   the owner has other threads: see the top of this header.
// - The body runs on a copy of the owner's memory: what it writes there is
//   the worker's own. Its status comes back (code and failure; the text is
//   pam_strerror's), pam_user() gives PAM_USER as the body left it, and
//   report() what a body taking a worker& set with worker::report(). An
//   exception thrown by the body gives handler_threw and is not rethrown.
// - channel().fd() is an epoll descriptor; it also turns readable when a
//   grace period ends, and stays readable, once the worker has ended, until
//   pending() or wait() is called.
// - The worker can fail on its own: killed by a signal or exiting before its
//   result gives PAM_SYSTEM_ERR with failure::worker_died (exit_info() says
//   how); cancelled and still running after process_options::grace, or
//   still running a grace period after the channel's deadline, it is killed
//   (PAM_ABORT with failure::cancelled or failure::timed_out).
// - The destructor cancels, waits at most the grace period, then kills and
//   reaps: it never waits for libpam longer than that.
// - A body may take a worker& and await the owner's start_session().
//
// Thread-safety: as async_transaction. A body that destroys its transaction
// destroys the worker's copy of it: the worker then aborts (std::abort), and
// the owner sees failure::worker_died with SIGABRT.
class process_transaction final : public hosted_transaction {
public:
    template <class Body>
    process_transaction(std::string_view service, std::string_view user, Body body,
                        const async_options& options = {}, const start_options& start = {},
                        const process_options& process = {})
        // LCOV_EXCL_BR_START: core_ is null only when new failed (out of memory)
        : core_(new (std::nothrow) detail::process_link(options, process)),
          channel_(core_, core_ ? 0 : ENOMEM) {
        // LCOV_EXCL_BR_STOP
        static_assert(std::is_invocable_r_v<status, Body&, transaction&> ||
                          std::is_invocable_r_v<status, Body&, transaction&, worker&>,
                      "the body is status(pam::transaction&) or status(pam::transaction&, "
                      "pam::worker&)");
        // LCOV_EXCL_START: out of memory
        if (!core_) {
            fail(PAM_BUF_ERR, ENOMEM, ::pam_strerror(nullptr, PAM_BUF_ERR));
            return;
        }
        // LCOV_EXCL_STOP
        if (const int threads = detail::thread_count(); threads < 0) {
            fail(PAM_SYSTEM_ERR, -threads,
                 "process_transaction refuses to fork: /proc/self/task cannot say if the "
                 "process has other threads");
            return;
        } else if (threads != 1) {
            fail(PAM_SYSTEM_ERR, EDEADLK,
                 "process_transaction refuses to fork: the process has other threads");
            return;
        }
        int worker_sock = -1;
        if (int e = link()->open(worker_sock); e != 0) {
            fail(PAM_SYSTEM_ERR, e, ::pam_strerror(nullptr, PAM_SYSTEM_ERR));
            return;
        }
        const pid_t owner = ::getpid();
        owner_ = owner;  // before the fork: the worker's copy knows it is a copy
        // A module that calls exit() in the worker flushes the worker's copy of
        // every stdio buffer: empty them first, or the owner's output repeats.
        (void)std::fflush(nullptr);
        const pid_t pid = ::fork();
        const int fork_error = errno;
        if (pid == 0) run_worker(worker_sock, owner, service, user, body, options, start, process);
        ::close(worker_sock);
        // LCOV_EXCL_START: fork fails only out of processes or memory
        if (pid < 0) {
            const int code = fork_error == EAGAIN ? PAM_BUF_ERR : PAM_SYSTEM_ERR;
            fail(code, fork_error, ::pam_strerror(nullptr, code));
            return;
        }
        // LCOV_EXCL_STOP
        pid_ = pid;
        link()->started(pid);
    }
    process_transaction(const process_transaction&) = delete;
    process_transaction& operator=(const process_transaction&) = delete;

    // Owner thread. Cancels the channel; a worker that has not ended within
    // the grace period is killed; then reaped. Never waits longer than that.
    // In the worker (a body destroying its own transaction): std::abort.
    ~process_transaction() override {
        // True only in a worker, which then aborts and writes no counters.
        if (owner_ > 0 && ::getpid() != owner_) {  // LCOV_EXCL_BR_LINE
            // LCOV_EXCL_START: in a worker that aborts, whose counters are never written
            static const char why[] =
                "handoff: a process_transaction was destroyed from inside its own body\n";
            (void)!::write(2, why, sizeof why - 1);
            std::abort();
            // LCOV_EXCL_STOP
        }
        if (pid_ > 0) link()->wait_reaped(true);
        if (core_) link()->close_all();  // LCOV_EXCL_BR_LINE: null only out of memory
    }

    // Thread-safe. The owner's end, as async_transaction's.
    async_channel& channel() noexcept override { return channel_; }
    // Thread-safe, never blocks: reads the worker's news, reaps it when it
    // has ended, kills it when a grace period has run out.
    bool finished() const noexcept override { return pid_ <= 0 || link()->finished(); }
    // Owner thread. Waits until the worker has ended (killing it after a
    // grace period if it was cancelled or its deadline passed) and returns
    // the body's status or the worker's failure (see the class comment).
    status result() override {
        if (pid_ <= 0) return failed_;
        link()->wait_reaped(false);
        return link()->outcome();
    }

    // Thread-safe. How the worker ended (see worker_exit).
    worker_exit exit_info() const noexcept {
        return pid_ > 0 ? link()->exit_info() : worker_exit();
    }
    // The worker's process id (-1 when none started).
    pid_t pid() const noexcept { return pid_; }
    // PAM_USER as the body left it, once finished() (empty before, or if unset).
    std::string pam_user() const override { return pid_ > 0 ? link()->pam_user() : std::string(); }
    // What the body set with worker::report(), as its last notice carried it:
    // once awaiting_session() or finished() (empty before, or if never set).
    std::string report() const { return pid_ > 0 ? link()->report() : std::string(); }

    // Thread-safe. True once the body waits in worker::await_session() and no
    // request has been sent.
    bool awaiting_session() const noexcept { return pid_ > 0 && link()->awaiting_session(); }
    // Thread-safe, never blocks. Hands the body its session_request (once):
    // false when one was sent already, the channel was cancelled or closed,
    // or the worker is gone.
    bool start_session(const session_request& request) noexcept {
        return pid_ > 0 && link()->send_session(request);
    }

private:
    detail::process_link* link() const noexcept {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-static-cast-downcast): made here, always one
        return static_cast<detail::process_link*>(core_.get());
    }
    void fail(int code, int error, const char* text) noexcept {
        failed_ = status(code, text);
        channel_.error_ = error;
        if (core_) link()->refuse(error);  // LCOV_EXCL_BR_LINE: null only out of memory
    }

    template <class Body>
    [[noreturn]] static void run_worker(int sock, pid_t owner, std::string_view service,
                                        std::string_view user, Body& body,
                                        const async_options& options, const start_options& start,
                                        const process_options& process) noexcept {
        detail::prepare_worker(sock, owner);
        {
            detail::worker_end end(3, options.answer_timeout);
            status st;
            std::string pam_user;
            {
                transaction tx(service, user, detail::worker_handler(&end), start);
                st = tx.started().ok() ? run_body(body, tx, end) : tx.started();
                if (auto u = tx.get_item(item::user)) pam_user.assign(u->data(), u->size());
            }  // pam_end
            end.send_done(st, pam_user);
        }
        // Without before_exit a worker writes no counters: that branch is never recorded.
        if (process.before_exit != nullptr) process.before_exit();  // LCOV_EXCL_BR_LINE
        ::_exit(0);  // LCOV_EXCL_LINE: after before_exit, which wrote the counters
    }
    template <class Body>
    static status run_body(Body& body, transaction& tx, detail::worker_end& end) noexcept {
#if HANDOFF_HAS_EXCEPTIONS
        try {
            return call_body(body, tx, end);
        } catch (...) {
            return status(PAM_SYSTEM_ERR, ::pam_strerror(nullptr, PAM_SYSTEM_ERR),
                          failure::handler_threw);
        }
#else
        return call_body(body, tx, end);
#endif
    }
    template <class Body>
    static status call_body(Body& body, transaction& tx, detail::worker_end& end) {
        if constexpr (std::is_invocable_r_v<status, Body&, transaction&, worker&>) {
            worker w(&end);
            return body(tx, w);
        } else {
            return body(tx);
        }
    }

    detail::async_ref core_;
    async_channel channel_;
    status failed_;
    pid_t owner_ = -1;
    pid_t pid_ = -1;
};

}  // namespace handoff::pam

#endif  // HANDOFF_PAM_PROCESS_HPP
