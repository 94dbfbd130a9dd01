// authd: an authentication daemon that speaks greetd's IPC protocol
// (greetd-ipc(7)), so greetd's greeters (agreety) can log in through it.
//
// One thread runs the event loop: the listening socket, every client, and the
// descriptor of every PAM channel. As in greetd, there is one session under
// configuration for the whole daemon: any connection may answer, start or
// cancel it, and a disconnect leaves it. create_session starts a
// pam::process_transaction (pam_authenticate, pam_acct_mgmt, pam_chauthtok for
// an expired password, pam_setcred) in a worker process of its own, or with
// --isolation thread a pam::async_transaction on a thread; its prompts
// come back through the channel and go out one auth_message at a time, as
// greetd sends them. start_session starts nothing: it answers success and
// records what it would have started (in a worker process: handed to the
// worker, which awaits it after authentication and reports what it received;
// the record is written from that report).
// SPDX-License-Identifier: MIT
#include "greetd_ipc.hpp"

#include <handoff/pam_process.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AUTHD_SANITIZER_HEAP 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AUTHD_SANITIZER_HEAP 1
#endif
#if defined(AUTHD_SANITIZER_HEAP)
// From the sanitizers' public interface (<sanitizer/allocator_interface.h>,
// which only Clang installs here).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

// ---------------------------------------------------------------------------
// Every block the daemon frees through operator delete is wiped first. The
// JSON parser's scratch memory (its lexer's token buffers, the text of a parse
// error that quotes the input, a duplicate key's first value, the growth
// copies of a long string) may hold an answer, and nlohmann::json takes no
// allocator for it. operator new is replaced too, so that both sides are
// malloc and free (malloc_usable_size gives the size to wipe). Not in the
// sanitizer builds: their runtimes define these operators themselves (Clang's
// statically, a second definition), and keep freed blocks in quarantine.
// ---------------------------------------------------------------------------
#if !defined(AUTHD_SANITIZER_HEAP)

void* operator new(std::size_t n) {
    for (;;) {
        // NOLINTNEXTLINE(cppcoreguidelines-no-malloc): the replacement's own allocator
        if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) {
#if HANDOFF_HAS_EXCEPTIONS
            throw std::bad_alloc();
#else
            std::abort();
#endif
        }
        handler();
    }
}

void* operator new[](std::size_t n) { return ::operator new(n); }

void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    // NOLINTNEXTLINE(cppcoreguidelines-no-malloc): the replacement's own allocator
    return std::malloc(n == 0 ? 1 : n);
}

void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept {
    return ::operator new(n, tag);
}

void operator delete(void* p) noexcept {
    if (p == nullptr) return;
    handoff::secure_wipe(p, ::malloc_usable_size(p));
    // NOLINTNEXTLINE(cppcoreguidelines-no-malloc): the replacement's own allocator
    std::free(p);
}

void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }
#endif

namespace pam = handoff::pam;
using clock_type = std::chrono::steady_clock;

namespace {

const char usage[] =
    "usage: authd --socket PATH [--service NAME] [--confdir DIR]\n"
    "             [--sessions shared|per-connection] [--answer-timeout SECONDS]\n"
    "             [--read-timeout SECONDS] [--max-sessions N] [--max-clients N]\n"
    "             [--isolation process|thread]\n"
    "\n"
    "An authentication daemon speaking greetd's IPC protocol (greetd-ipc(7)) on a\n"
    "UNIX socket, so greetd's greeters (agreety: GREETD_SOCK=PATH agreety) can log\n"
    "in through it. Each create_session runs pam_authenticate, pam_acct_mgmt\n"
    "(pam_chauthtok when the password has expired) and pam_setcred on a thread of\n"
    "its own; PAM's messages reach the client one auth_message at a time.\n"
    "\n"
    "authd starts nothing: start_session answers success and records the command\n"
    "and environment it would have started as a JSON line on standard output.\n"
    "\n"
    "  --socket PATH            listen here (mode 0600; a stale socket is replaced)\n"
    "  --service NAME           the PAM service of every session (default: login)\n"
    "  --confdir DIR            read PAM service files from DIR (pam_start_confdir)\n"
    "  --sessions MODEL         shared (default, greetd's model): one session under\n"
    "                           configuration for the daemon, which any connection\n"
    "                           may answer, start or cancel, and which outlives the\n"
    "                           connection that created it; per-connection (an\n"
    "                           extension): each connection configures a session\n"
    "                           of its own, ended when it disconnects\n"
    "  --answer-timeout SECONDS a prompt unanswered this long fails the session\n"
    "                           (auth_error; default 0: never, as greetd). With\n"
    "                           --isolation process also the worker's silence\n"
    "                           limit: a module silent this long (no prompt, no\n"
    "                           result; pam_faildelay's wait too) is killed\n"
    "  --read-timeout SECONDS   a frame begun and not complete this long closes\n"
    "                           its connection (default 10; 0: never). A client\n"
    "                           that sends nothing is never dropped\n"
    "  --max-sessions N         PAM transactions at once, counting those still\n"
    "                           ending (and, with --isolation process, workers\n"
    "                           awaiting start_session); create_session beyond it\n"
    "                           is refused with an error (default 16). A\n"
    "                           connection holds at most 2 of them (its session\n"
    "                           and one still ending)\n"
    "  --max-clients N          connections at once; more are refused (default 64)\n"
    "  --isolation process      each session's PAM runs in a worker process of its\n"
    "                           own (pam::process_transaction; the default)\n"
    "  --isolation thread       each session's PAM runs on a thread of authd\n"
    "                           (pam::async_transaction)\n"
    "  -h, --help               this text\n"
    "\n"
    "Bad input gets an error response and the daemon stays up. A frame's payload\n"
    "may hold at most 65536 bytes: a longer one is answered with an error and the\n"
    "connection is closed. Standard output carries one JSON object per line:\n"
    "listening, session (each outcome), start_session, refused, stats (on\n"
    "SIGUSR1), exit. It never blocks the daemon: lines wait in a buffer of 64 KiB\n"
    "and, when a reader falls that far behind, are dropped and counted (stats:\n"
    "records_dropped). SIGTERM or SIGINT ends every session and exits.\n";

enum class session_model { shared, per_connection };

struct options {
    std::string socket_path;
    std::string service = "login";
    std::string confdir;
    session_model model = session_model::shared;
    long answer_timeout_s = 0;
    long read_timeout_s = 10;
    std::size_t max_sessions = 16;
    std::size_t max_clients = 64;
    bool process_isolation = true;
};

// The transactions one connection may hold: its session and one still ending.
constexpr std::size_t per_client_transactions = 2;

// ---------------------------------------------------------------------------
// Output: one JSON object per line on standard output, never blocking
// ---------------------------------------------------------------------------

// Standard output is made non-blocking; what the reader has not taken waits
// here, up to `limit` bytes. A line that does not fit is dropped and counted.
class record_output {
public:
    static constexpr std::size_t limit = std::size_t{64} * 1024;

    // The descriptor's flags are shared with whoever else holds it (a shell's
    // terminal): finish() puts them back.
    void start() {
        flags_ = ::fcntl(STDOUT_FILENO, F_GETFL);
        if (flags_ >= 0) static_cast<void>(::fcntl(STDOUT_FILENO, F_SETFL, flags_ | O_NONBLOCK));
    }

    void emit(const nlohmann::json& event) {
        std::string line = greetd_ipc::dump(event) + "\n";
        if (pending_.size() + line.size() > limit) {
            ++dropped_;
            return;
        }
        pending_ += line;
        write_some();
    }

    // Writes what the descriptor takes now. A closed stdout or a full disk
    // loses the records, not the daemon.
    void write_some() {
        while (!pending_.empty()) {
            const ssize_t n = ::write(STDOUT_FILENO, pending_.data(), pending_.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) {
                dropped_ +=
                    static_cast<std::size_t>(std::count(pending_.begin(), pending_.end(), '\n'));
                handoff::secure_clear(pending_);
                return;
            }
            pending_.erase(0, static_cast<std::size_t>(n));
        }
        // erase() moved the bytes and left their old tail behind (a user name
        // may be a password typed in the wrong field): wiped once all is out.
        handoff::secure_clear(pending_);
    }

    // At exit: what is left, waiting at most a second for the reader.
    void finish() {
        const auto until = clock_type::now() + std::chrono::seconds(1);
        while (!pending_.empty() && clock_type::now() < until) {
            ::pollfd p{STDOUT_FILENO, POLLOUT, 0};
            if (::poll(&p, 1, 100) > 0) write_some();
        }
        if (flags_ >= 0) static_cast<void>(::fcntl(STDOUT_FILENO, F_SETFL, flags_));
    }

    bool waiting() const { return !pending_.empty(); }
    std::size_t dropped() const { return dropped_; }

private:
    std::string pending_;
    std::size_t dropped_ = 0;
    int flags_ = -1;
};

// Live heap bytes: the sanitizer allocator's exact count when there is one;
// else glibc's mallinfo2, which also counts chunks parked in thread caches.
#if defined(AUTHD_SANITIZER_HEAP)
const char* const heap_source = "sanitizer";
std::size_t heap_in_use() { return __sanitizer_get_current_allocated_bytes(); }
#else
const char* const heap_source = "mallinfo2";
std::size_t heap_in_use() {
    struct mallinfo2 mi = ::mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

// User and system time of every thread so far.
long long cpu_time_us() {
    rusage ru{}, workers{};
    ::getrusage(RUSAGE_SELF, &ru);
    ::getrusage(RUSAGE_CHILDREN, &workers);  // the reaped worker processes
    auto us = [](const timeval& t) {
        return static_cast<long long>(t.tv_sec) * 1000000 + t.tv_usec;
    };
    return us(ru.ru_utime) + us(ru.ru_stime) + us(workers.ru_utime) + us(workers.ru_stime);
}

// User and system time of the reaped worker processes alone.
long long cpu_workers_us() {
    rusage workers{};
    ::getrusage(RUSAGE_CHILDREN, &workers);
    return static_cast<long long>(workers.ru_utime.tv_sec + workers.ru_stime.tv_sec) * 1000000 +
           workers.ru_utime.tv_usec + workers.ru_stime.tv_usec;
}

long status_field(const char* name) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const std::size_t n = std::strlen(name);
    while (std::getline(f, line)) {
        if (line.compare(0, n, name) == 0 && line.size() > n && line[n] == ':') {
            return std::strtol(line.c_str() + n + 1, nullptr, 10);
        }
    }
    return -1;
}

// ---------------------------------------------------------------------------
// Signals: the handler writes the number to a pipe the loop polls
// ---------------------------------------------------------------------------

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a signal handler's pipe
int signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
    const int saved = errno;
    const auto byte = static_cast<unsigned char>(sig);
    (void)!::write(signal_pipe[1], &byte, 1);
    errno = saved;
}

bool install_signals() {
    if (::pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    struct sigaction sa {};
    sa.sa_handler = &on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
        if (::sigaction(sig, &sa, nullptr) != 0) return false;
    }
    // Cannot fail for SIGPIPE; a write to a gone client then fails with EPIPE.
    static_cast<void>(::signal(SIGPIPE, SIG_IGN));
    return true;
}

// ---------------------------------------------------------------------------
// Sessions and clients
// ---------------------------------------------------------------------------

// The parser's small strings (an answer under 16 bytes sits in a
// std::string's own buffer) lived in stack frames below the caller's: zeroed
// after each request, as far down as a request goes.
[[gnu::noinline]] void scrub_stack() noexcept {
    unsigned char area[64 * 1024];
    handoff::secure_wipe(area, sizeof area);
}

// What the worker learns that the loop reports: written on the worker, read
// after result() has joined it. Shared with the body, because a transaction
// that is cancelled outlives its session until it has finished (ending_).
// A worker process writes its own copy: it sends it back as its report.
struct outcome {
    std::string pam_user;
    bool password_changed = false;
    // In a worker process: the start_session request as the worker received
    // it, and the worker's process id.
    bool started = false;
    std::vector<std::string> cmd;
    std::vector<std::string> env;
    long worker = 0;

    // The report of a worker process (pam::worker::report), a JSON object.
    std::string to_report() const {
        nlohmann::json j = {{"pam_user", pam_user}, {"password_changed", password_changed}};
        if (started) {
            j["cmd"] = cmd;
            j["env"] = env;
            j["worker"] = worker;
        }
        return greetd_ipc::dump(j);
    }
    void from_report(const std::string& report) {
        // None when the body never ran (pam_start failed) or the worker died:
        // not parsed (nlohmann builds a parse_error object even when it does
        // not throw, which UBSan's vptr check reports for an empty input).
        if (report.empty()) return;
        const nlohmann::json j = nlohmann::json::parse(report, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) return;
        auto text = [&](const char* key) {
            auto it = j.find(key);
            return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        auto texts = [&](const char* key, std::vector<std::string>& to) {
            auto it = j.find(key);
            if (it == j.end() || !it->is_array()) return false;
            to.clear();
            for (const nlohmann::json& e : *it)
                to.push_back(e.is_string() ? e.get<std::string>() : "");
            return true;
        };
        pam_user = text("pam_user");
        auto changed = j.find("password_changed");
        password_changed = changed != j.end() && changed->is_boolean() && changed->get<bool>();
        started = texts("cmd", cmd) && texts("env", env);
        auto pid = j.find("worker");
        worker = pid != j.end() && pid->is_number_integer() ? pid->get<long>() : 0;
    }
};

// The PAM steps of a session, as greetd takes them, on the worker thread.
// Beyond greetd: an expired password is changed as login(1) does, its prompts
// relayed like any other.
pam::status authenticate_steps(pam::transaction& tx, outcome& out) {
    pam::status st = tx.authenticate();
    if (st) st = tx.acct_mgmt();
    if (st.code() == PAM_NEW_AUTHTOK_REQD) {
        st = tx.chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK);
        out.password_changed = st.ok();
    }
    if (st) st = tx.setcred(PAM_ESTABLISH_CRED);
    if (st) out.pam_user = std::string(tx.get_item(pam::item::user).value_or(""));
    // pam_start's frames (and the user name copied there) lay where this
    // body's calls went: zeroed before the thread's stack is cached for reuse.
    scrub_stack();
    return st;
}

// Where a session's transaction is made: one place, so how it runs (a worker
// process or a thread, --isolation) is chosen in one place. In a worker
// process the body's writes to `out` stay in the worker: the status and
// PAM_USER come back, and the rest of `out` as the worker's report, which the
// loop reads from `*process` (set in process isolation, else null).
std::unique_ptr<pam::hosted_transaction> start_transaction(const options& opt,
                                                           const std::string& username,
                                                           std::shared_ptr<outcome> out,
                                                           pam::process_transaction** process) {
    pam::async_options ao;
    if (opt.answer_timeout_s > 0) ao.answer_timeout = std::chrono::seconds(opt.answer_timeout_s);
    pam::start_options so;
    so.confdir = opt.confdir;
    *process = nullptr;
    if (opt.process_isolation) {
        pam::process_options po;  // a module silent that long is killed
        if (opt.answer_timeout_s > 0) po.silence_limit = ao.answer_timeout;
        // After authentication the worker awaits start_session: the record
        // is written from the request as it reached the worker, which sends
        // it back in its report (a request too long for a report fails).
        auto body = [out = std::move(out)](pam::transaction& tx, pam::worker& w) {
            pam::status st = authenticate_steps(tx, *out);
            (void)w.report(out->to_report());
            if (!st) return st;
            std::optional<pam::session_request> request = w.await_session();
            if (!request) return pam::status(PAM_ABORT, "no start_session came");
            out->started = true;
            out->cmd = std::move(request->command);
            out->env = std::move(request->environment);
            out->worker = static_cast<long>(::getpid());
            if (!w.report(out->to_report())) {
                return pam::status(PAM_BUF_ERR, "start_session too long to record");
            }
            return pam::status();
        };
        auto tx =
            std::make_unique<pam::process_transaction>(opt.service, username, body, ao, so, po);
        *process = tx.get();
        return tx;
    }
    auto body = [out = std::move(out)](pam::transaction& tx) {
        return authenticate_steps(tx, *out);
    };
    return std::make_unique<pam::async_transaction>(opt.service, username, body, ao, so);
}

struct client;

struct session {
    enum class phase {
        running,   // PAM works
        asking,    // a message is out (or waits for a client to ask for it)
        ready,     // authenticated: start_session may come (a worker process awaits it)
        starting,  // start_session handed to the worker process: its report is awaited
        failed,    // PAM failed: dead until cancel_session (greetd's rule)
    };
    std::string username;
    std::shared_ptr<outcome> result = std::make_shared<outcome>();
    std::unique_ptr<pam::hosted_transaction> tx;
    pam::process_transaction* process = nullptr;  // tx, in process isolation
    std::optional<pam::pending_call> call;        // the call being asked, message by message
    std::size_t next = 0;                         // the message being answered
    phase now = phase::running;
    client* waiter = nullptr;   // the connection waiting for our next response
    std::size_t owner_id = 0;   // the connection that created it (its share)
    bool timed_out = false;     // a prompt was let time out
    std::string failure;        // the error payload (phase::failed)
    bool failure_told = false;  // someone heard it
};

struct client {
    std::size_t id = 0;
    int fd = -1;
    // The frame being read: its 4-byte length, then its payload (wiped when freed).
    unsigned char header[4] = {};
    std::size_t header_got = 0;
    bool have_length = false;
    handoff::secure_malloc_array<char> payload;
    std::size_t payload_got = 0;
    clock_type::time_point frame_started{};  // the first byte of the frame being read

    std::string out;         // responses not yet written
    bool closing = false;    // close once `out` is written
    bool peer_done = false;  // the peer shut down its sending side
    bool dead = false;
    bool waiting = false;          // waits for a response from PAM
    std::unique_ptr<session> own;  // its session, in the per-connection model

    bool busy() const { return closing || !out.empty() || waiting; }
    bool mid_frame() const { return header_got > 0 || have_length; }
};

// A transaction still ending after its session went, and whose it was.
struct ending_transaction {
    std::unique_ptr<pam::hosted_transaction> tx;
    std::size_t owner_id = 0;
};

enum class read_result { more, frame, eof, failed, too_long };

class authd {
public:
    explicit authd(options o) : opt_(std::move(o)) {}

    int run() {
        if (!listen_on(opt_.socket_path)) return 1;
        records_.start();
        emit({{"event", "listening"}, {"socket", opt_.socket_path}, {"pid", ::getpid()}});
        while (!stopping_) {
            loop_once();
        }
        shut_down();
        emit({{"event", "exit"}, {"served", served_}, {"records_dropped", records_.dropped()}});
        records_.finish();
        return 0;
    }

private:
    void emit(const nlohmann::json& event) { records_.emit(event); }

    // ---- setup -----------------------------------------------------------

    bool listen_on(const std::string& path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.empty() || path.size() >= sizeof addr.sun_path) {
            std::fprintf(stderr, "authd: socket path empty or too long\n");
            return false;
        }
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd_ < 0) return report("socket");
        const mode_t old = ::umask(0177);
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API's cast
        const int bound = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::umask(old);
        if (bound != 0) return report("bind");
        if (::listen(listen_fd_, 128) != 0) return report("listen");
        return true;
    }

    static bool report(const char* what) {
        std::fprintf(stderr, "authd: %s: %s\n", what, std::strerror(errno));
        return false;
    }

    // ---- sessions ----------------------------------------------------------

    // The session a client configures: the daemon's one, or its own.
    std::unique_ptr<session>& slot(client& c) {
        return opt_.model == session_model::shared ? shared_ : c.own;
    }

    template <typename F>
    void each_session(F&& f) {
        if (shared_) f(*shared_);
        for (auto& c : clients_) {
            if (c->own) f(*c->own);
        }
    }

    // Transactions running or ending, all of them or one connection's.
    std::size_t transactions(std::optional<std::size_t> owner = std::nullopt) {
        std::size_t n = 0;
        each_session([&](session& s) {
            if (s.tx && (!owner || s.owner_id == *owner)) ++n;
        });
        for (const ending_transaction& e : ending_) {
            if (!owner || e.owner_id == *owner) ++n;
        }
        return n;
    }

    // ---- the loop --------------------------------------------------------

    enum class source { signals, listener, records, client_socket, channel, ending };

    void loop_once() {
        std::vector<::pollfd> fds;
        std::vector<std::pair<source, std::size_t>> what;
        std::vector<session*> sessions;
        fds.push_back({signal_pipe[0], POLLIN, 0});
        what.emplace_back(source::signals, 0);
        // Out of descriptors, the listener is left alone for a moment rather
        // than reported readable again and again.
        if (clock_type::now() >= accept_paused_until_) {
            fds.push_back({listen_fd_, POLLIN, 0});
            what.emplace_back(source::listener, 0);
        }
        if (records_.waiting()) {
            fds.push_back({STDOUT_FILENO, POLLOUT, 0});
            what.emplace_back(source::records, 0);
        }
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            client& c = *clients_[i];
            short events = 0;
            if (!c.busy()) events |= POLLIN;
            if (!c.out.empty()) events |= POLLOUT;
            if (!c.peer_done) events |= POLLRDHUP;
            fds.push_back({c.fd, events, 0});
            what.emplace_back(source::client_socket, i);
        }
        each_session([&](session& s) {
            if (s.tx) {
                fds.push_back({s.tx->channel().fd(), POLLIN, 0});
                what.emplace_back(source::channel, sessions.size());
                sessions.push_back(&s);
            }
        });
        for (std::size_t i = 0; i < ending_.size(); ++i) {
            fds.push_back({ending_[i].tx->channel().fd(), POLLIN, 0});
            what.emplace_back(source::ending, i);
        }

        const int n = ::poll(fds.data(), fds.size(), poll_timeout_ms());
        if (n < 0 && errno != EINTR) {
            report("poll");
            stopping_ = true;
            return;
        }
        // Sessions a client request ended in this turn are not touched after.
        ended_this_turn_.clear();
        for (std::size_t k = 0; n > 0 && k < fds.size(); ++k) {
            if (fds[k].revents == 0) continue;
            const auto [src, i] = what[k];
            switch (src) {
            case source::signals: read_signals(); break;
            case source::listener: accept_clients(); break;
            case source::records: records_.write_some(); break;
            case source::client_socket: client_io(*clients_[i], fds[k].revents); break;
            case source::channel:
                if (std::find(ended_this_turn_.begin(), ended_this_turn_.end(), sessions[i]) ==
                    ended_this_turn_.end()) {
                    channel_news(*sessions[i]);
                }
                break;
            case source::ending: break;  // reaped below
            }
        }
        reap_ending();
        expire_reads();
        clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                      [](const std::unique_ptr<client>& c) { return c->dead; }),
                       clients_.end());
    }

    int poll_timeout_ms() const {
        auto soonest = clock_type::time_point::max();
        if (accept_paused_until_ > clock_type::now()) soonest = accept_paused_until_;
        if (opt_.read_timeout_s > 0) {
            const auto limit = std::chrono::seconds(opt_.read_timeout_s);
            for (const auto& c : clients_) {
                if (c->mid_frame()) soonest = std::min(soonest, c->frame_started + limit);
            }
        }
        if (soonest == clock_type::time_point::max()) return -1;
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(soonest - clock_type::now());
        return static_cast<int>(std::clamp<long long>(left.count() + 1, 0, 60LL * 60 * 1000));
    }

    // A frame begun and not finished within the read deadline closes its
    // connection: a client may be silent between requests for as long as it
    // likes (tuigreet at its user-name screen), but not in the middle of one.
    void expire_reads() {
        if (opt_.read_timeout_s <= 0) return;
        const auto now = clock_type::now();
        const auto limit = std::chrono::seconds(opt_.read_timeout_s);
        for (auto& c : clients_) {
            if (!c->dead && c->mid_frame() && now - c->frame_started >= limit) {
                drop_client(*c, "read_timeout");
            }
        }
    }

    void read_signals() {
        unsigned char sig = 0;
        while (::read(signal_pipe[0], &sig, 1) == 1) {
            if (sig == SIGUSR1) {
                emit_stats();
            } else {
                stopping_ = true;
            }
        }
    }

    void emit_stats() {
        std::size_t sessions = 0;
        each_session([&](session&) { ++sessions; });
        emit({{"event", "stats"},
              {"clients", clients_.size()},
              {"sessions", sessions},
              {"transactions", transactions()},
              {"ending", ending_.size()},
              {"served", served_},
              {"refused", refused_},
              {"records_dropped", records_.dropped()},
              {"threads", status_field("Threads")},
              {"rss_kb", status_field("VmRSS")},
              {"rss_peak_kb", status_field("VmHWM")},
              {"cpu_us", cpu_time_us()},
              {"cpu_workers_us", cpu_workers_us()},
              {"heap_bytes", heap_in_use()},
              {"heap_source", heap_source}});
    }

    void accept_clients() {
        for (;;) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    accept_paused_until_ = clock_type::now() + std::chrono::milliseconds(100);
                }
                return;  // EAGAIN, a client that left already, or no room now
            }
            if (clients_.size() >= opt_.max_clients) {
                refuse(fd);
                continue;
            }
            auto c = std::make_unique<client>();
            c->id = ++last_client_id_;
            c->fd = fd;
            clients_.push_back(std::move(c));
        }
    }

    // More clients than --max-clients: an error, then the door. The refusal
    // is one small frame into an empty socket buffer, so it is written whole.
    void refuse(int fd) {
        std::string out;
        greetd_ipc::append_frame(
            out, greetd_ipc::error(false, "too many clients: authd serves " +
                                              std::to_string(opt_.max_clients) + " at once"));
        (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        ++refused_;
        emit({{"event", "refused"}});
    }

    // ---- client I/O ------------------------------------------------------

    void client_io(client& c, short revents) {
        if (c.dead) return;
        if ((revents & POLLERR) != 0) return drop_client(c, "disconnected");
        // A peer that has gone may have left requests behind (agreety sends
        // cancel_session and exits): they are read and handled first.
        if ((revents & (POLLHUP | POLLRDHUP)) != 0) c.peer_done = true;
        if ((revents & POLLOUT) != 0) flush(c);
        // At most a few requests per turn, so one client cannot starve the others.
        for (int handled = 0; !c.dead && !c.busy() && handled < 8; ++handled) {
            read_result r = read_frame(c);
            if (r == read_result::more) break;
            if (r == read_result::eof || r == read_result::failed) {
                return drop_client(c, "disconnected");
            }
            if (r == read_result::too_long) {
                respond(c, greetd_ipc::error(false, "frame longer than 65536 bytes"));
                c.closing = true;
                flush(c);
                return;
            }
            handle_frame(c);
            scrub_stack();
        }
        if (c.peer_done && !c.busy() && !c.dead) {
            // Nothing more will come and nothing is owed: the conversation is over.
            read_result r = read_frame(c);
            if (r == read_result::eof || r == read_result::failed) drop_client(c, "disconnected");
        } else if ((revents & POLLHUP) != 0 && !c.dead && c.waiting) {
            // Gone while waiting for PAM: nobody is left to answer.
            drop_client(c, "disconnected");
        }
    }

    // Reads what the current frame still needs, never past it.
    read_result read_frame(client& c) {
        while (!c.have_length) {
            ssize_t got = ::recv(c.fd, c.header + c.header_got, sizeof c.header - c.header_got, 0);
            if (got == 0) return read_result::eof;
            if (got < 0)
                return errno == EAGAIN || errno == EINTR ? read_result::more : read_result::failed;
            if (c.header_got == 0) c.frame_started = clock_type::now();
            c.header_got += static_cast<std::size_t>(got);
            if (c.header_got < sizeof c.header) continue;
            std::uint32_t length = 0;
            std::memcpy(&length, c.header, sizeof length);
            if (length > greetd_ipc::max_payload) return read_result::too_long;
            auto made = handoff::secure_malloc_array<char>::try_uninitialized(length);
            if (!made) return read_result::failed;
            c.payload = std::move(*made);
            c.payload_got = 0;
            c.have_length = true;
        }
        while (c.payload_got < c.payload.size()) {
            ssize_t got =
                ::recv(c.fd, c.payload.data() + c.payload_got, c.payload.size() - c.payload_got, 0);
            if (got == 0) return read_result::eof;
            if (got < 0)
                return errno == EAGAIN || errno == EINTR ? read_result::more : read_result::failed;
            c.payload_got += static_cast<std::size_t>(got);
        }
        return read_result::frame;
    }

    void handle_frame(client& c) {
        greetd_ipc::parsed p =
            greetd_ipc::parse_request(std::string_view(c.payload.data(), c.payload.size()));
        c.payload.reset();  // wiped: it may have held an answer
        c.have_length = false;
        c.header_got = 0;
        if (!p.value) return respond(c, greetd_ipc::error(false, p.error));
        handle(c, std::move(*p.value));
    }

    void respond(client& c, const std::string& payload) {
        if (c.dead) return;
        greetd_ipc::append_frame(c.out, payload);
        flush(c);
    }

    void flush(client& c) {
        while (!c.out.empty()) {
            ssize_t sent = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                return drop_client(c, "disconnected");
            }
            c.out.erase(0, static_cast<std::size_t>(sent));
        }
        if (c.closing) drop_client(c, "protocol_error");
    }

    // ---- requests (greetd's answers) ---------------------------------------

    void handle(client& c, greetd_ipc::request&& r) {
        using greetd_ipc::request_type;
        std::unique_ptr<session>& s = slot(c);
        switch (r.type) {
        case request_type::create_session:
            if (s)
                return respond(c,
                               greetd_ipc::error(false, "a session is already being configured"));
            return create(c, std::move(r.username));
        case request_type::post_auth_message_response:
            if (!s) return respond(c, greetd_ipc::error(false, "no session under configuration"));
            return answer(c, *s, std::move(r.response));
        case request_type::start_session:
            if (!s) return respond(c, greetd_ipc::error(false, "no session active"));
            if (s->now == session::phase::failed) return tell_failure(c, *s);
            if (s->now == session::phase::starting) {
                return respond(c, greetd_ipc::error(false, "the session is starting"));
            }
            if (s->now != session::phase::ready) {
                // greetd drops a session started before it is ready.
                end_session(s, "not_ready", &c);
                return respond(c, greetd_ipc::error(false, "session is not ready"));
            }
            if (s->process != nullptr) return start_in_worker(c, s, std::move(r));
            emit({{"event", "start_session"},
                  {"username", s->username},
                  {"pam_user", s->result->pam_user},
                  {"cmd", r.cmd},
                  {"env", r.env}});
            end_session(s, nullptr, &c);
            return respond(c, greetd_ipc::success());
        case request_type::cancel_session:
            end_session(s, "cancelled", &c);
            return respond(c, greetd_ipc::success());
        }
    }

    void create(client& c, std::string username) {
        if (transactions() >= opt_.max_sessions) {
            return respond(c, greetd_ipc::error(false, "too many sessions: authd runs " +
                                                           std::to_string(opt_.max_sessions) +
                                                           " PAM transactions at once"));
        }
        if (transactions(c.id) >= per_client_transactions) {
            return respond(c, greetd_ipc::error(false,
                                                "too many sessions of this connection "
                                                "still ending"));
        }
        auto s = std::make_unique<session>();
        s->username = std::move(username);
        s->owner_id = c.id;
        s->tx = start_transaction(opt_, s->username, s->result, &s->process);
        s->waiter = &c;
        c.waiting = true;
        std::unique_ptr<session>& where = slot(c);
        where = std::move(s);
        // A transaction that could not start (no descriptor, no thread) has
        // no descriptor to poll: its failure is the answer now.
        if (where->tx->finished()) channel_news(*where);
    }

    // A failure nobody has heard of yet is told as it is, once; after that a
    // dead session answers as greetd's does.
    void tell_failure(client& c, session& s) {
        if (!s.failure_told) {
            s.failure_told = true;
            return respond(c, s.failure);
        }
        if (s.failure.find("\"auth_error\"") != std::string::npos) return respond(c, s.failure);
        return respond(c, greetd_ipc::error(false, "the session failed: cancel it first"));
    }

    void answer(client& c, session& s, std::optional<handoff::secret_string> response) {
        switch (s.now) {
        case session::phase::failed:
            if (!s.failure_told) return tell_failure(c, s);
            return respond(c, greetd_ipc::error(false, "the session failed: cancel it first"));
        case session::phase::ready:
            return respond(c, greetd_ipc::error(false, "no auth message is pending"));
        case session::phase::running:
        case session::phase::starting:
            return respond(c, greetd_ipc::error(false, "a request of this session is in progress"));
        case session::phase::asking: break;
        }
        const pam::pending_message& m = (*s.call)[s.next];
        if (m.is_prompt()) {
            if (!response) {
                // greetd: no answer to a prompt fails the authentication.
                s.call->refuse();
                return deliver(c, s);
            }
            s.call->answer(s.next, std::move(*response));
            // An answer PAM cannot take (PAM_MAX_RESP_SIZE bytes or more) is
            // bad input like a NUL: an error, and the prompt stays.
            if (pam::failure why = s.call->reply_to(s.next).error(); why != pam::failure::none) {
                return respond(c, greetd_ipc::error(false, std::string("\"response\" refused: ") +
                                                               pam::to_string(why)));
            }
        }
        // Info and error messages need no answer: whatever came is dropped (wiped).
        if (++s.next < s.call->size()) {
            return respond(
                c, greetd_ipc::auth_message((*s.call)[s.next].kind(), (*s.call)[s.next].text()));
        }
        deliver(c, s);
    }

    // The call answered (or refused) goes back to PAM; `c` waits for what follows.
    void deliver(client& c, session& s) {
        bool delivered = s.tx->channel().answer(std::move(*s.call));
        s.call.reset();
        s.now = session::phase::running;
        s.waiter = &c;
        c.waiting = true;
        if (!delivered) {
            // Its time ran out while the client was typing: end it.
            s.timed_out = true;
            s.tx->channel().cancel();
        }
    }

    // ---- news from a PAM transaction --------------------------------------

    // Hands `payload` to the connection waiting for this session, if any.
    void tell_waiter(session& s, const std::string& payload) {
        client* w = s.waiter;
        s.waiter = nullptr;
        if (w == nullptr) return;
        w->waiting = false;
        respond(*w, payload);
    }

    void channel_news(session& s) {
        if (std::optional<pam::pending_call> call = s.tx->channel().pending()) {
            for (const pam::pending_message& m : *call) {
                if (m.kind() == pam::style::binary_prompt) {
                    call->refuse();  // greetd's protocol has no way to carry one
                    s.tx->channel().answer(std::move(*call));
                    return;
                }
            }
            s.call = std::move(call);
            s.next = 0;
            s.now = session::phase::asking;
            tell_waiter(s, greetd_ipc::auth_message((*s.call)[0].kind(), (*s.call)[0].text()));
            return;
        }
        if (s.now == session::phase::asking) {
            // The call being asked went away: the client let it time out.
            s.timed_out = true;
            s.call.reset();
            s.tx->channel().cancel();
            s.now = session::phase::running;
        }
        if (s.process != nullptr && s.now == session::phase::running &&
            s.process->awaiting_session()) {
            // Authenticated: the worker stays, awaiting start_session.
            s.result->from_report(s.process->report());
            return authenticated(s, pam::status());
        }
        if (!s.tx->finished()) return;
        pam::status st = s.tx->result();
        if (s.now == session::phase::ready || s.now == session::phase::starting) {
            return worker_ended(s, st);
        }
        s.result->pam_user = s.tx->pam_user();  // from the worker too
        if (s.process != nullptr) s.result->from_report(s.process->report());
        s.tx.reset();
        s.process = nullptr;
        authenticated(s, st);
    }

    // The end of authentication (`st`): the client hears it, and the record.
    void authenticated(session& s, const pam::status& st) {
        std::string payload;
        const char* outcome = "success";
        if (st.ok()) {
            payload = greetd_ipc::success();
            s.now = session::phase::ready;
        } else {
            const bool system =
                st.code() == PAM_BUF_ERR || st.code() == PAM_SYSTEM_ERR || st.code() == PAM_ABORT;
            const bool timed_out =
                s.timed_out || st.conversation_failure() == pam::failure::timed_out;
            payload = greetd_ipc::error(
                !system, timed_out ? "timed out waiting for an answer" : st.message());
            outcome = system ? "error" : (timed_out ? "timed_out" : "auth_error");
            s.now = session::phase::failed;
            s.failure = payload;
            s.failure_told = s.waiter != nullptr;
        }
        nlohmann::json event = {{"event", "session"},
                                {"username", s.username},
                                {"outcome", outcome},
                                {"pam", st.message()}};
        if (s.result->password_changed) event["password_changed"] = true;
        emit(event);
        ++served_;
        tell_waiter(s, payload);
    }

    // Process isolation: hands start_session to the worker awaiting it; the
    // client hears success once the worker has reported what it received.
    void start_in_worker(client& c, std::unique_ptr<session>& s, greetd_ipc::request&& r) {
        pam::session_request request;
        request.command = std::move(r.cmd);
        request.environment = std::move(r.env);
        if (!s->process->start_session(request)) {
            end_session(s, nullptr, &c);
            return respond(c, greetd_ipc::error(false, "the session's worker is gone"));
        }
        s->now = session::phase::starting;
        s->waiter = &c;
        c.waiting = true;
    }

    // Process isolation: the worker of an authenticated session ended. After
    // start_session its report is the record; before, the session failed.
    void worker_ended(session& s, const pam::status& st) {
        s.result->from_report(s.process->report());
        s.tx.reset();
        s.process = nullptr;
        if (s.now == session::phase::ready) {
            s.now = session::phase::failed;
            s.failure = greetd_ipc::error(false, "the session's worker ended before start_session");
            s.failure_told = false;
            return;
        }
        if (st.ok() && s.result->started) {
            emit({{"event", "start_session"},
                  {"username", s.username},
                  {"pam_user", s.result->pam_user},
                  {"cmd", s.result->cmd},
                  {"env", s.result->env},
                  {"worker", s.result->worker}});
            tell_waiter(s, greetd_ipc::success());
        } else {
            tell_waiter(s, greetd_ipc::error(
                               false, std::string("the session did not start: ") + st.message()));
        }
        if (std::unique_ptr<session>* slot = slot_of(s)) end_session(*slot, nullptr, nullptr);
    }

    // The owner of a session.
    std::unique_ptr<session>* slot_of(const session& s) {
        if (shared_.get() == &s) return &shared_;
        for (auto& c : clients_) {
            if (c->own.get() == &s) return &c->own;
        }
        return nullptr;
    }

    // Ends a session: a transaction still running is cancelled and joined
    // later, when it has finished, so the loop never waits for libpam. A
    // connection other than `by` that waited for it hears that it is gone.
    void end_session(std::unique_ptr<session>& s, const char* why, client* by) {
        if (!s) return;
        if (s->waiter != nullptr && s->waiter != by) {
            tell_waiter(*s, greetd_ipc::error(false, "the session was cancelled"));
        }
        if (s->waiter != nullptr) s->waiter->waiting = false;
        if (s->tx) {
            s->tx->channel().cancel();
            if (s->tx->finished()) {
                s->tx.reset();
            } else {
                ending_.push_back({std::move(s->tx), s->owner_id});
            }
            // Its outcome is this ending (a finished one was reported already,
            // as was an authenticated one whose worker awaits start_session).
            if (why != nullptr &&
                (s->now == session::phase::running || s->now == session::phase::asking)) {
                emit({{"event", "session"}, {"username", s->username}, {"outcome", why}});
                ++served_;
            }
        }
        ended_this_turn_.push_back(s.get());
        s.reset();
    }

    void reap_ending() {
        ending_.erase(std::remove_if(ending_.begin(), ending_.end(),
                                     [](const ending_transaction& e) {
                                         return e.tx->finished();  // the destructor joins
                                     }),
                      ending_.end());
    }

    // A disconnect ends the connection's own session; the shared one stays
    // (greetd's rule), only no longer waited for.
    void drop_client(client& c, const char* why) {
        if (c.dead) return;
        c.dead = true;
        if (c.own) end_session(c.own, why, &c);
        if (shared_ && shared_->waiter == &c) shared_->waiter = nullptr;
        ::close(c.fd);
        handoff::secure_clear(c.out);
        c.payload.reset();
    }

    void shut_down() {
        for (auto& c : clients_) drop_client(*c, "shutdown");
        end_session(shared_, "shutdown", nullptr);
        clients_.clear();
        ending_.clear();  // each destructor has been cancelled already and joins
        ::close(listen_fd_);
        ::unlink(opt_.socket_path.c_str());
    }

    options opt_;
    record_output records_;
    int listen_fd_ = -1;
    bool stopping_ = false;
    clock_type::time_point accept_paused_until_{};
    std::size_t served_ = 0;
    std::size_t refused_ = 0;
    std::size_t last_client_id_ = 0;
    std::unique_ptr<session> shared_;  // the shared model's one session
    std::vector<std::unique_ptr<client>> clients_;
    std::vector<ending_transaction> ending_;
    std::vector<const session*> ended_this_turn_;
};

bool parse_number(const char* text, long low, long high, long& out) {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < low || v > high) return false;
    out = v;
    return true;
}

int run_authd(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "authd: %s needs a value\n%s", argv[i], usage);
                std::exit(2);
            }
            return argv[++i];
        };
        long n = 0;
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage, stdout);
            return 0;
        } else if (arg == "--socket") {
            o.socket_path = value();
        } else if (arg == "--service") {
            o.service = value();
        } else if (arg == "--confdir") {
            o.confdir = value();
        } else if (arg == "--sessions") {
            const std::string_view m = value();
            if (m == "shared") {
                o.model = session_model::shared;
            } else if (m == "per-connection") {
                o.model = session_model::per_connection;
            } else {
                std::fprintf(stderr, "authd: --sessions takes shared or per-connection\n");
                return 2;
            }
        } else if (arg == "--read-timeout") {
            if (!parse_number(value(), 0, 24L * 3600, n)) {
                std::fprintf(stderr, "authd: --read-timeout takes 0 to 86400 seconds\n");
                return 2;
            }
            o.read_timeout_s = n;
        } else if (arg == "--isolation") {
            std::string_view mode = value();
            if (mode != "thread" && mode != "process") {
                std::fprintf(stderr, "authd: --isolation takes thread or process\n");
                return 2;
            }
            o.process_isolation = mode == "process";
        } else if (arg == "--max-clients") {
            if (!parse_number(value(), 1, 4096, n)) {
                std::fprintf(stderr, "authd: --max-clients takes 1 to 4096\n");
                return 2;
            }
            o.max_clients = static_cast<std::size_t>(n);
        } else if (arg == "--answer-timeout") {
            if (!parse_number(value(), 0, 24L * 3600, n)) {
                std::fprintf(stderr, "authd: --answer-timeout takes 0 to 86400 seconds\n");
                return 2;
            }
            o.answer_timeout_s = n;
        } else if (arg == "--max-sessions") {
            if (!parse_number(value(), 1, 4096, n)) {
                std::fprintf(stderr, "authd: --max-sessions takes 1 to 4096\n");
                return 2;
            }
            o.max_sessions = static_cast<std::size_t>(n);
        } else {
            std::fprintf(stderr, "authd: unknown argument %s\n%s", argv[i], usage);
            return 2;
        }
    }
    if (o.socket_path.empty()) {
        std::fprintf(stderr, "authd: --socket PATH is required\n%s", usage);
        return 2;
    }
    if (!install_signals()) {
        std::perror("authd: signals");
        return 1;
    }
    return authd(std::move(o)).run();
}

}  // namespace

int main(int argc, char** argv) {
#if HANDOFF_HAS_EXCEPTIONS
    try {
        return run_authd(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "authd: %s\n", e.what());
        return 1;
    }
#else
    return run_authd(argc, argv);
#endif
}
