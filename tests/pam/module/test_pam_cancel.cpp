// Thread cancellation through every barrier of handoff::pam, against the real
// libpam (pam_wrapper): a thread runs pam_authenticate, its conversation
// blocks (read, poll, a condition variable: cancellation points), the main
// thread pthread_cancel()s it and joins; or the conversation calls
// pthread_exit. The process must live on, the thread must end inside the
// call, and what handoff allocated on the way must be freed by the unwind.
//
//   module side       the demo module and the probe (try_converse, try_prompt,
//                     try_send_info, try_user, try_authtok, the entry point)
//                     under a C application that blocks or exits
//   application side  the adapter (per-message and batch handlers), the
//                     terminal (poll) and the async handler (its wait), with
//                     the demo module and with pam_unix, a C module that asks
//                     through pam_prompt
//
// A cancelled call leaves libpam's handle mid-call: pam_end refuses it, so the
// handle is kept reachable here (abandon()) and valgrind's leak check sees
// only what else was lost; handoff's own allocations are also counted.
// AddressSanitizer cannot follow a forced unwind (the skipped frames stay
// poisoned: google/sanitizers#1399), so meson.build runs this test in the
// builds without sanitizers and under valgrind, not under ASan.
#include <handoff/pam.hpp>
#include <handoff/pam_async.hpp>
#include <handoff/pam_module.hpp>

#include "../../doctest.hpp"
#include "../wrapped_malloc.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace pam = handoff::pam;

namespace {

enum class how { cancel, exit_in_conversation };

// Handles libpam will not end, kept reachable (static storage) to the end.
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): see above
::pam_handle_t* abandoned[64] = {};
std::size_t abandoned_count = 0;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)
void abandon(::pam_handle_t* pamh) {
    REQUIRE(abandoned_count < std::size(abandoned));
    abandoned[abandoned_count++] = pamh;
}

// A pipe nobody writes to: reading it blocks until the thread is cancelled.
struct quiet_pipe {
    int fds[2] = {-1, -1};
    quiet_pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
    quiet_pipe(const quiet_pipe&) = delete;
    quiet_pipe& operator=(const quiet_pipe&) = delete;
    ~quiet_pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    void block() const {
        char c = 0;
        (void)!::read(fds[0], &c, 1);  // a cancellation point
    }
};

// Where a conversation stops: blocks, or ends the thread.
struct stopper {
    how mode = how::cancel;
    quiet_pipe pipe;
    std::atomic<bool> entered{false};
    void stop() {
        entered = true;
        if (mode == how::exit_in_conversation) ::pthread_exit(nullptr);
        pipe.block();
    }
};

// A C application: its conversation stops at the first call.
int stopping_conv(int, const ::pam_message**, ::pam_response**, void* data) {
    static_cast<stopper*>(data)->stop();
    return PAM_CONV_ERR;  // not reached
}

struct thread_outcome {
    bool returned = false;  // the PAM call returned (it must not)
    void* exit_value = nullptr;
};

// Runs call on a thread; once `entered` is set, cancels it (how::cancel) or
// lets it end itself; joins.
thread_outcome run_stopped(how mode, const std::atomic<bool>& entered,
                           const std::function<void()>& call) {
    struct context {
        const std::function<void()>* call = nullptr;
        bool returned = false;
    } ctx{&call};
    pthread_t thread{};
    auto body = [](void* p) -> void* {
        auto* c = static_cast<context*>(p);
        (*c->call)();
        c->returned = true;
        return nullptr;
    };
    REQUIRE(::pthread_create(&thread, nullptr, body, &ctx) == 0);
    if (mode == how::cancel) {
        for (int i = 0; i < 10000 && !entered; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        REQUIRE(entered);
        REQUIRE(::pthread_cancel(thread) == 0);
    }
    thread_outcome out;
    REQUIRE(::pthread_join(thread, &out.exit_value) == 0);
    out.returned = ctx.returned;
    return out;
}

void* expected_exit(how mode) { return mode == how::cancel ? PTHREAD_CANCELED : nullptr; }

// A raw pam_start with the C application; the handle cannot be ended after a
// cancelled call (pam_end refuses a handle left mid-call), so it is not.
::pam_handle_t* start_raw(const char* service, const char* user, stopper& s) {
    ::pam_conv conv{&stopping_conv, &s};
    ::pam_handle_t* pamh = nullptr;
    REQUIRE(::pam_start(service, user, &conv, &pamh) == PAM_SUCCESS);
    return pamh;
}

void check_module_side(const char* service, const char* user, const char* mode, how m) {
    CAPTURE(service);
    CAPTURE(mode);
    CAPTURE(static_cast<int>(m));
    stopper s;
    s.mode = m;
    ::pam_handle_t* pamh = start_raw(service, user, s);
    if (mode != nullptr) REQUIRE(::pam_set_item(pamh, PAM_RUSER, mode) == PAM_SUCCESS);
    const thread_outcome out =
        run_stopped(m, s.entered, [&] { (void)::pam_authenticate(pamh, 0); });
    CHECK(s.entered);
    CHECK_FALSE(out.returned);
    CHECK(out.exit_value == expected_exit(m));
    // libpam will not end a handle left inside a module.
    CHECK(::pam_end(pamh, PAM_SUCCESS) == PAM_SYSTEM_ERR);
    abandon(pamh);
}

const how both[] = {how::cancel, how::exit_in_conversation};

// Leaves a cancellation of this thread pending (requested while disabled).
void cancel_self_pending() {
    int old = 0;
    REQUIRE(::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) == 0);
    REQUIRE(::pthread_cancel(::pthread_self()) == 0);
    REQUIRE(::pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr) == 0);
}

// Runs the probe's `mode` on a thread with a cancellation pending, at
// pam_authenticate or (at_end) at pam_end: noexcept code that reaches a
// cancellation point must hold it off, or the process aborts. The thread
// must get back to its own pthread_testcancel and end there.
void check_pending(const char* mode, bool at_end) {
    CAPTURE(mode);
    struct context {
        const char* mode = nullptr;
        bool at_end = false;
        int rc = -1;
        bool returned = false;
    } ctx{mode, at_end};
    auto body = [](void* p) -> void* {
        auto* c = static_cast<context*>(p);
        ::pam_conv conv{&stopping_conv, nullptr};
        ::pam_handle_t* pamh = nullptr;
        if (::pam_start("probe", "alice", &conv, &pamh) != PAM_SUCCESS) return nullptr;
        (void)::pam_set_item(pamh, PAM_RUSER, c->mode);
        if (!c->at_end) cancel_self_pending();
        c->rc = ::pam_authenticate(pamh, 0);
        if (c->at_end) cancel_self_pending();
        (void)::pam_end(pamh, c->rc);
        c->returned = true;
        ::pthread_testcancel();
        return nullptr;
    };
    pthread_t thread{};
    REQUIRE(::pthread_create(&thread, nullptr, body, &ctx) == 0);
    void* exit_value = nullptr;
    REQUIRE(::pthread_join(thread, &exit_value) == 0);
    CHECK(ctx.returned);
    CHECK(ctx.rc == PAM_SUCCESS);
    CHECK(exit_value == PTHREAD_CANCELED);
}

}  // namespace

TEST_SUITE_BEGIN("thread cancellation");

TEST_CASE("module side: a cancelled or exiting conversation unwinds through the demo module") {
    for (how m : both) check_module_side("demo", "alice", nullptr, m);
}

TEST_CASE("module side: every conversing call of module_handle lets the unwind through") {
    // try_prompt, try_send_info, try_authtok (libpam's pam_prompt inside),
    // try_user (libpam's pam_get_user asks: no user yet).
    for (how m : both) {
        check_module_side("probe", "alice", "converse_code", m);
        check_module_side("probe", "alice", "send_info", m);
        check_module_side("probe", "alice", "authtok_prompt", m);
        check_module_side("probe", nullptr, "items", m);
    }
}

TEST_CASE("module side: a pending cancellation waits through noexcept logging and deleters") {
    // module_handle::log, try_putenv (libpam logs), warn_unknown: pam_syslog
    // is a cancellation point.
    check_pending("log_pending", false);
    // A data deleter that closes a descriptor, run by pam_end.
    check_pending("store_closing", true);
}

TEST_CASE("module side, for comparison: pam_unix (C, pam_prompt) survives the same") {
    for (how m : both) check_module_side("unix", "alice", nullptr, m);
}

// ---------------------------------------------------------------------------
// The application side: handoff's conversation in the thread that is cancelled
// ---------------------------------------------------------------------------

namespace {

const char* const stacks[] = {"demo", "unix"};

// Runs tx.authenticate() on a thread and stops it inside the handler.
template <class Handler>
void check_application_side(const char* service, how m, stopper& s, Handler handler) {
    CAPTURE(service);
    CAPTURE(static_cast<int>(m));
    s.mode = m;
    pam::transaction tx(service, "alice", std::move(handler));
    REQUIRE(tx.started().ok());
    thread_outcome out;
    {
        wrapped::armed count;
        out = run_stopped(m, s.entered, [&] { (void)tx.authenticate(); });
        // The response array the adapter had allocated is freed by the unwind.
        CHECK(wrapped::state().live_count == 0);
    }
    CHECK(s.entered);
    CHECK_FALSE(out.returned);
    CHECK(out.exit_value == expected_exit(m));
    REQUIRE(tx.conversation() != nullptr);
    CHECK_FALSE(tx.conversation()->in_handler());  // the reentry guard is down again
    abandon(tx.native_handle());
}

}  // namespace

TEST_CASE("application side: a per-message handler that blocks or exits") {
    for (const char* service : stacks) {
        for (how m : both) {
            stopper s;
            check_application_side(service, m, s, [&s](const pam::message& msg) {
                if (msg.is_prompt()) s.stop();  // after the info message was answered
                return pam::reply::none();
            });
        }
    }
}

TEST_CASE("application side: a batch handler that blocks or exits") {
    for (const char* service : stacks) {
        for (how m : both) {
            stopper s;
            check_application_side(service, m, s,
                                   [&s](const pam::message_batch&, pam::reply_batch& out) {
                                       out[0] = pam::reply::answer("partial");
                                       s.stop();
                                   });
        }
    }
}

TEST_CASE("application side: the terminal cancelled in poll restores the signal dispositions") {
    for (const char* service : stacks) {
        quiet_pipe input;
        quiet_pipe prompts;
        REQUIRE(::fcntl(prompts.fds[0], F_SETFL, O_NONBLOCK) == 0);
        struct sigaction before {};
        REQUIRE(::sigaction(SIGINT, nullptr, &before) == 0);
        pam::terminal_options options;
        options.input_fd = input.fds[0];
        options.prompt_fd = prompts.fds[1];
        pam::transaction tx(service, "alice", pam::terminal(options));
        REQUIRE(tx.started().ok());
        std::atomic<bool> prompted{false};
        std::thread watcher([&] {
            std::string seen;
            for (int i = 0; i < 10000 && seen.find(": ") == std::string::npos; ++i) {
                char buf[64];
                const ssize_t n = ::read(prompts.fds[0], buf, sizeof buf);
                if (n > 0) seen.append(buf, static_cast<std::size_t>(n));
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            // The prompt is out: the handler is in poll (or about to be).
            prompted = true;
        });
        const thread_outcome out =
            run_stopped(how::cancel, prompted, [&] { (void)tx.authenticate(); });
        watcher.join();
        CHECK_FALSE(out.returned);
        CHECK(out.exit_value == PTHREAD_CANCELED);
        struct sigaction after {};
        REQUIRE(::sigaction(SIGINT, nullptr, &after) == 0);
        const bool restored = after.sa_handler == before.sa_handler;
        CHECK(restored);
        CHECK_FALSE(tx.conversation()->in_handler());
        abandon(tx.native_handle());
    }
}

TEST_CASE("application side: the async handler cancelled while it waits withdraws its call") {
    for (const char* service : stacks) {
        CAPTURE(service);
        pam::async_channel channel;
        REQUIRE(channel.valid());
        pam::transaction tx(service, "alice", channel.handler());
        REQUIRE(tx.started().ok());
        std::atomic<bool> published{false};
        std::optional<pam::pending_call> seen;
        std::thread owner([&] {
            seen = channel.wait(std::chrono::milliseconds(10000));
            published = true;
        });
        const thread_outcome out =
            run_stopped(how::cancel, published, [&] { (void)tx.authenticate(); });
        owner.join();
        REQUIRE(seen.has_value());
        CHECK_FALSE(out.returned);
        CHECK(out.exit_value == PTHREAD_CANCELED);
        // The call died with the thread: nothing is pending, and an answer
        // to it is refused rather than written into a dead stack.
        CHECK_FALSE(channel.pending().has_value());
        seen->refuse();
        CHECK_FALSE(channel.answer(std::move(*seen)));
        CHECK_FALSE(tx.conversation()->in_handler());
        abandon(tx.native_handle());
    }
}

TEST_SUITE_END();
