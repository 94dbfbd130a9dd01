// The edges of the PAM headers that the other PAM tests pass by: every
// failure's name, replies and statuses at their limits, the scripted handler's
// echo, the terminal on a controlling terminal, under a signal, with an
// unwritable prompt and out of memory, and a transaction whose conversation
// cannot be allocated. Each case states the behaviour the headers promise;
// tools/coverage shows which lines and branches they reach (CONTRIBUTING.md).
//
// This executable replaces the global operator new/delete (to make one
// nothrow allocation fail) and wraps malloc (wrapped_malloc.hpp); both go
// through malloc/free, so the sanitizers and valgrind see matching pairs.
#include <handoff/pam.hpp>
#include <handoff/pam_async.hpp>

#include "../doctest.hpp"
#include "pipe_pair.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wrapped_malloc.hpp"

namespace pam = handoff::pam;
using handoff_test::state;

// libgcov's dump, linked in coverage builds only (tests/pam/meson.build): a
// forked child that ends with _exit writes its counters with it.
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): libgcov's name
extern "C" void __gcov_dump() __attribute__((weak));

// ---------------------------------------------------------------------------
// Global operator new/delete through malloc/free, with one switchable failure
// ---------------------------------------------------------------------------

namespace {
// The n-th next nothrow operator new returns NULL (0: none); counts down.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): operator new has no context
int nothrow_new_fails_in = 0;
}  // namespace

void* operator new(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
#if HANDOFF_HAS_EXCEPTIONS
    if (p == nullptr) throw std::bad_alloc();
#else
    if (p == nullptr) std::abort();
#endif
    return p;
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    if (nothrow_new_fails_in > 0 && --nothrow_new_fails_in == 0) return nullptr;
    return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

// One message as libpam passes it, and the handler's view of it.
struct one_message {
    ::pam_message raw;
    pam::message view;
    one_message(pam::style s, const char* text) : raw{static_cast<int>(s), text}, view(s, &raw) {}
    one_message(const one_message&) = delete;
    one_message& operator=(const one_message&) = delete;
    ~one_message() = default;
};

// Whatever `fn` writes to `fd` (stdout, stderr) while it runs.
template <class Fn>
std::string written_to(int fd, Fn fn) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    static_cast<void>(std::fflush(nullptr));
    int saved = ::dup(fd);
    REQUIRE(saved >= 0);
    REQUIRE(::dup2(fds[1], fd) == fd);
    fn();
    static_cast<void>(std::fflush(nullptr));
    REQUIRE(::dup2(saved, fd) == fd);
    ::close(saved);
    ::close(fds[1]);
    std::string out;
    char buffer[256];
    for (ssize_t n = 0; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
        out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    return out;
}

pam::terminal terminal_reading(int in_fd, int prompt_fd) {
    pam::terminal_options o;
    o.input_fd = in_fd;
    o.prompt_fd = prompt_fd;
    o.timeout_ms = 5000;
    return pam::terminal(o);
}

// The answer a terminal reading `input` gives to one echo-off prompt.
pam::reply answer_from(std::string_view input) {
    pipe_pair in, prompts;
    in.write(input);
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    one_message m(pam::style::prompt_echo_off, "pw: ");
    return t(m.view);
}

}  // namespace

// ---------------------------------------------------------------------------
// Types: failures, messages, replies, statuses
// ---------------------------------------------------------------------------

TEST_CASE("every failure has its own name, and a value outside the enum reads unknown") {
    using pam::failure;
    const failure all[] = {failure::none,
                           failure::bad_message,
                           failure::refused,
                           failure::unanswered_prompt,
                           failure::answer_too_long,
                           failure::answer_has_nul,
                           failure::cancelled,
                           failure::timed_out,
                           failure::input_closed,
                           failure::handler_threw,
                           failure::out_of_memory,
                           failure::reentered,
                           failure::no_conversation,
                           failure::conversation_error,
                           failure::bad_reply};
    for (std::size_t i = 0; i < std::size(all); ++i) {
        std::string_view name = pam::to_string(all[i]);
        CHECK_FALSE(name.empty());
        CHECK(name != "unknown");
        for (std::size_t j = 0; j < i; ++j) CHECK(name != pam::to_string(all[j]));
    }
    CHECK(std::string_view(pam::to_string(static_cast<failure>(200))) == "unknown");
}

TEST_CASE("a message whose text is NULL reads as empty text") {
    one_message m(pam::style::text_info, nullptr);
    CHECK(m.view.text().empty());
    CHECK(m.view.binary() == nullptr);
}

TEST_CASE("a refusal without a reason is a plain refusal") {
    pam::reply r = pam::reply::refuse(pam::failure::none);
    CHECK(r.error() == pam::failure::refused);
    CHECK_FALSE(r.has_answer());
    CHECK(r.text().empty());
}

TEST_CASE("answering with a NULL C string is a refusal") {
    pam::reply r = pam::reply::answer(static_cast<const char*>(nullptr));
    CHECK(r.error() == pam::failure::refused);
    CHECK_FALSE(r.has_answer());
}

TEST_CASE("a secret_string answer of PAM_MAX_RESP_SIZE bytes is refused as too long") {
    auto s = *handoff::secret_string::try_from(std::string(PAM_MAX_RESP_SIZE, 'k'));
    pam::reply r = pam::reply::answer(std::move(s));
    CHECK(r.error() == pam::failure::answer_too_long);
    CHECK_FALSE(r.has_answer());
    auto fits = *handoff::secret_string::try_from(std::string(PAM_MAX_RESP_SIZE - 1, 'k'));
    CHECK(pam::reply::answer(std::move(fits)).has_answer());
}

TEST_CASE("a default status is success with an empty message") {
    pam::status s;
    CHECK(s.ok());
    CHECK(static_cast<bool>(s));
    CHECK(std::string_view(s.message()).empty());
    CHECK(s.conversation_failure() == pam::failure::none);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("check() passes a successful status through") {
    pam::status ok(PAM_SUCCESS, "Success");
    const pam::status& back = pam::check(ok);
    CHECK(&back == &ok);
}
#endif

// ---------------------------------------------------------------------------
// The adapter and the scripted handler
// ---------------------------------------------------------------------------

TEST_CASE("with no place for replies, an answer given to an info message is dropped") {
    handoff_test::reset_state();
    pam::conversation conv([](const pam::message&) { return pam::reply::answer("unasked"); });
    ::pam_message raw{PAM_TEXT_INFO, "note"};
    const ::pam_message* msg[] = {&raw};
    ::pam_conv c = conv.c_conv();
    int code = 0;
    std::size_t live = 1;
    std::size_t wiped_frees = 0;
    {
        wrapped::armed counting;  // no doctest assertion inside: it would be counted
        code = c.conv(1, msg, nullptr, c.appdata_ptr);
        live = state().live_count;
        wiped_frees = state().frees_all_zero;
    }
    CHECK(code == PAM_SUCCESS);
    CHECK(live == 0);         // the answer's copy was freed
    CHECK(wiped_frees == 1);  // and wiped first
}

TEST_CASE("scripted with echo prints info to stdout and errors to stderr") {
    pam::scripted s({}, true);
    one_message info(pam::style::text_info, "to stdout");
    one_message error(pam::style::error_msg, "to stderr");
    CHECK(written_to(STDOUT_FILENO, [&] { CHECK_FALSE(s(info.view).has_answer()); }) ==
          "to stdout\n");
    CHECK(written_to(STDERR_FILENO, [&] { CHECK_FALSE(s(error.view).has_answer()); }) ==
          "to stderr\n");
    CHECK(s.transcript().size() == 2);
}

// ---------------------------------------------------------------------------
// The terminal handler
// ---------------------------------------------------------------------------

TEST_CASE("terminal refuses a binary prompt") {
    pipe_pair in, prompts;
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    static const unsigned char packet[] = {0, 0, 0, 6, 1, 0};
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): pam_message.msg is char*
    one_message m(pam::style::binary_prompt, reinterpret_cast<const char*>(packet));
    pam::reply r = t(m.view);
    CHECK(r.error() == pam::failure::refused);
}

TEST_CASE("terminal ends info lines with exactly one newline") {
    pipe_pair in, prompts;
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    one_message empty(pam::style::text_info, "");
    one_message ended(pam::style::text_info, "done\n");
    one_message bare(pam::style::text_info, "bare");
    CHECK(written_to(STDOUT_FILENO, [&] { t(empty.view); }) == "\n");
    CHECK(written_to(STDOUT_FILENO, [&] { t(ended.view); }) == "done\n");
    CHECK(written_to(STDOUT_FILENO, [&] { t(bare.view); }) == "bare\n");
}

TEST_CASE("terminal takes an empty line as an empty answer and drops a CR before the newline") {
    pam::reply empty = answer_from("\n");
    REQUIRE(empty.has_answer());
    CHECK(empty.text().empty());
    pam::reply crlf = answer_from("typed\r\n");
    REQUIRE(crlf.has_answer());
    CHECK(crlf.text() == "typed");
}

TEST_CASE("terminal still reads the answer when the prompt cannot be written") {
    pipe_pair in;
    in.write("answer\n");
    int read_only = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(read_only >= 0);
    pam::terminal t = terminal_reading(in.read_end, read_only);
    one_message m(pam::style::prompt_echo_on, "q: ");
    pam::reply r = t(m.view);
    ::close(read_only);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "answer");
}

TEST_CASE("terminal out of memory for the answer is out_of_memory, nothing left behind") {
    pipe_pair in, prompts;
    in.write("secret\n");
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    one_message m(pam::style::prompt_echo_off, "pw: ");
    pam::failure why = pam::failure::none;
    bool injected = false;
    std::size_t live = 1;
    {
        wrapped::armed counting(1);  // the answer's first buffer fails
        why = t(m.view).error();
        injected = state().injected;
        live = state().live_count;
    }
    CHECK(injected);
    CHECK(live == 0);
    CHECK(why == pam::failure::out_of_memory);
}

namespace {
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a signal handler's flag
volatile std::sig_atomic_t usr1_seen = 0;
void on_usr1(int) { usr1_seen = 1; }
}  // namespace

TEST_CASE("a signal other than SIGINT during a prompt does not end it") {
    pipe_pair in, prompts;
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = &on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll returns EINTR
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
    usr1_seen = 0;
    static_cast<void>(std::fflush(nullptr));
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // While the parent waits in poll: a signal, then the answer.
        ::usleep(200 * 1000);
        ::kill(::getppid(), SIGUSR1);
        ::usleep(200 * 1000);
        ssize_t n = ::write(in.write_end, "after\n", 6);
        ::_exit(n == 6 ? 0 : 1);
    }
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    one_message m(pam::style::prompt_echo_on, "q: ");
    pam::reply r = t(m.view);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::sigaction(SIGUSR1, &old, nullptr);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(usr1_seen == 1);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "after");
}

TEST_CASE("a signal while the prompt is being written loses neither prompt nor answer") {
    pipe_pair in, prompts;
    // Fill the prompt pipe, so writing the prompt blocks until it is drained.
    int flags = ::fcntl(prompts.write_end, F_GETFL);
    REQUIRE(::fcntl(prompts.write_end, F_SETFL, flags | O_NONBLOCK) == 0);
    std::size_t filled = 0;
    const char block[512] = {};
    for (ssize_t n = 0; (n = ::write(prompts.write_end, block, sizeof block)) > 0;) {
        filled += static_cast<std::size_t>(n);
    }
    REQUIRE(errno == EAGAIN);
    REQUIRE(::fcntl(prompts.write_end, F_SETFL, flags) == 0);
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = &on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: write returns EINTR
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
    usr1_seen = 0;
    static_cast<void>(std::fflush(nullptr));
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // While the parent is blocked writing: a signal, then drain, then answer.
        ::usleep(200 * 1000);
        ::kill(::getppid(), SIGUSR1);
        ::usleep(200 * 1000);
        std::string seen;
        char buffer[4096];
        while (seen.find("q: ") == std::string::npos) {
            ssize_t n = ::read(prompts.read_end, buffer, sizeof buffer);
            if (n <= 0) ::_exit(1);
            seen.append(buffer, static_cast<std::size_t>(n));
        }
        ssize_t n = ::write(in.write_end, "late\n", 5);
        ::_exit(n == 5 && seen.size() == filled + 3 ? 0 : 1);
    }
    pam::terminal t = terminal_reading(in.read_end, prompts.write_end);
    one_message m(pam::style::prompt_echo_on, "q: ");
    pam::reply r = t(m.view);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::sigaction(SIGUSR1, &old, nullptr);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);  // the whole prompt arrived after the signal
    CHECK(usr1_seen == 1);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "late");
}

TEST_CASE("terminal on an input descriptor that is not open is input_closed") {
    pipe_pair prompts;
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ::close(fd);  // fd is now a number no file is open on
    pam::terminal t = terminal_reading(fd, prompts.write_end);
    one_message m(pam::style::prompt_echo_on, "q: ");
    CHECK(t(m.view).error() == pam::failure::input_closed);
}

TEST_CASE("input_source::standard_input reads stdin") {
    pipe_pair in;
    in.write("from stdin\n");
    int saved = ::dup(STDIN_FILENO);
    REQUIRE(saved >= 0);
    REQUIRE(::dup2(in.read_end, STDIN_FILENO) == STDIN_FILENO);
    pam::reply r;
    {
        pam::terminal_options o;
        o.input = pam::terminal_options::input_source::standard_input;
        o.timeout_ms = 5000;
        pipe_pair prompts;
        o.prompt_fd = prompts.write_end;
        pam::terminal t(o);
        one_message m(pam::style::prompt_echo_on, "q: ");
        r = t(m.view);
    }
    REQUIRE(::dup2(saved, STDIN_FILENO) == STDIN_FILENO);
    ::close(saved);
    REQUIRE(r.has_answer());
    CHECK(r.text() == "from stdin");
}

namespace {
// In a new session with a pseudo-terminal as its controlling terminal, answers
// one echo-on prompt with a terminal built from `options`, while the parent
// types a line on the master side (echo on: no TCSAFLUSH discards what was
// typed early). Returns the child's exit status: 0 when the answer was the
// line without its newline, 2 when the setup failed.
int answer_on_controlling_terminal(pam::terminal_options options, bool stdin_is_tty) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    std::string slave_name = ::ptsname(master);
    static_cast<void>(std::fflush(nullptr));
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(master);
        if (::setsid() < 0) ::_exit(2);
        int slave = ::open(slave_name.c_str(), O_RDWR);  // becomes the controlling terminal
        if (slave < 0) ::_exit(2);
        if (stdin_is_tty && ::dup2(slave, STDIN_FILENO) < 0) ::_exit(2);
        int code = 1;
        {
            pam::terminal t(options);
            one_message m(pam::style::prompt_echo_on, "name: ");
            pam::reply r = t(m.view);
            if (r.has_answer() && r.text() == "on the tty") code = 0;
        }
        if (__gcov_dump != nullptr) __gcov_dump();
        ::_exit(code);
    }
    static const char typed[] = "on the tty\n";
    // The child may not have opened the terminal yet: what is typed waits in it.
    CHECK(::write(master, typed, sizeof typed - 1) == static_cast<ssize_t>(sizeof typed - 1));
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::close(master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
}  // namespace

TEST_CASE("input_source::tty, the default, reads the controlling terminal, whatever stdin is") {
    pam::terminal_options o;
    CHECK(o.input == pam::terminal_options::input_source::tty);
    o.timeout_ms = 5000;
    CHECK(answer_on_controlling_terminal(o, false) == 0);
}

TEST_CASE("input_source::automatic reads the controlling terminal when stdin is one") {
    pam::terminal_options o;
    o.input = pam::terminal_options::input_source::automatic;
    o.timeout_ms = 5000;
    CHECK(answer_on_controlling_terminal(o, true) == 0);
}

// ---------------------------------------------------------------------------
// The transaction (real Linux-PAM through pam_wrapper)
// ---------------------------------------------------------------------------

TEST_CASE("a transaction whose conversation cannot be allocated fails with PAM_BUF_ERR") {
    // Valgrind puts its own operator new in place of this file's: then there
    // is no way to make the allocation fail, and the case says so.
    nothrow_new_fails_in = 1;
    void* probe = ::operator new(1, std::nothrow);
    if (probe != nullptr) {
        ::operator delete(probe);
        nothrow_new_fails_in = 0;
        MESSAGE("operator new is not this test's (valgrind?): nothing to check");
        return;
    }
    nothrow_new_fails_in = 1;
    pam::transaction tx("permit", "alice", pam::scripted({}));
    CHECK(nothrow_new_fails_in == 0);
    CHECK(tx.started().code() == PAM_BUF_ERR);
    CHECK(tx.native_handle() == nullptr);
    CHECK(tx.conversation() == nullptr);
    CHECK(tx.authenticate().code() == PAM_BUF_ERR);
    CHECK_FALSE(tx.get_item(pam::item::user).has_value());
    CHECK_FALSE(tx.getenv("HOME").has_value());
    CHECK(tx.getenvlist().get() == nullptr);
}

TEST_CASE("a transaction without a user starts with none, and PAM asks for it later") {
    pam::transaction tx("permit", "", pam::scripted({}));
    REQUIRE(tx.started().ok());
    CHECK_FALSE(tx.get_item(pam::item::user).has_value());
    REQUIRE(tx.set_item(pam::item::user, "alice").ok());
    CHECK(tx.get_item(pam::item::user) == std::optional<std::string_view>("alice"));
}

TEST_CASE("items: unset reads as nothing, an unknown item fails, a NUL in a value is refused") {
    pam::transaction tx("permit", "alice", pam::scripted({}));
    REQUIRE(tx.started().ok());
    CHECK_FALSE(tx.get_item(pam::item::rhost).has_value());
    CHECK_FALSE(tx.get_item(static_cast<pam::item>(999)).has_value());
    pam::status s = tx.set_item(pam::item::rhost, std::string_view("a\0b", 3));
    CHECK(s.code() == PAM_BAD_ITEM);
    CHECK_FALSE(tx.get_item(pam::item::rhost).has_value());
}

TEST_CASE("getenv of a name holding a NUL finds nothing") {
    pam::transaction tx("permit", "alice", pam::scripted({}));
    REQUIRE(tx.putenv("HANDOFF_X=1").ok());
    CHECK_FALSE(tx.getenv(std::string_view("HANDOFF_X\0", 10)).has_value());
    CHECK(tx.getenv("HANDOFF_X") == std::optional<std::string_view>("1"));
}

// ---------------------------------------------------------------------------
// The async handler (pam_async.hpp) without memory or threads
// ---------------------------------------------------------------------------

namespace {
// pthread_create, wrapped (-Wl,--wrap=pthread_create) for this program's own
// calls: the next call fails with this error when it is not 0.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): a wrapped C function's switch
int pthread_create_fails_with = 0;

// This file's operator new, or valgrind's (which never fails): say so and skip.
bool nothrow_new_can_fail() {
    nothrow_new_fails_in = 1;
    void* probe = ::operator new(1, std::nothrow);
    if (probe == nullptr) return true;
    ::operator delete(probe);
    nothrow_new_fails_in = 0;
    MESSAGE("operator new is not this test's (valgrind?): nothing to check");
    return false;
}

pam::status authenticate(pam::transaction& tx) { return tx.authenticate(); }
}  // namespace

extern "C" {
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): the linker's --wrap names
int __real_pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                          void* arg);
int __wrap_pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                          void* arg) {
    if (int rc = std::exchange(pthread_create_fails_with, 0); rc != 0) return rc;
    return __real_pthread_create(thread, attr, start, arg);
}
// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
}

TEST_CASE("an async channel whose state cannot be allocated says ENOMEM and refuses every call") {
    if (!nothrow_new_can_fail()) return;
    nothrow_new_fails_in = 1;
    pam::async_channel channel;
    CHECK(nothrow_new_fails_in == 0);
    CHECK_FALSE(channel.valid());
    CHECK(channel.error() == ENOMEM);
    CHECK(channel.fd() == -1);
    CHECK_FALSE(channel.pending());
    CHECK_FALSE(channel.wait(std::chrono::milliseconds(0)));
    CHECK(channel.cancelled());
    CHECK(channel.closed());
    channel.cancel();
    channel.close();
    channel.set_deadline(std::chrono::steady_clock::now());
    CHECK_FALSE(channel.answer(pam::pending_call()));

    // The PAM side of it, on a thread of its own as libpam would call it.
    pam::conversation<pam::async_handler> conv(channel.handler());
    ::pam_message prompt{PAM_PROMPT_ECHO_OFF, "Password: "};
    const ::pam_message* list[] = {&prompt};
    ::pam_response* resp = nullptr;
    int rc = -1;
    std::thread pam_side([&] {
        ::pam_conv c = conv.c_conv();
        rc = c.conv(1, list, &resp, c.appdata_ptr);
    });
    pam_side.join();
    CHECK(rc == PAM_BUF_ERR);
    CHECK(conv.last_failure() == pam::failure::out_of_memory);
    CHECK(resp == nullptr);
}

TEST_CASE("async_transaction: no memory for its channel's state is PAM_SYSTEM_ERR, no thread") {
    if (!nothrow_new_can_fail()) return;
    nothrow_new_fails_in = 1;
    pam::async_transaction tx("permit", "alice", authenticate);
    CHECK(tx.finished());
    CHECK(tx.result().code() == PAM_SYSTEM_ERR);
    CHECK(tx.result().code() == PAM_SYSTEM_ERR);  // asked again, the same
}

TEST_CASE("async_transaction: no memory for the worker's work is PAM_BUF_ERR, no thread") {
    if (!nothrow_new_can_fail()) return;
    nothrow_new_fails_in = 2;  // the channel's state first, then the work
    pam::async_transaction tx("permit", "alice", authenticate);
    CHECK(nothrow_new_fails_in == 0);
    CHECK(tx.finished());
    CHECK(tx.result().code() == PAM_BUF_ERR);
}

TEST_CASE("async_transaction: no thread to be had is PAM_BUF_ERR (EAGAIN) or PAM_SYSTEM_ERR") {
    for (auto [error, code] : {std::pair{EAGAIN, PAM_BUF_ERR}, std::pair{EPERM, PAM_SYSTEM_ERR}}) {
        pthread_create_fails_with = error;
        pam::async_transaction tx("permit", "alice", authenticate);
        CHECK(pthread_create_fails_with == 0);
        CHECK(tx.finished());
        ::pollfd p{tx.channel().fd(), POLLIN, 0};
        CHECK(::poll(&p, 1, 0) == 1);  // the owner's loop hears of the end
        CHECK(tx.result().code() == code);
    }
}
