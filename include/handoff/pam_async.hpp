// handoff::pam async: conversations answered from another thread or process.
// SPDX-License-Identifier: MIT
//
// A login front end rarely answers PAM's prompts on the stack that called
// pam_authenticate: a greeter speaks over a socket, a screen locker has a UI
// thread, a network service has a peer. This header puts a channel between the
// two sides:
//
//   async_channel      the owner's end: a pollable descriptor and a blocking
//                      wait for pending calls, answers, cancel, deadlines
//   async_handler      the PAM end: a conversation handler that publishes each
//                      call to the channel and blocks until it is answered,
//                      cancelled or out of time
//   pending_call       the owner's copy of one call: its messages and replies
//   async_transaction  a pam::transaction on a worker thread of its own, with
//                      an async handler; destroying it cancels and joins
//
// Needs what pam.hpp needs, plus POSIX threads (glibc >= 2.34 has them in
// libc; elsewhere link with -pthread: Meson dependency('threads'), CMake
// Threads::Threads).
//
// Thread-safety, in one line per class (each member says it again):
// async_channel's members may be called from any thread at once, except its
// destructor; async_handler is called by libpam on the transaction's thread;
// a pending_call belongs to the thread that holds it; async_transaction is
// used from one owner thread, its channel() from any.
#ifndef HANDOFF_PAM_ASYNC_HPP
#define HANDOFF_PAM_ASYNC_HPP

#include <handoff/pam.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#endif

namespace handoff::pam {

namespace detail {
class channel_core;
class async_state;
class process_link;
}  // namespace detail

struct async_options {
    // Longest wait for the owner's answer to one conversation call, counted
    // from the moment the call is published; negative waits forever. When it
    // passes, the call fails with failure::timed_out (PAM_CONV_ERR).
    std::chrono::milliseconds answer_timeout{-1};
};

// ===========================================================================
// What the owner sees: copies of a call's messages, room for its replies
// ===========================================================================

// A copy of one message of a pending call. The text lives in a secret_string
// (heap only, wiped when it goes), so it stays valid after libpam has moved
// on. Binary prompts carry no text here: the owner sees only their style.
class pending_message {
public:
    style kind() const noexcept { return kind_; }
    std::string_view text() const noexcept { return text_.view(); }
    bool is_prompt() const noexcept { return is_prompt_style(kind_); }
    bool is_secret() const noexcept { return kind_ == style::prompt_echo_off; }

private:
    friend class detail::async_state;
    friend class detail::process_link;
    style kind_ = style::text_info;
    secret_string text_;
};

// One conversation call waiting for the owner (at most PAM_MAX_NUM_MSG
// messages: the adapter refuses more before the handler runs). The owner sets
// a reply for each prompt, then gives the call back with
// async_channel::answer(). Replies start as reply::none(); an answer is copied
// into C memory once, when it is set, and that copy is what libpam receives.
// A call destroyed without being answered wipes and frees what it holds.
// Move-only. Thread-safety: none; it belongs to the thread that holds it.
class pending_call {
public:
    pending_call() noexcept = default;
    pending_call(pending_call&& other) noexcept { take(other); }
    pending_call& operator=(pending_call&& other) noexcept {
        if (this != &other) {
            clear();
            take(other);
        }
        return *this;
    }
    pending_call(const pending_call&) = delete;
    pending_call& operator=(const pending_call&) = delete;
    // LCOV_EXCL_BR_START: the compiler's array-destruction edges (an empty
    // array, a throwing element destructor) that no program takes
    ~pending_call() = default;
    // LCOV_EXCL_BR_STOP

    // Which call this is: unique in the process (a call taken from one
    // channel is refused by every other), and larger for a later call.
    std::uint64_t id() const noexcept { return id_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    // Unchecked: i < size().
    const pending_message& operator[](std::size_t i) const noexcept { return messages_[i]; }
    const pending_message* begin() const noexcept { return messages_; }
    const pending_message* end() const noexcept { return messages_ + size_; }

    // Sets the reply to message i; false (the reply dropped, wiped) when
    // i >= size(). The answer forms copy the view into C memory now, or take
    // the secret_string's buffer without a copy; see pam::reply.
    bool set_reply(std::size_t i, reply r) noexcept {
        if (i >= size_) return false;
        replies_[i] = std::move(r);
        return true;
    }
    bool answer(std::size_t i, std::string_view text) noexcept {
        return set_reply(i, reply::answer(text));
    }
    bool answer(std::size_t i, secret_string&& text) noexcept {
        return set_reply(i, reply::answer(std::move(text)));
    }
    // Fails the whole call with `why` (failure::refused unless given).
    void refuse(failure why = failure::refused) noexcept {
        for (std::size_t i = 0; i < size_; ++i) replies_[i] = reply::refuse(why);
    }
    // The reply set so far for message i (unchecked: i < size()).
    const reply& reply_to(std::size_t i) const noexcept { return replies_[i]; }

private:
    friend class async_channel;
    friend class detail::async_state;
    friend class detail::process_link;

    void take(pending_call& other) noexcept {
        id_ = other.id_;
        size_ = std::exchange(other.size_, 0);
        for (std::size_t i = 0; i < size_; ++i) {
            messages_[i] = std::move(other.messages_[i]);
            replies_[i] = std::move(other.replies_[i]);
        }
    }
    // Wipes and frees every text and reply; the call becomes empty.
    void clear() noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            messages_[i] = pending_message();
            replies_[i] = reply();
        }
        size_ = 0;
    }

    std::uint64_t id_ = 0;
    std::size_t size_ = 0;
    pending_message messages_[PAM_MAX_NUM_MSG];
    reply replies_[PAM_MAX_NUM_MSG];
};

namespace detail {

// Call ids are drawn from one counter for the whole process, so a call can be
// answered only on the channel it came from: per-channel ids would let call 1
// of one channel answer call 1 of another (another user's login).
inline std::uint64_t next_call_id() noexcept {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

inline std::chrono::steady_clock::time_point deadline_after(
    std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout) noexcept {
    using clock = std::chrono::steady_clock;
    if (timeout.count() < 0) return clock::time_point::max();
    auto room =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now);
    if (timeout >= room) return clock::time_point::max();
    return now + timeout;
}

// What an async_channel fronts: the state shared with a PAM thread
// (async_state, below) or the owner's end of a socket to a worker process
// (process_link, pam_process.hpp). Counted: the channel and each handler hold
// a reference; the last one frees it.
class channel_core {
public:
    channel_core() noexcept = default;
    channel_core(const channel_core&) = delete;
    channel_core& operator=(const channel_core&) = delete;
    virtual ~channel_core() = default;

    void acquire() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        // LCOV_EXCL_BR_START: delete's check of `this` for null, which it never is
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
        // LCOV_EXCL_BR_STOP
    }

    virtual int fd() const noexcept = 0;
    virtual int error() const noexcept = 0;
    // The PAM end (async_handler): publish a call, block for its answer.
    virtual void converse(const message_batch& batch, reply_batch& out) HANDOFF_PAM_CANCELLABLE = 0;
    // The owner's end (async_channel).
    virtual std::optional<pending_call> take(
        std::optional<std::chrono::milliseconds> wait_for) noexcept = 0;
    virtual bool answer(pending_call& call) noexcept = 0;
    virtual void end(bool cancel) noexcept = 0;
    virtual bool cancelled() const noexcept = 0;
    virtual bool closed() const noexcept = 0;
    virtual void set_deadline(std::chrono::steady_clock::time_point when) noexcept = 0;

private:
    std::atomic<unsigned> refs_{1};
};

// What the two ends share. Every field below mu_ is guarded by it. The
// channel and each handler hold a reference; the last one frees it, so a
// handler inside libpam never points to freed state, whatever the owner does.
// The adapter is reached only through the batch handler's two types:
// converse() keeps pointers to the call's message_batch and reply_batch while
// the PAM thread is blocked in it, take() reads the messages, answer() moves
// the replies into the reply_batch.
class async_state final : public channel_core {
public:
    explicit async_state(const async_options& options) noexcept : timeout_(options.answer_timeout) {
#if defined(__linux__)
        read_fd_ = write_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (read_fd_ < 0) {
            error_ = errno;
            closed_ = true;  // no owner can hear of a call: refuse them all
        }
#else
        int fds[2];
        if (::pipe(fds) != 0) {
            error_ = errno;
            closed_ = true;
            return;
        }
        for (int fd : fds) {
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        }
        read_fd_ = fds[0];
        write_fd_ = fds[1];
#endif
    }
    async_state(const async_state&) = delete;
    async_state& operator=(const async_state&) = delete;
    ~async_state() override {
        if (read_fd_ >= 0) ::close(read_fd_);
        // On Linux one eventfd is both ends; a pipe's two ends are other systems'.
        if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);  // LCOV_EXCL_BR_LINE
    }

    int fd() const noexcept override { return read_fd_; }
    int error() const noexcept override { return error_; }

    // ---- the PAM thread ---------------------------------------------------

    // Publishes the call and blocks until the owner answers it, cancels, or
    // the time is up. Allocates nothing: the owner copies what it needs.
    // The waits are cancellation points: a cancelled thread unwinds from
    // here (HANDOFF_PAM_CANCELLABLE), and the call is withdrawn on the way.
    void converse(const message_batch& batch, reply_batch& out) HANDOFF_PAM_CANCELLABLE override {
        using clock = std::chrono::steady_clock;
        std::unique_lock<std::mutex> lock(mu_);
        if (failure ended = ended_locked(); ended != failure::none) return refuse_all(out, ended);
        if (batch_ != nullptr) return refuse_all(out, failure::refused);  // one call at a time
        give_up_ = deadline_after(clock::now(), timeout_);
        batch_ = &batch;
        out_ = &out;
        answered_ = false;
        call_id_ = next_call_id();
        notify_owner_locked();
        // On every way out, a cancelled thread's unwind included, with the
        // lock held: the owner must never reach a call whose frame is gone.
        struct withdraw {
            async_state& self;
            explicit withdraw(async_state& s) noexcept : self(s) {}
            withdraw(const withdraw&) = delete;
            withdraw& operator=(const withdraw&) = delete;
            ~withdraw() {
                self.batch_ = nullptr;
                self.out_ = nullptr;
                // the call the owner may be showing is gone
                if (!self.answered_) self.notify_owner_locked();
            }
        } const on_exit{*this};
        failure why = failure::none;
        while (!answered_) {
            if (failure ended = ended_locked(); ended != failure::none) {
                why = ended;
                break;
            }
            const clock::time_point until = expiry_locked();
            if (until == clock::time_point::max()) {
                pam_cv_.wait(lock);
            } else if (clock::now() >= until) {
                why = failure::timed_out;
                break;
            } else {
                pam_cv_.wait_until(lock, until);
            }
        }
        if (!answered_) refuse_all(out, why);
    }

    // ---- the owner --------------------------------------------------------

    // Copies the pending call, if any (clears the descriptor's readiness).
    std::optional<pending_call> take(
        std::optional<std::chrono::milliseconds> wait_for) noexcept override {
        using clock = std::chrono::steady_clock;
        std::unique_lock<std::mutex> lock(mu_);
        if (wait_for) {
            auto ready = [this] { return has_call_locked() || ended_locked() != failure::none; };
            if (wait_for->count() < 0) {
                owner_cv_.wait(lock, ready);
            } else {
                owner_cv_.wait_until(lock, deadline_after(clock::now(), *wait_for), ready);
            }
        }
        clear_signal_locked();
        if (!has_call_locked()) return std::nullopt;
        std::optional<pending_call> copy(std::in_place);
        copy->id_ = call_id_;
        for (std::size_t i = 0; i < batch_->size(); ++i) {
            const message m = (*batch_)[i];
            copy->messages_[i].kind_ = m.kind();
            copy->size_ = i + 1;
            if (copy->messages_[i].text_.try_append(m.text()) != errc::ok) {
                // No room for the copy: the call fails the way any allocation does.
                answer_locked(failure::out_of_memory);
                return std::nullopt;
            }
        }
        return copy;
    }

    bool answer(pending_call& call) noexcept override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            // Cancelled, closed or past its time, the call is over, even if
            // the PAM thread has not woken up to say so yet.
            if (has_call_locked() && ended_locked() == failure::none && call.id_ == call_id_ &&
                call.size_ == batch_->size() &&
                std::chrono::steady_clock::now() < expiry_locked()) {
                for (std::size_t i = 0; i < call.size_; ++i) {
                    (*out_)[i] = std::move(call.replies_[i]);
                }
                answered_ = true;
                pam_cv_.notify_all();
                call.clear();
                return true;
            }
        }
        call.clear();  // stale: wipe and free the answers here, outside the lock
        return false;
    }

    void end(bool cancel) noexcept override {
        std::lock_guard<std::mutex> lock(mu_);
        (cancel ? cancelled_ : closed_) = true;
        pam_cv_.notify_all();
        notify_owner_locked();
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
        pam_cv_.notify_all();
    }

private:
    bool has_call_locked() const noexcept { return batch_ != nullptr && !answered_; }
    // When the pending call runs out of time: its answer timeout or the deadline.
    std::chrono::steady_clock::time_point expiry_locked() const noexcept {
        return give_up_ < deadline_ ? give_up_ : deadline_;
    }
    failure ended_locked() const noexcept {
        if (cancelled_) return failure::cancelled;
        if (closed_) return failure::input_closed;
        return failure::none;
    }
    void answer_locked(failure why) noexcept {
        for (std::size_t i = 0; i < out_->size(); ++i) (*out_)[i] = reply::refuse(why);
        answered_ = true;
        pam_cv_.notify_all();
    }
    static void refuse_all(reply_batch& out, failure why) noexcept {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = reply::refuse(why);
    }

    // The descriptor is readable exactly while signalled_ is true.
    void notify_owner_locked() noexcept {
        owner_cv_.notify_all();
        if (signalled_ || write_fd_ < 0) return;
#if defined(__linux__)
        const std::uint64_t one = 1;
        signalled_ = ::write(write_fd_, &one, sizeof one) == static_cast<ssize_t>(sizeof one);
#else
        const char one = 1;
        signalled_ = ::write(write_fd_, &one, 1) == 1;
#endif
    }
    void clear_signal_locked() noexcept {
        if (!signalled_) return;
#if defined(__linux__)
        std::uint64_t value = 0;
        (void)!::read(read_fd_, &value, sizeof value);
#else
        char value = 0;
        (void)!::read(read_fd_, &value, 1);
#endif
        signalled_ = false;
    }

    int read_fd_ = -1;
    int write_fd_ = -1;
    int error_ = 0;
    const std::chrono::milliseconds timeout_;

    mutable std::mutex mu_;
    std::condition_variable pam_cv_;        // the PAM thread waits for its answer
    std::condition_variable owner_cv_;      // the owner's wait() waits for a call
    const message_batch* batch_ = nullptr;  // the pending call: non-NULL while
    reply_batch* out_ = nullptr;            // the PAM thread is blocked in it
    std::uint64_t call_id_ = 0;
    std::chrono::steady_clock::time_point give_up_;  // the pending call's answer timeout
    bool answered_ = false;
    bool cancelled_ = false;
    bool closed_ = false;
    bool signalled_ = false;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

// A counted reference to a channel's core.
class async_ref {
public:
    async_ref() noexcept = default;
    explicit async_ref(channel_core* adopted) noexcept : state_(adopted) {}
    async_ref(const async_ref& other) noexcept : state_(other.state_) {
        if (state_ != nullptr) state_->acquire();
    }
    async_ref(async_ref&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    async_ref& operator=(const async_ref& other) noexcept {
        async_ref copy(other);
        std::swap(state_, copy.state_);
        return *this;
    }
    async_ref& operator=(async_ref&& other) noexcept {
        async_ref taken(std::move(other));
        std::swap(state_, taken.state_);
        return *this;
    }
    ~async_ref() {
        if (state_ != nullptr) state_->release();
    }
    channel_core* get() const noexcept { return state_; }
    channel_core* operator->() const noexcept { return state_; }
    explicit operator bool() const noexcept { return state_ != nullptr; }

private:
    channel_core* state_ = nullptr;
};

}  // namespace detail

// ===========================================================================
// The PAM end
// ===========================================================================

// A batch conversation handler (see conversation<H>) that publishes each call
// to its channel and blocks the calling (PAM) thread until the owner answers,
// cancels, closes the channel, or the answer timeout or the channel's deadline
// passes. It allocates nothing. Failures reach libpam as PAM_CONV_ERR with
// failure::cancelled (cancel, or the channel destroyed), failure::timed_out,
// failure::input_closed (channel closed), failure::refused (a second call
// while one is pending, e.g. two transactions on one channel) or
// failure::out_of_memory (PAM_BUF_ERR: the owner could not copy the call).
// Holding a reference to the shared state, it stays valid when the channel is
// destroyed first. Thread-safety: copies may be used on different threads;
// one object is called by one thread at a time (libpam's, as usual).
class async_handler {
public:
    void operator()(const message_batch& batch, reply_batch& out) const HANDOFF_PAM_CANCELLABLE {
        if (!state_) {
            for (std::size_t i = 0; i < out.size(); ++i)
                out[i] = reply::refuse(failure::out_of_memory);
            return;
        }
        state_->converse(batch, out);
    }

private:
    friend class async_channel;
    explicit async_handler(detail::async_ref state) noexcept : state_(std::move(state)) {}
    detail::async_ref state_;
};

// ===========================================================================
// The owner's end
// ===========================================================================

// The owner's end of a channel to one PAM transaction.
//
// A loop polls fd() for POLLIN, then calls pending(); a simple program calls
// wait(). Either returns a copy of the call PAM is waiting on; the owner sets
// the replies and gives it back with answer(). The descriptor is readable
// while there is news: a call was published, a pending call was withdrawn
// (timed out or cancelled), or the channel was closed; pending() and wait()
// clear it. Answers travel as pam::reply (copied once into C memory, or a
// secret_string's buffer handed over) straight into the reply array libpam
// receives: nothing secret stays in the channel after a call.
//
// Thread-safety: every member may be called from any thread, concurrently,
// except the destructor (and moves), which need no other thread to be using
// this object. Not async-signal-safe. Destroying the channel cancels it; a
// handler still inside libpam returns failure::cancelled and the shared state
// lives until the last handler is gone.
class async_channel {
public:
    // Makes the shared state and its descriptor (eventfd on Linux, a pipe
    // elsewhere). If either fails, valid() is false and error() says why
    // (ENOMEM, EMFILE, ...); the channel is then closed from the start: every
    // call fails (failure::input_closed, or out_of_memory without a state).
    explicit async_channel(const async_options& options = {}) noexcept
        : state_(new (std::nothrow) detail::async_state(options)),
          error_(!state_ ? ENOMEM : state_->error()) {}
    async_channel(async_channel&& other) noexcept
        : state_(std::move(other.state_)), error_(other.error_) {}
    async_channel& operator=(async_channel&& other) noexcept {
        if (this != &other) {
            cancel();
            state_ = std::move(other.state_);
            error_ = other.error_;
        }
        return *this;
    }
    async_channel(const async_channel&) = delete;
    async_channel& operator=(const async_channel&) = delete;
    ~async_channel() { cancel(); }

    // Thread-safe. True when the channel works (state and descriptor made);
    // false for a channel moved from (its error() stays 0).
    bool valid() const noexcept { return state_ && error_ == 0; }
    // Thread-safe. The errno that made the channel invalid, or 0.
    int error() const noexcept { return error_; }

    // Thread-safe. A handler for a conversation or pam::transaction.
    async_handler handler() const noexcept { return async_handler(state_); }

    // Thread-safe. Readable (POLLIN) while there is news; -1 if !valid().
    // Owned by the channel: do not close it or read from it.
    int fd() const noexcept { return valid() ? state_->fd() : -1; }

    // Thread-safe, never blocks. A copy of the call PAM waits on, or nullopt.
    // Clears the descriptor's readiness. If the copy cannot be allocated, the
    // call fails with failure::out_of_memory and nullopt is returned.
    std::optional<pending_call> pending() noexcept {
        if (!state_) return std::nullopt;
        return state_->take(std::nullopt);
    }

    // Thread-safe, blocks. Waits until a call is pending (then returns it as
    // pending() does), or the channel is cancelled or closed, or `timeout`
    // passes (negative: no limit); nullopt in those cases.
    std::optional<pending_call> wait(
        std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) noexcept {
        if (!state_) return std::nullopt;
        return state_->take(timeout);
    }

    // Thread-safe. Gives the call back with its replies: true when PAM
    // receives them. False when that call is no longer pending (answered
    // already, timed out, or a later call has replaced it), the channel was
    // cancelled or closed, or the call's time is up, even if the PAM thread
    // has not woken to notice; its answers are then wiped and freed here.
    // Either way `call` is left empty.
    bool answer(pending_call&& call) noexcept {
        if (!state_) {
            call.clear();
            return false;
        }
        return state_->answer(call);
    }

    // Thread-safe. The pending call and every later one fail with
    // failure::cancelled. Sticky.
    void cancel() noexcept {
        if (state_) state_->end(true);
    }
    // Thread-safe. Whether cancel() has run (true without a state).
    bool cancelled() const noexcept { return state_ ? state_->cancelled() : true; }

    // Thread-safe. Says that no more calls will come (the transaction ended):
    // waiters wake, the descriptor becomes readable, later calls fail with
    // failure::input_closed. async_transaction calls it after pam_end.
    void close() noexcept {
        if (state_) state_->end(false);
    }
    // Thread-safe. Whether close() has run, or the channel never worked.
    bool closed() const noexcept { return state_ ? state_->closed() : true; }

    // Thread-safe. From `when` on, the pending call and every later one fail
    // with failure::timed_out (time_point::max(), the default: no deadline).
    void set_deadline(std::chrono::steady_clock::time_point when) noexcept {
        if (state_) state_->set_deadline(when);
    }

private:
    friend class async_transaction;
    friend class process_transaction;
    // The owner's end of a worker process's socket (pam_process.hpp).
    async_channel(detail::async_ref core, int error) noexcept
        : state_(std::move(core)), error_(error) {}

    detail::async_ref state_;
    int error_ = 0;
};

// ===========================================================================
// Where a transaction lives: the interface both homes share
// ===========================================================================

// A PAM transaction that runs elsewhere, answered through its channel: on a
// thread of the owner (async_transaction) or in a worker process
// (process_transaction, pam_process.hpp). An event loop written against this
// interface does not change with the home.
//
// The transaction keeps its own reference to the channel's core, so nothing
// done to channel() breaks it: moving the channel out (`async_channel x =
// std::move(tx.channel())`) leaves an empty channel behind, whose calls do
// nothing, and x answers the transaction as channel() did; close() while the
// body runs fails its later calls with failure::input_closed, but finished()
// still says whether the body has returned.
class hosted_transaction {
public:
    hosted_transaction() noexcept = default;
    hosted_transaction(const hosted_transaction&) = delete;
    hosted_transaction& operator=(const hosted_transaction&) = delete;
    virtual ~hosted_transaction() = default;

    // Thread-safe. The owner's end: fd(), pending(), wait(), answer(),
    // cancel(), set_deadline(). Its descriptor also turns readable when the
    // transaction has finished.
    virtual async_channel& channel() noexcept = 0;
    // Thread-safe, never blocks. True once the body has returned and pam_end
    // has run (or the transaction never started, or its worker process is
    // gone): result() then returns without waiting.
    virtual bool finished() const noexcept = 0;
    // Owner thread. The body's status, waiting for it if need be.
    virtual status result() = 0;
    // Owner thread, once finished(): PAM_USER as the body left it (a module
    // may map the name asked for to another); empty if unset.
    virtual std::string pam_user() const = 0;
};

// ===========================================================================
// A transaction on a worker thread
// ===========================================================================

namespace detail {
// What the worker thread owns while it runs: the names, the body, the result.
class async_work {
public:
    // The copies are made here, once, rather than in every Body's new-expression.
    async_work(std::string_view service, std::string_view user, start_options options,
               const async_channel& channel)
        : service_(service),
          user_(user),
          options_(std::move(options)),
          handler_(channel.handler()) {}
    async_work(const async_work&) = delete;
    async_work& operator=(const async_work&) = delete;
    virtual ~async_work() = default;

    // On the worker: pam_start, the body, pam_end (when tx goes out of scope).
    void run() noexcept {
#if HANDOFF_HAS_EXCEPTIONS
        try {
            transaction tx(service_, user_, handler_, options_);
            result_ = tx.started().ok() ? run_body(tx) : tx.started();
            keep_user(tx);
        } catch (...) {
            exception_ = std::current_exception();
            result_ = status(PAM_SYSTEM_ERR, ::pam_strerror(nullptr, PAM_SYSTEM_ERR),
                             failure::handler_threw);
        }
#else
        transaction tx(service_, user_, handler_, options_);
        result_ = tx.started().ok() ? run_body(tx) : tx.started();
        keep_user(tx);
#endif
    }

    // The owner reads these once the worker has been joined.
    const status& outcome() const noexcept { return result_; }
    std::exception_ptr take_exception() noexcept { return std::exchange(exception_, nullptr); }
    bool threw() const noexcept { return exception_ != nullptr; }
    const std::string& pam_user() const noexcept { return pam_user_; }

private:
    void keep_user(const transaction& tx) {
        if (std::optional<std::string_view> u = tx.get_item(item::user)) pam_user_.assign(*u);
    }
    virtual status run_body(transaction& tx) = 0;

    status result_;
    std::exception_ptr exception_;

    std::string service_;
    std::string user_;
    std::string pam_user_;
    start_options options_;
    async_handler handler_;
};

template <class Body>
class async_work_with final : public async_work {
public:
    async_work_with(std::string_view service, std::string_view user, const start_options& options,
                    const async_channel& channel, Body&& body)
        : async_work(service, user, options, channel), body_(std::move(body)) {}

private:
    status run_body(transaction& tx) override { return body_(tx); }
    Body body_;
};
}  // namespace detail

// A PAM transaction that runs on a thread of its own with an async handler:
// pam_start (or pam_start_confdir), then body(transaction&) -> status, then
// pam_end, all on the worker; the owner answers through channel(). The worker
// blocks every signal, so signals stay with the threads that expect them.
//
// Lifetime: destroying the object cancels the channel (the pending call and
// every later one fail with failure::cancelled) and joins the worker, so
// libpam never holds a pointer to freed state. The join waits for libpam to
// return: a module sleeping after a failure (pam_faildelay) delays it.
//
// Thread-safety: construction, result() and destruction from one owner thread;
// finished() and every member of channel() from any thread.
class async_transaction final : public hosted_transaction {
public:
    // Owner thread. Starts the worker. If the worker cannot be made (memory, threads, or the
    // channel's descriptor), no thread runs and result() reports
    // PAM_BUF_ERR or PAM_SYSTEM_ERR. `body` runs on the worker; what it
    // captures by reference must outlive result() or the destructor.
    template <class Body>
    async_transaction(std::string_view service, std::string_view user, Body body,
                      const async_options& options = {}, const start_options& start = {})
        : channel_(options), core_(channel_.state_) {
        if (!channel_.valid()) {
            fail(PAM_SYSTEM_ERR);
            return;
        }
        work_.reset(new (std::nothrow) detail::async_work_with<Body>(service, user, start, channel_,
                                                                     std::move(body)));
        if (!work_) {
            fail(PAM_BUF_ERR);
            return;
        }
        launch();
    }
    async_transaction(const async_transaction&) = delete;
    async_transaction& operator=(const async_transaction&) = delete;
    // Owner thread. Cancels the channel and joins the worker. Destroying the
    // transaction from inside its own body (on the worker) cannot join: that
    // is a programming error, reported on stderr, and the program aborts, as
    // std::thread's destructor terminates on a thread still joinable.
    ~async_transaction() override {
        if (on_worker() == this) {
            // LCOV_EXCL_START: in a test's child process that aborts, whose counters are lost
            static const char why[] =
                "handoff: an async_transaction was destroyed from inside its own body\n";
            (void)!::write(2, why, sizeof why - 1);
            std::abort();
            // LCOV_EXCL_STOP
        }
        if (core_) core_->end(true);
        join();
    }

    // Thread-safe. The owner's end: fd(), pending(), wait(), answer(),
    // cancel(), set_deadline(). Its descriptor also turns readable when the
    // transaction has finished.
    async_channel& channel() noexcept override { return channel_; }

    // Thread-safe. True once pam_end has run (or the worker never started):
    // result() then returns without waiting for libpam.
    bool finished() const noexcept override { return done_.load(std::memory_order_acquire); }

    // Owner thread. Waits for the worker and returns the body's status (or
    // pam_start's, if it failed). If the body threw, the first call rethrows
    // the exception (exception builds); the status then says handler_threw.
    status result() override {
        join();
#if HANDOFF_HAS_EXCEPTIONS
        if (work_ && work_->threw()) std::rethrow_exception(work_->take_exception());
#endif
        return work_ ? work_->outcome() : failed_;
    }

    // Owner thread, once finished(): PAM_USER as the body left it.
    std::string pam_user() const override { return work_ ? work_->pam_user() : std::string(); }

private:
    // The transaction whose body runs on this thread, if any: how the
    // destructor knows it was called from inside the body (running_ and
    // thread_ are the owner's, written after the worker has started).
    static const async_transaction*& on_worker() noexcept {
        static thread_local const async_transaction* current = nullptr;
        return current;
    }

    static void* worker(void* arg) noexcept {
        auto* self = static_cast<async_transaction*>(arg);
        on_worker() = self;
        self->work_->run();
        // Finished first, then the news: an owner woken by the descriptor sees it.
        self->done_.store(true, std::memory_order_release);
        self->core_->end(false);
        return nullptr;
    }

    void launch() noexcept {
        // The worker starts with every signal blocked (it inherits this mask).
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&thread_, nullptr, &worker, this);
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        if (rc != 0) {
            work_.reset();
            return fail(rc == EAGAIN ? PAM_BUF_ERR : PAM_SYSTEM_ERR);
        }
        running_ = true;
    }

    void fail(int code) noexcept {
        failed_ = status(code, ::pam_strerror(nullptr, code));
        done_.store(true, std::memory_order_release);
        channel_.close();
    }

    void join() noexcept {
        if (running_) {
            pthread_join(thread_, nullptr);
            running_ = false;
        }
    }

    async_channel channel_;
    detail::async_ref
        core_;  // the transaction's own hold on the channel, whatever channel_ becomes
    std::atomic<bool> done_{false};
    std::unique_ptr<detail::async_work> work_;
    status failed_;
    pthread_t thread_{};
    bool running_ = false;
};

}  // namespace handoff::pam

#endif  // HANDOFF_PAM_ASYNC_HPP
