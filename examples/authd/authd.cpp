// authd: an authentication daemon that speaks greetd's IPC protocol
// (greetd-ipc(7)), so greetd's greeters (agreety) can log in through it.
//
// One thread runs the event loop: the listening socket, every client, and the
// descriptor of every client's PAM channel. Each create_session starts a
// pam::async_transaction (pam_authenticate, then pam_acct_mgmt) on a worker
// thread of its own; its prompts come back through the channel and go to the
// client one auth_message at a time, as greetd sends them. start_session
// starts nothing: it answers success and records what it would have started.
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

namespace pam = handoff::pam;
using clock_type = std::chrono::steady_clock;

namespace {

const char usage[] =
    "usage: authd --socket PATH [--service NAME] [--confdir DIR]\n"
    "             [--answer-timeout SECONDS] [--max-sessions N]\n"
    "             [--isolation thread|process]\n"
    "\n"
    "An authentication daemon speaking greetd's IPC protocol (greetd-ipc(7)) on a\n"
    "UNIX socket, so greetd's greeters (agreety: GREETD_SOCK=PATH agreety) can log\n"
    "in through it. Each create_session runs pam_authenticate, then pam_acct_mgmt,\n"
    "on a thread of its own; PAM's messages reach the client one auth_message at\n"
    "a time.\n"
    "\n"
    "authd starts nothing: start_session answers success and records the command\n"
    "and environment it would have started as a JSON line on standard output.\n"
    "\n"
    "  --socket PATH            listen here (mode 0600; a stale socket is replaced)\n"
    "  --service NAME           the PAM service of every session (default: login)\n"
    "  --confdir DIR            read PAM service files from DIR (pam_start_confdir)\n"
    "  --answer-timeout SECONDS a prompt unanswered this long fails the session\n"
    "                           (auth_error), and a client that holds no running\n"
    "                           PAM transaction and sends nothing this long is\n"
    "                           disconnected (default 60; 0: never)\n"
    "  --max-sessions N         clients served at once, counting transactions still\n"
    "                           ending; more are refused with an error (default 16)\n"
    "  --isolation process      each session's PAM runs in a worker process of its\n"
    "                           own (pam::process_transaction; the default)\n"
    "  --isolation thread       each session's PAM runs on a thread of authd\n"
    "                           (pam::async_transaction)\n"
    "  -h, --help               this text\n"
    "\n"
    "Bad input gets an error response and the daemon stays up. A frame's payload\n"
    "may hold at most 65536 bytes: a longer one is answered with an error and the\n"
    "connection is closed. Standard output carries one JSON object per line:\n"
    "listening, session (each outcome), start_session, stats (on SIGUSR1), exit.\n"
    "SIGTERM or SIGINT ends every session and exits.\n";

struct options {
    std::string socket_path;
    std::string service = "login";
    std::string confdir;
    long answer_timeout_s = 60;
    std::size_t max_sessions = 16;
    bool process_isolation = true;
};

// ---------------------------------------------------------------------------
// Output: one JSON object per line on standard output
// ---------------------------------------------------------------------------

void emit(const nlohmann::json& event) {
    std::string line = greetd_ipc::dump(event) + "\n";
    // A line lost on a full disk or a closed stdout loses a record, not the daemon.
    static_cast<void>(std::fwrite(line.data(), 1, line.size(), stdout));
    static_cast<void>(std::fflush(stdout));
}

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

// User and system time of every thread so far, and of every worker process reaped.
long long cpu_time_us() {
    rusage ru{}, workers{};
    ::getrusage(RUSAGE_SELF, &ru);
    ::getrusage(RUSAGE_CHILDREN, &workers);
    auto us = [](const timeval& t) {
        return static_cast<long long>(t.tv_sec) * 1000000 + t.tv_usec;
    };
    return us(ru.ru_utime) + us(ru.ru_stime) + us(workers.ru_utime) + us(workers.ru_stime);
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

// What the worker learns that the loop reports: written on the worker, read
// after result() has joined it. Shared with the body, because a transaction
// that is cancelled outlives its session until it has finished (ending_).
struct outcome {
    std::string pam_user;
};

struct session {
    enum class phase {
        running,  // PAM works; the client waits for our response
        asking,   // an auth_message is out; the client owes us an answer
        ready,    // authenticated: start_session may come
        failed,   // failed while the client was not waiting; told at its next request
    };
    std::string username;
    std::shared_ptr<outcome> result = std::make_shared<outcome>();
    std::unique_ptr<pam::hosted_transaction> tx;
    std::optional<pam::pending_call> call;  // the call being asked, message by message
    std::size_t next = 0;                   // the message the client is answering
    phase now = phase::running;
    bool owe_response = true;  // the client waits for our response to its request
    bool timed_out = false;    // the client let a prompt time out
    std::string failure;       // the error payload not yet told (phase::failed)
};

struct client {
    int fd = -1;
    // The frame being read: its 4-byte length, then its payload (wiped when freed).
    unsigned char header[4] = {};
    std::size_t header_got = 0;
    bool have_length = false;
    handoff::secure_malloc_array<char> payload;
    std::size_t payload_got = 0;

    std::string out;         // responses not yet written
    bool closing = false;    // close once `out` is written
    bool peer_done = false;  // the peer shut down its sending side
    bool dead = false;
    clock_type::time_point last_activity = clock_type::now();
    std::unique_ptr<session> s;

    bool busy() const { return closing || !out.empty() || (s && s->owe_response); }
};

enum class read_result { more, frame, eof, failed, too_long };

class authd {
public:
    explicit authd(options o) : opt_(std::move(o)) {}

    int run() {
        if (!listen_on(opt_.socket_path)) return 1;
        emit({{"event", "listening"}, {"socket", opt_.socket_path}, {"pid", ::getpid()}});
        while (!stopping_) {
            loop_once();
        }
        shut_down();
        emit({{"event", "exit"}, {"served", served_}});
        return 0;
    }

private:
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

    // ---- the loop --------------------------------------------------------

    enum class source { signals, listener, client_socket, client_channel, ending };

    void loop_once() {
        std::vector<::pollfd> fds;
        std::vector<std::pair<source, std::size_t>> what;
        fds.push_back({signal_pipe[0], POLLIN, 0});
        what.emplace_back(source::signals, 0);
        // Out of descriptors, the listener is left alone for a moment rather
        // than reported readable again and again.
        if (clock_type::now() >= accept_paused_until_) {
            fds.push_back({listen_fd_, POLLIN, 0});
            what.emplace_back(source::listener, 0);
        }
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            client& c = *clients_[i];
            short events = 0;
            if (!c.busy()) events |= POLLIN;
            if (!c.out.empty()) events |= POLLOUT;
            if (!c.peer_done) events |= POLLRDHUP;
            fds.push_back({c.fd, events, 0});
            what.emplace_back(source::client_socket, i);
            if (c.s && c.s->tx &&
                (c.s->now == session::phase::running || c.s->now == session::phase::asking)) {
                fds.push_back({c.s->tx->channel().fd(), POLLIN, 0});
                what.emplace_back(source::client_channel, i);
            }
        }
        for (std::size_t i = 0; i < ending_.size(); ++i) {
            fds.push_back({ending_[i]->channel().fd(), POLLIN, 0});
            what.emplace_back(source::ending, i);
        }

        const int n = ::poll(fds.data(), fds.size(), poll_timeout_ms());
        if (n < 0 && errno != EINTR) {
            report("poll");
            stopping_ = true;
            return;
        }
        for (std::size_t k = 0; n > 0 && k < fds.size(); ++k) {
            if (fds[k].revents == 0) continue;
            const auto [src, i] = what[k];
            switch (src) {
            case source::signals: read_signals(); break;
            case source::listener: accept_clients(); break;
            case source::client_socket: client_io(*clients_[i], fds[k].revents); break;
            case source::client_channel:
                if (!clients_[i]->dead && clients_[i]->s) channel_news(*clients_[i]);
                break;
            case source::ending: break;  // reaped below
            }
        }
        reap_ending();
        expire_idle();
        clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                      [](const std::unique_ptr<client>& c) { return c->dead; }),
                       clients_.end());
    }

    int poll_timeout_ms() const {
        auto soonest = clock_type::time_point::max();
        if (accept_paused_until_ > clock_type::now()) soonest = accept_paused_until_;
        if (opt_.answer_timeout_s > 0) {
            const auto limit = std::chrono::seconds(opt_.answer_timeout_s);
            for (const auto& c : clients_) {
                if (idle_counts(*c)) soonest = std::min(soonest, c->last_activity + limit);
            }
        }
        if (soonest == clock_type::time_point::max()) return -1;
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(soonest - clock_type::now());
        return static_cast<int>(std::clamp<long long>(left.count() + 1, 0, 60LL * 60 * 1000));
    }

    // A client counts as idle while no PAM transaction of its runs.
    static bool idle_counts(const client& c) {
        return !c.s || c.s->now == session::phase::ready || c.s->now == session::phase::failed;
    }

    void expire_idle() {
        if (opt_.answer_timeout_s <= 0) return;
        const auto now = clock_type::now();
        const auto limit = std::chrono::seconds(opt_.answer_timeout_s);
        for (auto& c : clients_) {
            if (!c->dead && idle_counts(*c) && now - c->last_activity >= limit) {
                drop_client(*c, "idle");
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
        for (const auto& c : clients_) sessions += c->s ? 1U : 0U;
        emit({{"event", "stats"},
              {"clients", clients_.size()},
              {"sessions", sessions},
              {"ending", ending_.size()},
              {"served", served_},
              {"threads", status_field("Threads")},
              {"rss_kb", status_field("VmRSS")},
              {"rss_peak_kb", status_field("VmHWM")},
              {"cpu_us", cpu_time_us()},
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
            if (clients_.size() + ending_.size() >= opt_.max_sessions) {
                refuse(fd);
                continue;
            }
            auto c = std::make_unique<client>();
            c->fd = fd;
            clients_.push_back(std::move(c));
        }
    }

    // More clients than --max-sessions: an error, then the door. The refusal
    // is one small frame into an empty socket buffer, so it is written whole.
    void refuse(int fd) {
        std::string out;
        greetd_ipc::append_frame(
            out, greetd_ipc::error(false, "too many sessions: authd serves " +
                                              std::to_string(opt_.max_sessions) + " at once"));
        (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        emit({{"event", "refused"}});
    }

    // ---- client I/O ------------------------------------------------------

    void client_io(client& c, short revents) {
        if (c.dead) return;
        if ((revents & (POLLHUP | POLLERR)) != 0) return drop_client(c, "disconnected");
        if ((revents & POLLRDHUP) != 0) c.peer_done = true;
        if ((revents & POLLOUT) != 0) flush(c);
        // At most a few requests per turn, so one client cannot starve the others.
        for (int handled = 0; !c.dead && !c.busy() && handled < 8; ++handled) {
            read_result r = read_frame(c);
            if (r == read_result::more) break;
            if (r == read_result::eof || r == read_result::failed) {
                return drop_client(c, "disconnected");
            }
            c.last_activity = clock_type::now();
            if (r == read_result::too_long) {
                respond(c, greetd_ipc::error(false, "frame longer than 65536 bytes"));
                c.closing = true;
                flush(c);
                return;
            }
            handle_frame(c);
        }
        if (c.peer_done && !c.busy() && !c.dead) {
            // Nothing more will come and nothing is owed: the conversation is over.
            read_result r = read_frame(c);
            if (r == read_result::eof || r == read_result::failed) drop_client(c, "disconnected");
        }
    }

    // Reads what the current frame still needs, never past it.
    read_result read_frame(client& c) {
        while (!c.have_length) {
            ssize_t got = ::recv(c.fd, c.header + c.header_got, sizeof c.header - c.header_got, 0);
            if (got == 0) return read_result::eof;
            if (got < 0)
                return errno == EAGAIN || errno == EINTR ? read_result::more : read_result::failed;
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
        greetd_ipc::append_frame(c.out, payload);
        c.last_activity = clock_type::now();
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

    // ---- requests --------------------------------------------------------

    void handle(client& c, greetd_ipc::request&& r) {
        using greetd_ipc::request_type;
        session* s = c.s.get();
        // A failure the client has not heard of answers its next request.
        if (s != nullptr && s->now == session::phase::failed &&
            r.type != request_type::cancel_session) {
            std::string told = std::move(s->failure);
            end_session(c, nullptr);
            return respond(c, told);
        }
        switch (r.type) {
        case request_type::create_session:
            if (s != nullptr) {
                return respond(c,
                               greetd_ipc::error(false, "a session is already being configured"));
            }
            return start_session_for(c, std::move(r.username));
        case request_type::post_auth_message_response:
            if (s == nullptr)
                return respond(c, greetd_ipc::error(false, "no session under configuration"));
            if (s->now != session::phase::asking) {
                return respond(c, greetd_ipc::error(false, "no auth message is pending"));
            }
            return answer(c, *s, std::move(r.response));
        case request_type::start_session:
            if (s == nullptr)
                return respond(c, greetd_ipc::error(false, "no session under configuration"));
            if (s->now != session::phase::ready) {
                return respond(c, greetd_ipc::error(false, "the session is not ready"));
            }
            emit({{"event", "start_session"},
                  {"username", s->username},
                  {"pam_user", s->result->pam_user},
                  {"cmd", r.cmd},
                  {"env", r.env}});
            end_session(c, nullptr);
            return respond(c, greetd_ipc::success());
        case request_type::cancel_session:
            if (s != nullptr) end_session(c, "cancelled");
            return respond(c, greetd_ipc::success());
        }
    }

    void start_session_for(client& c, std::string username) {
        auto s = std::make_unique<session>();
        s->username = std::move(username);
        pam::async_options ao;
        if (opt_.answer_timeout_s > 0)
            ao.answer_timeout = std::chrono::seconds(opt_.answer_timeout_s);
        pam::start_options so;
        so.confdir = opt_.confdir;
        auto body = [out = s->result](pam::transaction& tx) {
            pam::status st = tx.authenticate();
            if (st) st = tx.acct_mgmt();
            if (st) out->pam_user = std::string(tx.get_item(pam::item::user).value_or(""));
            return st;
        };
        if (opt_.process_isolation) {
            pam::process_options po;  // a module silent that long is killed
            if (opt_.answer_timeout_s > 0) po.silence_limit = ao.answer_timeout;
            s->tx = std::make_unique<pam::process_transaction>(opt_.service, s->username, body, ao,
                                                               so, po);
        } else {
            s->tx =
                std::make_unique<pam::async_transaction>(opt_.service, s->username, body, ao, so);
        }
        c.s = std::move(s);
        // A transaction that could not start (no descriptor, no thread) has
        // no descriptor to poll: its failure is the answer now.
        if (c.s->tx->finished()) channel_news(c);
    }

    void answer(client& c, session& s, std::optional<handoff::secret_string> response) {
        const pam::pending_message& m = (*s.call)[s.next];
        if (m.is_prompt()) {
            if (!response) {
                return respond(c, greetd_ipc::error(false, "this auth message needs a response"));
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
        bool delivered = s.tx->channel().answer(std::move(*s.call));
        s.call.reset();
        s.now = session::phase::running;
        s.owe_response = true;
        if (!delivered) {
            // Its time ran out while the client was typing: end it.
            s.timed_out = true;
            s.tx->channel().cancel();
        }
    }

    // ---- news from a PAM transaction --------------------------------------

    void channel_news(client& c) {
        session& s = *c.s;
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
            if (s.owe_response) {
                s.owe_response = false;
                respond(c, greetd_ipc::auth_message((*s.call)[0].kind(), (*s.call)[0].text()));
            }
            return;
        }
        if (s.now == session::phase::asking) {
            // The call being asked went away: the client let it time out.
            s.timed_out = true;
            s.call.reset();
            s.tx->channel().cancel();
            s.now = session::phase::running;
        }
        if (!s.tx->finished()) return;
        pam::status st = s.tx->result();
        s.result->pam_user = s.tx->pam_user();  // from the worker too
        s.tx.reset();
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
        }
        emit({{"event", "session"},
              {"username", s.username},
              {"outcome", outcome},
              {"pam", st.message()}});
        ++served_;
        c.last_activity = clock_type::now();  // the idle clock starts when PAM is done
        if (!s.owe_response) {
            if (s.now == session::phase::failed) s.failure = std::move(payload);
            return;  // told at the client's next request
        }
        s.owe_response = false;
        if (s.now == session::phase::failed) end_session(c, nullptr);
        respond(c, payload);
    }

    // Ends the client's session: a transaction still running is cancelled and
    // joined later, when it has finished, so the loop never waits for libpam.
    void end_session(client& c, const char* why) {
        if (!c.s) return;
        if (c.s->tx) {
            c.s->tx->channel().cancel();
            if (c.s->tx->finished()) {
                c.s->tx.reset();
            } else {
                ending_.push_back(std::move(c.s->tx));
            }
            // Its outcome is this ending (a finished one was reported already).
            if (why != nullptr) {
                emit({{"event", "session"}, {"username", c.s->username}, {"outcome", why}});
                ++served_;
            }
        }
        c.s.reset();
    }

    void reap_ending() {
        ending_.erase(std::remove_if(ending_.begin(), ending_.end(),
                                     [](const std::unique_ptr<pam::hosted_transaction>& tx) {
                                         return tx->finished();  // the destructor joins
                                     }),
                      ending_.end());
    }

    void drop_client(client& c, const char* why) {
        if (c.dead) return;
        end_session(c, why);
        ::close(c.fd);
        handoff::secure_clear(c.out);
        c.payload.reset();
        c.dead = true;
    }

    void shut_down() {
        for (auto& c : clients_) drop_client(*c, "shutdown");
        clients_.clear();
        ending_.clear();  // each destructor has been cancelled already and joins
        ::close(listen_fd_);
        ::unlink(opt_.socket_path.c_str());
    }

    options opt_;
    int listen_fd_ = -1;
    bool stopping_ = false;
    clock_type::time_point accept_paused_until_{};
    std::size_t served_ = 0;
    std::vector<std::unique_ptr<client>> clients_;
    std::vector<std::unique_ptr<pam::hosted_transaction>> ending_;
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
        } else if (arg == "--isolation") {
            std::string_view mode = value();
            if (mode != "thread" && mode != "process") {
                std::fprintf(stderr, "authd: --isolation takes thread or process\n");
                return 2;
            }
            o.process_isolation = mode == "process";
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
