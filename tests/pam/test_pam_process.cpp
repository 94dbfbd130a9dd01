// process_transaction: the body in a worker process, answered through the
// same async_channel as async_transaction, against the real Linux-PAM
// (pam_start_confdir on the test services, no preload) and pam_oddball's
// misbehaving cases (crash, exit, hang). Each case also checks that no
// descriptor of the owner is left and no child is left unreaped.
//
// The fork-under-lock case starts threads, and once a thread has existed a
// sanitizer's runtime may keep one of its own: that case runs on its own
// (tests/pam/meson.build, --test-case='*other threads*').
#include <handoff/pam_process.hpp>

#include "../doctest.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pam = handoff::pam;
using namespace std::chrono_literals;

// libgcov's dump, linked in coverage builds only (tests/pam/meson.build): a
// worker leaves with _exit, so its counters are written here first.
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): libgcov's name
extern "C" void __gcov_dump() __attribute__((weak));

namespace {

constexpr std::chrono::milliseconds patience = 20s;

void flush_coverage() {
    if (__gcov_dump != nullptr) __gcov_dump();
}

// The grace period: long enough for a worker to end on its own under
// valgrind, unless a case wants its worker killed soon.
pam::process_options quick(std::chrono::milliseconds grace = 10s) {
    pam::process_options o;
    o.grace = grace;
    o.before_exit = &flush_coverage;
    return o;
}

pam::start_options test_services() {
    const char* d = std::getenv("HANDOFF_TEST_BUILDDIR");
    REQUIRE(d != nullptr);
    pam::start_options o;
    o.confdir = std::string(d) + "/services";
    return o;
}

pam::status authenticate_then_account(pam::transaction& tx) {
    pam::status s = tx.authenticate();
    return s ? tx.acct_mgmt() : s;
}

// The descriptors open in this process (the directory's own excluded).
std::set<int> open_fds() {
    std::set<int> fds;
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return fds;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') fds.insert(static_cast<int>(std::strtol(e->d_name, nullptr, 10)));
    }
    fds.erase(::dirfd(d));
    ::closedir(d);
    return fds;
}

// Whether this process has a child left, reaped or not.
bool has_children() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

// Answers every prompt with `answer` from a poll loop on the descriptor,
// until the transaction has finished.
pam::status answer_all(pam::hosted_transaction& tx, std::string_view answer) {
    const auto give_up = std::chrono::steady_clock::now() + patience;
    while (!tx.finished() && std::chrono::steady_clock::now() < give_up) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
        if (std::optional<pam::pending_call> call = tx.channel().pending()) {
            for (std::size_t i = 0; i < call->size(); ++i) {
                if ((*call)[i].is_prompt()) call->answer(i, answer);
            }
            tx.channel().answer(std::move(*call));
        }
    }
    REQUIRE(tx.finished());
    return tx.result();
}

// Polls the descriptor until the transaction has finished; how long it took.
std::chrono::steady_clock::duration run_out(pam::hosted_transaction& tx) {
    const auto start = std::chrono::steady_clock::now();
    while (!tx.finished() && std::chrono::steady_clock::now() - start < patience) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 1000);
        (void)tx.channel().pending();
    }
    return std::chrono::steady_clock::now() - start;
}

}  // namespace

TEST_CASE("process_transaction: the right password authenticates and passes acct_mgmt") {
    const std::set<int> before = open_fds();
    {
        pam::process_transaction tx("matrix", "alice", authenticate_then_account, {},
                                    test_services(), quick());
        REQUIRE(tx.pid() > 0);
        pam::status s = answer_all(tx, "secret");
        CHECK_MESSAGE(s.ok(), std::string(s.message()));
        CHECK(tx.pam_user() == "alice");
        CHECK(tx.exit_info().exit_code == 0);
        CHECK(tx.exit_info().signal == 0);
        CHECK(tx.channel().closed());
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: the wrong password is PAM_AUTH_ERR") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    pam::status s = answer_all(tx, "wrong");
    CHECK(s.code() == PAM_AUTH_ERR);
    CHECK(s.conversation_failure() == pam::failure::none);
}

TEST_CASE("process_transaction: every message of a call reaches the owner with its style") {
    pam::process_transaction tx(
        "oddball_multi", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
        test_services(), quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    REQUIRE(call->size() == 3);
    CHECK((*call)[0].kind() == pam::style::text_info);
    CHECK((*call)[0].text() == "three messages in one call");
    CHECK((*call)[1].kind() == pam::style::prompt_echo_on);
    CHECK((*call)[2].kind() == pam::style::prompt_echo_off);
    CHECK((*call)[2].text() == "Password: ");
    // pending() again gives the same call, as the thread transport does.
    std::optional<pam::pending_call> again = tx.channel().pending();
    REQUIRE(again);
    CHECK(again->id() == call->id());
    call->answer(1, "alice");
    call->answer(2, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    CHECK_FALSE(tx.channel().answer(std::move(*again)));  // answered already
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: the owner refusing a call fails it in the worker") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    call->refuse(pam::failure::refused);
    CHECK(tx.channel().answer(std::move(*call)));
    pam::status s = tx.result();
    CHECK(s.code() == PAM_AUTHINFO_UNAVAIL);  // pam_matrix's word for a failed conversation
    CHECK(s.conversation_failure() == pam::failure::refused);
}

TEST_CASE("process_transaction: cancel mid-prompt ends the transaction with cancelled") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().cancel();
    CHECK(tx.channel().cancelled());
    CHECK_FALSE(tx.channel().wait(patience));  // cancelled: nothing more to wait for
    pam::status s = tx.result();
    CHECK(s.code() == PAM_AUTHINFO_UNAVAIL);
    CHECK(s.conversation_failure() == pam::failure::cancelled);
    CHECK(tx.exit_info().exit_code == 0);  // it ended on its own, within the grace period
}

TEST_CASE("process_transaction: an unanswered prompt times out in the worker") {
    pam::async_options o;
    o.answer_timeout = 50ms;
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, o, test_services(),
                                quick());
    REQUIRE(tx.channel().wait(patience));
    pam::status s = tx.result();
    CHECK(s.conversation_failure() == pam::failure::timed_out);
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: an answer after the call timed out is refused and wiped") {
    pam::async_options o;
    o.answer_timeout = 50ms;
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, o, test_services(),
                                quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    std::this_thread::sleep_for(100ms);
    call->answer(0, "secret");
    CHECK_FALSE(tx.channel().answer(std::move(*call)));
    CHECK(call->empty());
    CHECK(tx.result().conversation_failure() == pam::failure::timed_out);
}

TEST_CASE("process_transaction: a deadline set while the worker waits ends the call") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().set_deadline(std::chrono::steady_clock::now() + 30ms);
    pam::status s = tx.result();
    CHECK(s.conversation_failure() == pam::failure::timed_out);
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: close() mid-prompt fails the call; finished() waits for the body") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().close();
    CHECK(tx.channel().closed());
    run_out(tx);
    REQUIRE(tx.finished());
    CHECK(tx.result().conversation_failure() == pam::failure::input_closed);
}

TEST_CASE("process_transaction: a packet the worker never read does not lose its result") {
    // The worker ends with the owner's last packet unread: its socket's peer
    // then reads ECONNRESET before the worker's result, which must still count.
    for (int i = 0; i < 50; ++i) {
        CAPTURE(i);
        pam::process_transaction tx("matrix", "alice", authenticate_then_account, {},
                                    test_services(), quick());
        std::optional<pam::pending_call> call = tx.channel().wait(patience);
        REQUIRE(call);
        call->answer(0, "secret");
        REQUIRE(tx.channel().answer(std::move(*call)));
        if (i % 2 == 0) {
            tx.channel().set_deadline(std::chrono::steady_clock::now() + 60s);
        } else {
            tx.channel().close();
        }
        pam::status s = tx.result();
        REQUIRE_MESSAGE(s.ok(), std::string(s.message()));
    }
}

TEST_CASE("process_transaction: the channel moved out still answers; the transaction still ends") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    pam::async_channel moved = std::move(tx.channel());
    CHECK_FALSE(tx.finished());  // the transaction keeps its own hold
    CHECK(tx.channel().fd() == -1);
    std::optional<pam::pending_call> call = moved.wait(patience);
    REQUIRE(call);
    call->answer(0, "secret");
    CHECK(moved.answer(std::move(*call)));
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: the descriptor turns readable when the worker ends") {
    pam::process_transaction tx("permit", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    ::pollfd p{tx.channel().fd(), POLLIN, 0};
    const auto start = std::chrono::steady_clock::now();
    while (!tx.finished() && std::chrono::steady_clock::now() - start < patience) {
        REQUIRE(::poll(&p, 1, static_cast<int>(patience.count())) == 1);
        CHECK_FALSE(tx.channel().pending());
    }
    CHECK(tx.finished());
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: a helper holding the worker's socket does not hide its end") {
    // The body forks a helper that keeps the socket (3) open past the
    // worker's exit: no end of file comes, and the descriptor must still
    // turn readable once the worker has ended.
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t) {
            const pid_t helper = ::fork();
            if (helper == 0) {
                ::sleep(8);
                ::_exit(0);
            }
            return helper < 0 ? pam::status(PAM_SYSTEM_ERR, "fork failed") : t.authenticate();
        },
        {}, test_services(), quick());
    ::pollfd p{tx.channel().fd(), POLLIN, 0};
    const auto start = std::chrono::steady_clock::now();
    while (!tx.finished() && std::chrono::steady_clock::now() - start < patience) {
        REQUIRE(::poll(&p, 1, 5000) == 1);
        (void)tx.channel().pending();
    }
    CHECK(tx.finished());
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE(
    "process_transaction: a worker that lives on after its result is killed after the grace") {
    // Its result came, a helper holds its socket (no end of file), and it
    // does not exit: killed after the grace period; the result stands.
    pam::process_options o = quick(200ms);
    o.before_exit = [] {
        flush_coverage();
        for (;;) ::pause();
    };
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t) {
            const pid_t helper = ::fork();
            if (helper == 0) {
                ::sleep(8);
                ::_exit(0);
            }
            return helper < 0 ? pam::status(PAM_SYSTEM_ERR, "fork failed") : t.authenticate();
        },
        {}, test_services(), o);
    CHECK(run_out(tx) < 5s);
    REQUIRE(tx.finished());
    CHECK(tx.result().ok());
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: the worker holds none of the owner's descriptors") {
    int extra[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, extra) == 0);  // another client's socket
    ::rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    pam::process_transaction tx(
        "permit", "alice",
        [soft = lim.rlim_cur](pam::transaction& t) {
            // Only 0, 1, 2 and the socket (3); valgrind keeps its own above the limit.
            for (int fd : open_fds()) {
                if (fd > 3 && static_cast<::rlim_t>(fd) < soft) {
                    return pam::status(PAM_SYSTEM_ERR, "an owner's descriptor leaked");
                }
            }
            struct stat st {};
            if (::fstat(3, &st) != 0 || !S_ISSOCK(st.st_mode)) {
                return pam::status(PAM_SYSTEM_ERR, "no socket on 3");
            }
            return t.authenticate();
        },
        {}, test_services(), quick());
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
    ::close(extra[0]);
    ::close(extra[1]);
}

TEST_CASE(
    "process_transaction: an owner without stdin or stderr lends none of its own to the worker") {
    const int saved_in = ::dup(0);
    const int saved_err = ::dup(2);
    REQUIRE(saved_in >= 0);
    REQUIRE(saved_err >= 0);
    ::close(0);
    ::close(2);
    pam::status s;
    {
        pam::process_transaction tx(
            "permit", "alice",
            [](pam::transaction& t) {
                for (int fd = 0; fd < 3; ++fd) {
                    struct stat st {};
                    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
                        return pam::status(PAM_SYSTEM_ERR, "a socket on 0, 1 or 2");
                    }
                }
                return t.authenticate();
            },
            {}, test_services(), quick());
        s = tx.result();
    }
    ::dup2(saved_in, 0);
    ::dup2(saved_err, 2);
    ::close(saved_in);
    ::close(saved_err);
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: a module that crashes gives worker_died with SIGSEGV") {
    const std::set<int> before = open_fds();
    {
        pam::process_transaction tx(
            "oddball_crash", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick());
        CHECK(run_out(tx) < patience);
        pam::status s = tx.result();
        CHECK(s.code() == PAM_SYSTEM_ERR);
        CHECK(s.conversation_failure() == pam::failure::worker_died);
        CHECK(std::string(pam::to_string(s.conversation_failure())) ==
              "the PAM worker process died");
        CHECK(std::string(s.message()).find("signal") != std::string::npos);
        CHECK(tx.exit_info().signal == SIGSEGV);
        CHECK(tx.exit_info().exit_code == -1);
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: a module that calls exit gives worker_died with its code") {
    const std::set<int> before = open_fds();
    {
        pam::process_transaction tx(
            "oddball_exit", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick());
        CHECK(run_out(tx) < patience);
        pam::status s = tx.result();
        CHECK(s.code() == PAM_SYSTEM_ERR);
        CHECK(s.conversation_failure() == pam::failure::worker_died);
        CHECK(tx.exit_info().exit_code == 3);
        CHECK(tx.exit_info().signal == 0);
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: a module that hangs is killed after the deadline's grace") {
    const std::set<int> before = open_fds();
    {
        pam::process_transaction tx(
            "oddball_hang", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick(100ms));
        tx.channel().set_deadline(std::chrono::steady_clock::now() + 100ms);
        // The loop only polls the descriptor: it wakes when the grace ends.
        CHECK(run_out(tx) < 5s);
        pam::status s = tx.result();
        CHECK(s.code() == PAM_ABORT);
        CHECK(s.conversation_failure() == pam::failure::timed_out);
        CHECK(tx.exit_info().signal == SIGKILL);
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: a module silent past the silence limit is killed, no deadline") {
    pam::process_options o = quick(100ms);
    o.silence_limit = 200ms;
    pam::process_transaction tx(
        "oddball_hang", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
        test_services(), o);
    CHECK(run_out(tx) < 5s);
    pam::status s = tx.result();
    CHECK(s.code() == PAM_ABORT);
    CHECK(s.conversation_failure() == pam::failure::timed_out);
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: the silence limit does not run while the owner owes an answer") {
    pam::process_options o = quick();
    o.silence_limit = 1500ms;  // room for pam_start under valgrind
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                o);
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    std::this_thread::sleep_for(2s);  // the owner is slow: not the worker's silence
    CHECK_FALSE(tx.finished());
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: a cancelled worker that does not end is killed after the grace") {
    pam::process_transaction tx(
        "oddball_hang", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
        test_services(), quick(100ms));
    tx.channel().cancel();
    CHECK(run_out(tx) < 5s);
    pam::status s = tx.result();
    CHECK(s.code() == PAM_ABORT);
    CHECK(s.conversation_failure() == pam::failure::cancelled);
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: destroying a hung worker's transaction waits the grace only") {
    const std::set<int> before = open_fds();
    const auto start = std::chrono::steady_clock::now();
    {
        pam::process_transaction tx(
            "oddball_hang", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick(100ms));
        REQUIRE(tx.pid() > 0);
    }
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: a body that destroys its own transaction aborts the worker only") {
    // The object's address is known before the constructor forks, so the
    // worker's copy of the body points to the worker's copy of the object.
    void* storage = ::operator new(sizeof(pam::process_transaction));
    auto* where = static_cast<pam::process_transaction*>(storage);
    auto* tx = new (storage) pam::process_transaction(
        "permit", "alice",
        [where](pam::transaction&) {
            where->~process_transaction();  // a programming error: the worker aborts
            return pam::status();
        },
        {}, test_services(), quick());
    pam::status s = tx->result();
    CHECK(s.conversation_failure() == pam::failure::worker_died);
    CHECK(tx->exit_info().signal == SIGABRT);
    tx->~process_transaction();
    ::operator delete(storage);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: the body's exception is handler_threw") {
#if HANDOFF_HAS_EXCEPTIONS
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status { throw std::runtime_error("in the worker"); }, {},
        test_services(), quick());
    pam::status s = tx.result();
    CHECK(s.code() == PAM_SYSTEM_ERR);
    CHECK(s.conversation_failure() == pam::failure::handler_threw);
#endif
}

TEST_CASE("process_transaction: pam_start failed to start, and that is the result") {
    pam::start_options nowhere;
    nowhere.confdir = "/nonexistent/handoff";
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, nowhere, quick());
    pam::status s = tx.result();
    CHECK_FALSE(s.ok());
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: the session request reaches the body after authentication") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = authenticate_then_account(t);
            if (!s) return s;
            std::optional<pam::session_request> r = w.await_session();
            if (!r) return pam::status(PAM_ABORT, "no session request");
            if (r->command != std::vector<std::string>{"sh", "-c", "exec true"} ||
                r->environment != std::vector<std::string>{"LANG=C", "XDG_SESSION_TYPE=tty"}) {
                return pam::status(PAM_SYSTEM_ERR, "the request changed on the way");
            }
            s = t.setcred(PAM_ESTABLISH_CRED);
            return s ? t.open_session() : s;
        },
        {}, test_services(), quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    call->answer(0, "secret");
    REQUIRE(tx.channel().answer(std::move(*call)));
    const auto start = std::chrono::steady_clock::now();
    while (!tx.awaiting_session() && std::chrono::steady_clock::now() - start < patience) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
        CHECK_FALSE(tx.channel().pending());
    }
    REQUIRE(tx.awaiting_session());
    CHECK_FALSE(tx.finished());
    pam::session_request r;
    r.command = {"sh", "-c", "exec true"};
    r.environment = {"LANG=C", "XDG_SESSION_TYPE=tty"};
    CHECK(tx.start_session(r));
    CHECK_FALSE(tx.start_session(r));  // once
    CHECK_FALSE(tx.awaiting_session());
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: what the body reports reaches the owner, bounded") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = t.authenticate();
            if (!s) return s;
            if (!w.report("authenticated")) return pam::status(PAM_SYSTEM_ERR, "report refused");
            if (!w.await_session()) return pam::status(PAM_ABORT, "no session request");
            // Over the limit: refused, the last one kept.
            if (w.report(std::string(pam::worker::report_limit + 1, 'x'))) {
                return pam::status(PAM_SYSTEM_ERR, "an oversized report was taken");
            }
            const std::string longest(pam::worker::report_limit, 'y');
            if (!w.report(longest)) return pam::status(PAM_SYSTEM_ERR, "the longest refused");
            return pam::status();
        },
        {}, test_services(), quick());
    CHECK(tx.report().empty());
    const auto start = std::chrono::steady_clock::now();
    while (!tx.awaiting_session() && std::chrono::steady_clock::now() - start < patience) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
        (void)tx.channel().pending();
    }
    REQUIRE(tx.awaiting_session());
    CHECK(tx.report() == "authenticated");  // with the notice, before the result
    CHECK(tx.start_session({}));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
    CHECK(tx.report() == std::string(pam::worker::report_limit, 'y'));
}

TEST_CASE("process_transaction: a body that reports nothing leaves report() empty") {
    pam::process_transaction tx(
        "permit", "alice", [](pam::transaction& t, pam::worker&) { return t.authenticate(); }, {},
        test_services(), quick());
    CHECK(tx.result().ok());
    CHECK(tx.report().empty());
    pam::process_transaction plain("permit", "alice", authenticate_then_account, {},
                                   test_services(), quick());
    CHECK(plain.result().ok());
    CHECK(plain.report().empty());
}

TEST_CASE("process_transaction: a body awaiting its session ends when the owner cancels") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = t.authenticate();
            if (!s) return s;
            return w.await_session() ? pam::status() : pam::status(PAM_ABORT, "no session request");
        },
        {}, test_services(), quick());
    const auto start = std::chrono::steady_clock::now();
    while (!tx.awaiting_session() && std::chrono::steady_clock::now() - start < patience) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
        (void)tx.channel().pending();
    }
    REQUIRE(tx.awaiting_session());
    tx.channel().cancel();
    CHECK_FALSE(tx.start_session({}));
    CHECK(tx.result().code() == PAM_ABORT);
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: two at once, answered from one poll loop, neither leaks") {
    const std::set<int> before = open_fds();
    {
        pam::process_transaction a("matrix", "alice", authenticate_then_account, {},
                                   test_services(), quick());
        pam::process_transaction b("matrix", "bob", authenticate_then_account, {}, test_services(),
                                   quick());
        const auto start = std::chrono::steady_clock::now();
        while ((!a.finished() || !b.finished()) &&
               std::chrono::steady_clock::now() - start < patience) {
            ::pollfd p[2] = {{a.channel().fd(), POLLIN, 0}, {b.channel().fd(), POLLIN, 0}};
            (void)::poll(p, 2, 100);
            if (auto c = a.channel().pending()) {
                c->answer(0, "secret");
                a.channel().answer(std::move(*c));
            }
            if (auto c = b.channel().pending()) {
                c->answer(0, "hunter2");
                b.channel().answer(std::move(*c));
            }
        }
        CHECK(a.result().ok());
        CHECK(b.result().ok());
        CHECK(a.pam_user() == "alice");
        CHECK(b.pam_user() == "bob");
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: an owner ignoring SIGCHLD still sees its worker end") {
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    REQUIRE(::sigaction(SIGCHLD, &ignore, &old) == 0);
    {
        pam::process_transaction ok("permit", "alice", authenticate_then_account, {},
                                    test_services(), quick());
        CHECK(run_out(ok) < patience);
        CHECK(ok.result().ok());  // its result came before the kernel reaped it
        pam::process_transaction crash(
            "oddball_crash", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick());
        CHECK(run_out(crash) < patience);
        CHECK(crash.result().conversation_failure() == pam::failure::worker_died);
        // Reaped by the kernel: how it ended is unknown.
        CHECK(crash.exit_info().exit_code == -1);
        CHECK(crash.exit_info().signal == 0);
    }
    ::sigaction(SIGCHLD, &old, nullptr);
}

TEST_CASE("process_transaction: a worker that closes its socket and lives on is killed") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status {
            ::close(3);  // the socket: the owner reads end of file
            for (;;) ::pause();
        },
        {}, test_services(), quick(100ms));
    CHECK(run_out(tx) < 5s);
    pam::status s = tx.result();
    CHECK(s.conversation_failure() == pam::failure::worker_died);
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: after cancel, a later call in the worker fails at once") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            (void)t.authenticate();   // cancelled mid-prompt
            return t.authenticate();  // refused before it is sent
        },
        {}, test_services(), quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().cancel();
    pam::status s = tx.result();
    CHECK(s.conversation_failure() == pam::failure::cancelled);
}

TEST_CASE("process_transaction: the channel's handler refuses: the PAM end lives in the worker") {
    pam::process_transaction tx("permit", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    pam::conversation<pam::async_handler> conv(tx.channel().handler());
    ::pam_message m{PAM_PROMPT_ECHO_OFF, "Password: "};
    const ::pam_message* msgs[1] = {&m};
    ::pam_response* resp = nullptr;
    ::pam_conv c = conv.c_conv();
    CHECK(c.conv(1, msgs, &resp, c.appdata_ptr) == PAM_CONV_ERR);
    CHECK(resp == nullptr);
    CHECK(conv.last_failure() == pam::failure::refused);
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: out of descriptors, it says so and starts nothing") {
    ::rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    const int first_free = ::dup(0);
    REQUIRE(first_free >= 0);
    ::close(first_free);
    const std::set<int> before = open_fds();
    // Room for nothing (/proc unreadable), one (no socketpair), two (no
    // epoll), three (no timer).
    for (int room : {0, 1, 2, 3}) {
        CAPTURE(room);
        ::rlimit tight = old;
        tight.rlim_cur = static_cast<::rlim_t>(first_free) + static_cast<::rlim_t>(room);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
        pam::process_transaction tx("permit", "alice", authenticate_then_account, {},
                                    test_services(), quick());
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
        CHECK(tx.pid() == -1);
        CHECK(tx.finished());
        CHECK(tx.channel().error() == EMFILE);
        CHECK_FALSE(tx.channel().valid());
        CHECK_FALSE(tx.channel().pending());
        CHECK(tx.result().code() == PAM_SYSTEM_ERR);
    }
    CHECK(open_fds() == before);
    CHECK_FALSE(has_children());
}

TEST_CASE("process_transaction: an owner that dies takes its worker with it") {
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t owner = ::fork();
    REQUIRE(owner >= 0);
    if (owner == 0) {
        // The owner: starts a worker that hangs, tells its pid, and dies.
        auto* tx = new pam::process_transaction(
            "oddball_hang", "alice", [](pam::transaction& t) { return t.authenticate(); }, {},
            test_services(), quick());
        const pid_t worker = tx->pid();
        (void)!::write(report[1], &worker, sizeof worker);
        flush_coverage();
        ::_exit(0);
    }
    ::close(report[1]);
    pid_t worker = -1;
    REQUIRE(::read(report[0], &worker, sizeof worker) == static_cast<ssize_t>(sizeof worker));
    ::close(report[0]);
    int st = 0;
    REQUIRE(::waitpid(owner, &st, 0) == owner);
    if (worker == -1) {
        // ThreadSanitizer's runtime starts a thread of its own in a forked child,
        // so that owner is refused (correctly): nothing to check there.
        MESSAGE("the forked owner has another thread (a sanitizer's runtime): not checked");
        return;
    }
    REQUIRE(worker > 0);
    // The worker is not ours: it went to init, which reaps it once it is killed.
    const auto start = std::chrono::steady_clock::now();
    while (::kill(worker, 0) == 0 && std::chrono::steady_clock::now() - start < 10s) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(::kill(worker, 0) == -1);
}

// The thread transport's race in libpam's audit call (test_pam_async.cpp)
// cannot happen here: each worker is a single-threaded process. Run by the
// ThreadSanitizer build without suppressions.
TEST_CASE("process_transaction: concurrent authentications in workers, libpam's audit call alone") {
    std::vector<std::unique_ptr<pam::process_transaction>> txs;
    txs.reserve(8);
    for (int i = 0; i < 8; ++i) {
        txs.push_back(std::make_unique<pam::process_transaction>(
            "deny", "alice", [](pam::transaction& t) { return t.authenticate(); },
            pam::async_options{}, test_services(), quick()));
    }
    for (auto& tx : txs) CHECK(tx->result().code() == PAM_AUTH_ERR);
    CHECK_FALSE(has_children());
}

// Run on its own (see the top): it starts threads.
TEST_CASE("process_transaction: with other threads holding malloc and stdio, fork is refused") {
    std::atomic<bool> stop{false};
    std::FILE* sink = std::fopen("/dev/null", "w");
    REQUIRE(sink != nullptr);
    std::vector<std::thread> busy;
    busy.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            void* p = std::malloc(64);
            std::free(p);
        }
    });
    busy.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            std::fputs("held\n", sink);
            (void)std::fflush(sink);
        }
    });
    const char* count = std::getenv("HANDOFF_FORK_TRIES");
    const long tries = count != nullptr ? std::strtol(count, nullptr, 10) : 5000;
    long refused = 0;
    for (long i = 0; i < tries; ++i) {
        pam::process_transaction tx("permit", "alice", authenticate_then_account, {},
                                    test_services(), quick());
        pam::status s = tx.result();
        if (s.code() == PAM_SYSTEM_ERR && tx.channel().error() == EDEADLK && tx.pid() == -1 &&
            std::strstr(s.message(), "other threads") != nullptr && tx.finished() &&
            tx.exit_info().signal == 0 && tx.pam_user().empty() && tx.report().empty() &&
            !tx.awaiting_session() && !tx.start_session({})) {
            ++refused;
        }
    }
    stop = true;
    for (std::thread& t : busy) t.join();
    (void)std::fclose(sink);
    CHECK(refused == tries);
    CHECK_FALSE(has_children());
}

// ---------------------------------------------------------------------------
// The edges: hostile packets on either end of the socket, signals that
// interrupt the worker's blocking calls, and the channel's limits.
// ---------------------------------------------------------------------------

namespace {

// One packet of the wire format (pam_process.hpp, detail::wire): a kind byte,
// then native u8/u32 fields and texts (u32 length, bytes), built by hand so a
// test can send what the header never would.
class raw_packet {
public:
    explicit raw_packet(char kind) : bytes_(1, kind) {}
    raw_packet& u8(unsigned char v) {
        bytes_.push_back(static_cast<char>(v));
        return *this;
    }
    raw_packet& u32(std::uint32_t v) {
        char b[sizeof v];
        std::memcpy(b, &v, sizeof v);
        bytes_.append(b, sizeof b);
        return *this;
    }
    raw_packet& text(std::string_view t) {
        u32(static_cast<std::uint32_t>(t.size()));
        bytes_.append(t.data(), t.size());
        return *this;
    }
    bool send_to(int fd, int flags = 0) const {
        return ::send(fd, bytes_.data(), bytes_.size(), flags | MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes_.size());
    }

private:
    std::string bytes_;
};

// The owner's end of a worker's socket: the one socket among the descriptors
// opened since `before`.
int owner_socket(const std::set<int>& before) {
    for (int fd : open_fds()) {
        struct stat st {};
        if (before.count(fd) == 0 && ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) return fd;
    }
    return -1;
}

// Waits (polling the descriptor) until the body awaits its session.
bool await_ready(pam::process_transaction& tx) {
    const auto start = std::chrono::steady_clock::now();
    while (!tx.awaiting_session() && !tx.finished() &&
           std::chrono::steady_clock::now() - start < patience) {
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        (void)::poll(&p, 1, 100);
        (void)tx.channel().pending();
    }
    return tx.awaiting_session();
}

// A handler that does nothing: its point is the interruption.
void interrupted(int) {}

// In the worker: SIGUSR1 interrupts blocking calls (no SA_RESTART).
void interrupt_on_sigusr1() {
    struct sigaction sa {};
    sa.sa_handler = &interrupted;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGUSR1, &sa, nullptr);
}

// Sends the worker SIGUSR1 a few times, some milliseconds apart.
void poke(pid_t worker) {
    for (int i = 0; i < 3; ++i) {
        ::kill(worker, SIGUSR1);
        std::this_thread::sleep_for(30ms);
    }
}

}  // namespace

TEST_CASE(
    "process_transaction: a lifted deadline, and waits without a limit or past INT32_MAX ms") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    std::optional<pam::pending_call> call = tx.channel().wait(std::chrono::hours(1000));
    REQUIRE(call);
    // Set and lifted while the worker waits (set before its call, a deadline
    // already past when the worker reads it would end the call before the
    // worker reads the lift queued behind it).
    tx.channel().set_deadline(std::chrono::steady_clock::now() + 500ms);
    tx.channel().set_deadline(std::chrono::steady_clock::time_point::max());  // lifted
    std::this_thread::sleep_for(700ms);  // past the first deadline: it no longer counts
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    CHECK_FALSE(tx.channel().wait());  // no limit: returns once the worker's end closed it
    CHECK(tx.channel().closed());
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: after close(), wait() and start_session() refuse at once") {
    pam::process_transaction tx("matrix", "alice", authenticate_then_account, {}, test_services(),
                                quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    tx.channel().close();
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(tx.channel().wait(patience));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK_FALSE(tx.start_session({}));
    call->answer(0, "secret");
    CHECK_FALSE(tx.channel().answer(std::move(*call)));
    CHECK(tx.result().conversation_failure() == pam::failure::input_closed);
}

TEST_CASE("process_transaction: malformed packets from the worker are not calls") {
    // The body sends packets the header never would, then waits for the
    // owner's word (a deadline packet) before its real conversation.
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            raw_packet('Q').send_to(3);                                // no such kind
            raw_packet('W').u32(0xFFFFFFFFU).send_to(3);               // withdraws no call
            raw_packet('C').u32(7).u32(0).send_to(3);                  // a call of no message
            raw_packet('C').u32(8).u32(33).send_to(3);                 // over PAM_MAX_NUM_MSG
            raw_packet('C').u32(9).u32(1).u32(2).u32(100).send_to(3);  // text cut short
            char word[64];
            if (::recv(3, word, sizeof word, 0) <= 0) return pam::status(PAM_ABORT, "no word");
            return authenticate_then_account(t);
        },
        {}, test_services(), quick());
    CHECK_FALSE(tx.channel().wait(1s));  // none of them is a call
    tx.channel().set_deadline(std::chrono::steady_clock::time_point::max());  // the word
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    REQUIRE(call->size() == 1);
    CHECK((*call)[0].kind() == pam::style::prompt_echo_off);
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    CHECK(tx.result().ok());
}

TEST_CASE("process_transaction: a truncated result from the worker is no result") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status {
            raw_packet('D').u8(0).send_to(3);  // code cut short
            flush_coverage();
            ::_exit(0);
        },
        {}, test_services(), quick());
    pam::status s = tx.result();
    CHECK(s.code() == PAM_SYSTEM_ERR);
    CHECK(s.conversation_failure() == pam::failure::worker_died);
    CHECK(tx.exit_info().exit_code == 0);
    CHECK(tx.pam_user().empty());
}

TEST_CASE("process_transaction: a result whose user is cut short is no result either") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status {
            raw_packet('D').u32(PAM_SUCCESS).u8(0).u32(50).send_to(3);
            flush_coverage();
            ::_exit(0);
        },
        {}, test_services(), quick());
    CHECK(tx.result().conversation_failure() == pam::failure::worker_died);
}

TEST_CASE(
    "process_transaction: stale answers and malformed session requests from the owner's end") {
    const std::set<int> before = open_fds();
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = authenticate_then_account(t);
            if (!s) return s;
            std::optional<pam::session_request> r = w.await_session();
            if (!r) return pam::status(PAM_ABORT, "no session request");
            if (r->command != std::vector<std::string>{"sh"} ||
                r->environment != std::vector<std::string>{"LANG=C"}) {
                return pam::status(PAM_SYSTEM_ERR, "a malformed request was taken");
            }
            return pam::status();
        },
        {}, test_services(), quick());
    const int sock = owner_socket(before);
    REQUIRE(sock >= 0);
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    // Answers to no call the worker made (another sequence, another size),
    // with a wrong password: taken, they would fail the authentication.
    CHECK(raw_packet('A').u32(999).u32(1).u8(1).u8(0).text("wrong").send_to(sock));
    CHECK(raw_packet('A').u32(1).u32(2).u8(1).u8(0).text("wrong").u8(1).u8(0).text("x").send_to(
        sock));
    call->answer(0, "secret");
    REQUIRE(tx.channel().answer(std::move(*call)));
    REQUIRE(await_ready(tx));
    CHECK(raw_packet('S').u32(5).send_to(sock));                    // no command text
    CHECK(raw_packet('S').u32(1).text("sh").u32(4).send_to(sock));  // no environment text
    pam::session_request r;
    r.command = {"sh"};
    r.environment = {"LANG=C"};
    CHECK(tx.start_session(r));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: a session request sent before the body awaits it is kept") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = authenticate_then_account(t);
            if (!s) return s;
            std::optional<pam::session_request> r = w.await_session();
            if (!r || r->command != std::vector<std::string>{"early"}) {
                return pam::status(PAM_ABORT, "the early request was lost");
            }
            return pam::status();
        },
        {}, test_services(), quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    pam::session_request r;
    r.command = {"early"};
    CHECK(tx.start_session(r));  // while the worker waits for its answer
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: a body that awaits its session after a cancel does not wait") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t, pam::worker& w) {
            (void)t.authenticate();  // cancelled mid-prompt
            return w.await_session() ? pam::status() : pam::status(PAM_ABORT, "none");
        },
        {}, test_services(), quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().cancel();
    CHECK(tx.result().code() == PAM_ABORT);
    CHECK_FALSE(tx.awaiting_session());  // it never said it was waiting
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: after the deadline, a later call in the worker fails at once") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            (void)t.authenticate();   // timed out mid-prompt
            return t.authenticate();  // refused before it is sent
        },
        {}, test_services(), quick());
    REQUIRE(tx.channel().wait(patience));
    tx.channel().set_deadline(std::chrono::steady_clock::now() + 30ms);
    const auto start = std::chrono::steady_clock::now();
    pam::status s = tx.result();
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(s.conversation_failure() == pam::failure::timed_out);
    CHECK(tx.exit_info().exit_code == 0);  // it ended on its own
}

TEST_CASE("process_transaction: the owner's end shut down: the worker's calls fail, no result") {
    const std::set<int> before = open_fds();
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            (void)t.authenticate();   // end of file mid-prompt
            return t.authenticate();  // refused before it is sent
        },
        {}, test_services(), quick());
    const int sock = owner_socket(before);
    REQUIRE(sock >= 0);
    REQUIRE(tx.channel().wait(patience));
    REQUIRE(::shutdown(sock, SHUT_RDWR) == 0);
    pam::status s = tx.result();
    CHECK(s.conversation_failure() == pam::failure::worker_died);  // its result could not come
    CHECK(tx.exit_info().exit_code == 0);
}

TEST_CASE("process_transaction: signals interrupting the worker's send and poll are retried") {
    // The body fills the owner's receive queue, so that its call's send
    // blocks; SIGUSR1 (a handler without SA_RESTART) then interrupts that
    // send, and later the poll for the answer.
    const std::set<int> before = open_fds();
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            interrupt_on_sigusr1();
            const raw_packet filler = raw_packet('W').u32(0xFFFFFFFFU);
            int sent = 0;
            while (sent < 100000 && filler.send_to(3, MSG_DONTWAIT)) ++sent;
            return authenticate_then_account(t);
        },
        {}, test_services(), quick());
    const int sock = owner_socket(before);
    REQUIRE(sock >= 0);
    // The first filler packet says the handler is in place (before, SIGUSR1
    // would kill the worker); soon after, the worker blocks in send.
    ::pollfd p{sock, POLLIN, 0};
    REQUIRE(::poll(&p, 1, static_cast<int>(patience.count())) == 1);
    std::this_thread::sleep_for(200ms);
    poke(tx.pid());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);  // drains the queue
    REQUIRE(call);
    poke(tx.pid());  // the worker polls for its answer
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
    CHECK(tx.exit_info().signal == 0);
}

TEST_CASE("process_transaction: the owner's SA_SIGINFO handler is not the worker's") {
    struct sigaction own {
    }, old{};
    own.sa_sigaction = [](int, siginfo_t*, void*) {};
    own.sa_flags = SA_SIGINFO;
    sigemptyset(&own.sa_mask);
    REQUIRE(::sigaction(SIGUSR2, &own, &old) == 0);
    pam::status s;
    {
        pam::process_transaction tx(
            "permit", "alice",
            [](pam::transaction& t) {
                struct sigaction now {};
                if (::sigaction(SIGUSR2, nullptr, &now) != 0 || (now.sa_flags & SA_SIGINFO) != 0 ||
                    now.sa_handler != SIG_DFL) {
                    return pam::status(PAM_SYSTEM_ERR, "the owner's handler in the worker");
                }
                return t.authenticate();
            },
            {}, test_services(), quick());
        s = tx.result();
    }
    ::sigaction(SIGUSR2, &old, nullptr);
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: the silence limit does not run while the body awaits its session") {
    pam::process_options o = quick();
    o.silence_limit = 1500ms;  // room for pam_start under valgrind
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t, pam::worker& w) {
            pam::status s = t.authenticate();
            if (!s) return s;
            return w.await_session() ? t.open_session() : pam::status(PAM_ABORT, "none");
        },
        {}, test_services(), o);
    REQUIRE(await_ready(tx));
    std::this_thread::sleep_for(2s);  // the owner is slow: not the worker's silence
    CHECK_FALSE(tx.finished());
    CHECK(tx.start_session({}));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: a binary prompt reaches the owner without its data") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction& t) {
            const void* item = nullptr;
            if (::pam_get_item(t.native_handle(), PAM_CONV, &item) != PAM_SUCCESS) {
                return pam::status(PAM_SYSTEM_ERR, "no conversation");
            }
            const auto* conv = static_cast<const ::pam_conv*>(item);
            ::pam_message m{PAM_BINARY_PROMPT, "\x01\x02"};
            const ::pam_message* msgs[1] = {&m};
            ::pam_response* resp = nullptr;
            const int rc = conv->conv(1, msgs, &resp, conv->appdata_ptr);
            return rc == PAM_CONV_ERR && resp == nullptr ? pam::status()
                                                         : pam::status(PAM_SYSTEM_ERR, "taken");
        },
        {}, test_services(), quick());
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    CHECK(tx.exit_info().exit_code == -1);  // still running
    CHECK(tx.exit_info().signal == 0);
    REQUIRE(call->size() == 1);
    CHECK((*call)[0].kind() == pam::style::binary_prompt);
    CHECK((*call)[0].text().empty());
    call->refuse(pam::failure::refused);
    CHECK(tx.channel().answer(std::move(*call)));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: a copy of an earlier call does not answer a later one") {
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            (void)t.authenticate();  // the first call: answered wrong
            return authenticate_then_account(t);
        },
        {}, test_services(), quick());
    std::optional<pam::pending_call> first = tx.channel().wait(patience);
    REQUIRE(first);
    std::optional<pam::pending_call> copy = tx.channel().pending();  // the same call, again
    REQUIRE(copy);
    first->answer(0, "wrong");
    REQUIRE(tx.channel().answer(std::move(*first)));
    std::optional<pam::pending_call> second;
    const auto start = std::chrono::steady_clock::now();
    while (!second && !tx.finished() && std::chrono::steady_clock::now() - start < patience) {
        second = tx.channel().wait(100ms);
        if (second && second->id() == copy->id()) second.reset();  // not replaced yet
    }
    REQUIRE(second);
    copy->answer(0, "wrong");
    CHECK_FALSE(tx.channel().answer(std::move(*copy)));  // another call's id
    CHECK(copy->empty());
    second->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*second)));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}

TEST_CASE("process_transaction: an answer that finds the worker's queue full is not taken") {
    // A worker gone wrong: it calls, then reads nothing; its queue is full.
    const std::set<int> before = open_fds();
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status {
            raw_packet('C').u32(1).u32(1).u32(PAM_PROMPT_ECHO_OFF).text("Password: ").send_to(3);
            for (;;) ::pause();
        },
        {}, test_services(), quick(100ms));
    const int sock = owner_socket(before);
    REQUIRE(sock >= 0);
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    const raw_packet filler = raw_packet('T').u32(0).u32(0);
    int sent = 0;
    while (sent < 100000 && filler.send_to(sock, MSG_DONTWAIT)) ++sent;
    REQUIRE(errno == EAGAIN);
    call->answer(0, "secret");
    CHECK_FALSE(tx.channel().answer(std::move(*call)));
    CHECK(call->empty());           // wiped all the same
    CHECK(tx.channel().pending());  // still pending: it may be answered again
    tx.channel().cancel();
    pam::status s = tx.result();
    CHECK(s.code() == PAM_ABORT);
    CHECK(s.conversation_failure() == pam::failure::cancelled);
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: a call whose worker closed its socket cannot be answered") {
    pam::process_transaction tx(
        "permit", "alice",
        [](pam::transaction&) -> pam::status {
            raw_packet('C').u32(1).u32(1).u32(PAM_PROMPT_ECHO_OFF).text("Password: ").send_to(3);
            ::close(3);
            for (;;) ::pause();
        },
        {}, test_services(), quick(100ms));
    std::optional<pam::pending_call> call;
    const auto start = std::chrono::steady_clock::now();
    while (!tx.channel().closed() && std::chrono::steady_clock::now() - start < patience) {
        if (std::optional<pam::pending_call> c = tx.channel().wait(100ms)) call = std::move(c);
    }
    REQUIRE(tx.channel().closed());  // end of file read
    if (!call) call = tx.channel().pending();
    REQUIRE(call);
    call->answer(0, "secret");
    CHECK_FALSE(tx.channel().answer(std::move(*call)));
    CHECK(tx.result().conversation_failure() == pam::failure::worker_died);
    CHECK(tx.exit_info().signal == SIGKILL);
}

TEST_CASE("process_transaction: a deadline extended before the worker read it is in force") {
    // The worker is busy (a slow module) while the owner sets a short
    // deadline and extends it; the worker reads both once the first has
    // passed, and must go by the second.
    pam::process_transaction tx(
        "matrix", "alice",
        [](pam::transaction& t) {
            std::this_thread::sleep_for(300ms);
            return authenticate_then_account(t);
        },
        {}, test_services(), quick());
    tx.channel().set_deadline(std::chrono::steady_clock::now() + 50ms);
    tx.channel().set_deadline(std::chrono::steady_clock::now() + 60s);  // extended
    std::optional<pam::pending_call> call = tx.channel().wait(patience);
    REQUIRE(call);
    call->answer(0, "secret");
    CHECK(tx.channel().answer(std::move(*call)));
    pam::status s = tx.result();
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
}
