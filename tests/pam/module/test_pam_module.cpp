// The module side of handoff::pam against the real Linux-PAM (through
// pam_wrapper): the module-side conversation called directly on a real handle
// with applications that misbehave in every way pam_conv(3) allows, the demo
// module under those applications, module data ownership, the exception
// barrier, items, arguments and constant_time_equal.
//
// Both headers in one translation unit: the application side and the module
// side share their types and clash on no name.
#include <handoff/pam.hpp>
#include <handoff/pam_module.hpp>

#include "../../doctest.hpp"
#include "../wrapped_malloc.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HANDOFF_TEST_MEMCHECK 1
#endif
#endif
#ifndef HANDOFF_TEST_MEMCHECK
#define HANDOFF_TEST_MEMCHECK 0
#endif

namespace pam = handoff::pam;

namespace {

// ---------------------------------------------------------------------------
// An application whose conversation does what it is told, right or wrong.
// ---------------------------------------------------------------------------

enum class act {
    answer,                // answers prompts (answers in order), nothing for messages
    success_null_array,    // PAM_SUCCESS and *resp left NULL
    null_answer,           // an array, but the prompts' slots are NULL
    long_answer,           // every prompt answered with `long_size` bytes of 'x'
    retcode,               // right answers, but resp_retcode = 1 in the last slot
    conv_err_after_write,  // right answers written to *resp, then PAM_CONV_ERR
    buf_err_after_write,   // the same with PAM_BUF_ERR
    odd_code_after_write,  // the same with PAM_AUTH_ERR, not a conversation code
    conv_again,            // PAM_CONV_AGAIN, nothing written
    answer_info_too,       // right answers, and info/error messages answered with their text
    unterminated,          // every slot (prompts and messages) a block of `long_size` 'x', no NUL
};

// A malloc'ed copy made in this executable, so the counting malloc sees it.
char* copy_string(const char* text) {
    const std::size_t n = std::strlen(text) + 1;
    char* out = static_cast<char*>(std::malloc(n));
    if (out != nullptr) std::memcpy(out, text, n);
    return out;
}

struct seen_message {
    int style;
    std::string text;
};

struct application {
    act what = act::answer;
    // Hostile: removes what this name holds (pam_set_data(h, name, NULL,
    // NULL), which libpam allows while a module runs) before answering.
    ::pam_handle_t* pamh = nullptr;
    std::string remove_name;
    std::vector<std::string> answers;
    std::size_t long_size = 0;
    // What the conversation saw.
    int calls = 0;
    bool resp_was_null = false;
    std::vector<std::vector<seen_message>> batches;
    std::size_t next = 0;

    char* next_answer() {
        if (what == act::unterminated) {
            char* a = static_cast<char*>(std::malloc(long_size));
            // All of the block glibc gives, so no NUL hides in its slack.
            if (a != nullptr) std::memset(a, 'x', ::malloc_usable_size(a));
            return a;
        }
        if (what == act::long_answer) {
            char* a = static_cast<char*>(std::malloc(long_size + 1));
            if (a == nullptr) return nullptr;
            std::memset(a, 'x', long_size);
            a[long_size] = '\0';
            return a;
        }
        if (next >= answers.size()) return nullptr;
        return copy_string(answers[next++].c_str());
    }

    static int conv(int n, const ::pam_message** msg, ::pam_response** resp, void* data) {
        auto* self = static_cast<application*>(data);
        ++self->calls;
        self->resp_was_null = resp == nullptr;
        std::vector<seen_message> batch;
        batch.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) batch.push_back({msg[i]->msg_style, msg[i]->msg});
        self->batches.push_back(batch);
        if (!self->remove_name.empty()) {
            (void)::pam_set_data(self->pamh, self->remove_name.c_str(), nullptr, nullptr);
        }
        if (self->what == act::success_null_array) return PAM_SUCCESS;
        if (self->what == act::conv_again) return PAM_CONV_AGAIN;
        if (resp == nullptr) return PAM_CONV_ERR;
        auto* r = static_cast<::pam_response*>(
            std::calloc(static_cast<std::size_t>(n), sizeof(::pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        for (int i = 0; i < n; ++i) {
            const int s = msg[i]->msg_style;
            const bool prompt = s == PAM_PROMPT_ECHO_OFF || s == PAM_PROMPT_ECHO_ON;
            if (prompt && self->what != act::null_answer) r[i].resp = self->next_answer();
            if (!prompt && self->what == act::answer_info_too) r[i].resp = copy_string(msg[i]->msg);
            if (!prompt && self->what == act::unterminated) r[i].resp = self->next_answer();
        }
        if (self->what == act::retcode) r[n - 1].resp_retcode = 1;
        *resp = r;
        switch (self->what) {
        case act::conv_err_after_write: return PAM_CONV_ERR;
        case act::buf_err_after_write: return PAM_BUF_ERR;
        case act::odd_code_after_write: return PAM_AUTH_ERR;
        default: return PAM_SUCCESS;
        }
    }
};

// A raw pam_start / pam_end pair, so tests can see what pam_end returns.
class handle {
public:
    handle(const char* service, application& app, const char* user = "alice") {
        ::pam_conv c{&application::conv, &app};
        started_ = ::pam_start(service, user, &c, &pamh_);
    }
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() {
        if (pamh_ != nullptr) (void)end(PAM_SUCCESS);
    }
    int started() const { return started_; }
    ::pam_handle_t* get() const { return pamh_; }
    int end(int last) { return ::pam_end(std::exchange(pamh_, nullptr), last); }
    int authenticate(const char* mode = nullptr, int flags = 0) {
        if (mode != nullptr) REQUIRE(::pam_set_item(pamh_, PAM_RUSER, mode) == PAM_SUCCESS);
        return ::pam_authenticate(pamh_, flags);
    }

private:
    ::pam_handle_t* pamh_ = nullptr;
    int started_ = PAM_SYSTEM_ERR;
};

// The probe module's reports (see pam_handoff_probe.cpp), read from a pipe.
class probe_events {
public:
    probe_events() {
        REQUIRE(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) == 0);
        REQUIRE(::setenv("HANDOFF_PROBE_FD", std::to_string(fds_[1]).c_str(), 1) == 0);
    }
    probe_events(const probe_events&) = delete;
    probe_events& operator=(const probe_events&) = delete;
    ~probe_events() {
        ::unsetenv("HANDOFF_PROBE_FD");
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    // Everything reported since the last call, one entry per line.
    std::vector<std::string> take() {
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(fds_[0], buf, sizeof buf)) > 0)
            pending_.append(buf, static_cast<std::size_t>(n));
        std::vector<std::string> lines;
        std::size_t start = 0;
        std::size_t nl = pending_.find('\n');
        while (nl != std::string::npos) {
            lines.push_back(pending_.substr(start, nl - start));
            start = nl + 1;
            nl = pending_.find('\n', start);
        }
        pending_.erase(0, start);
        return lines;
    }

private:
    int fds_[2] = {-1, -1};
    std::string pending_;
};

using lines = std::vector<std::string>;

// Captures what is written to stderr (where pam_wrapper prints pam_syslog
// lines) while alive.
class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()) {
        REQUIRE(std::fflush(stderr) == 0);
        REQUIRE(file_ != nullptr);
        saved_ = ::dup(2);
        REQUIRE(::dup2(::fileno(file_), 2) == 2);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    ~stderr_capture() {
        restore();
        if (file_ != nullptr) (void)std::fclose(file_);  // read-only use: nothing to lose
    }
    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        char buf[512];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
        return out;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        (void)std::fflush(stderr);  // stderr is unbuffered: nothing is pending
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------
// The module-side conversation, called on a real handle from this process
// (pam_get_item(PAM_CONV) works for the application too). This executable's
// malloc/free are counted, so every answer is seen freed and wiped.
// ---------------------------------------------------------------------------

struct converse_case {
    act what;
    std::size_t long_size;
    int code;
    pam::failure why;
};

pam::responses info_and_prompt(::pam_handle_t* pamh) {
    return pam::module_handle(pamh).try_converse(
        {pam::outgoing::info("hello"), pam::outgoing::prompt("Code: ")});
}

}  // namespace

TEST_SUITE_BEGIN("module conversation");

TEST_CASE("a well-behaved application's answers are read where the prompts were") {
    application app;
    app.answers = {"first", "second"};
    handle h("probe", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    {
        wrapped::armed count;
        {
            pam::responses r = pam::module_handle(h.get()).try_converse(
                {pam::outgoing::info("one"), pam::outgoing::prompt("on: ", pam::echo::on),
                 pam::outgoing::error("two"), pam::outgoing::prompt("off: ")});
            REQUIRE(r.ok());
            CHECK(r.code() == PAM_SUCCESS);
            CHECK(r.conversation_failure() == pam::failure::none);
            CHECK(r.size() == 4);
            CHECK_FALSE(r.has_answer(0));
            CHECK(r.text(1) == "first");
            CHECK(std::strcmp(r.c_str(3), "second") == 0);
            CHECK_FALSE(r.has_answer(2));
            CHECK(r.text(17).empty());  // out of range reads as no answer
            CHECK(r.c_str(17) == nullptr);
        }
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees == 3);          // two answers and the array
        CHECK(wrapped::state().frees_nonzero == 0);  // every byte wiped first
    }
    REQUIRE(app.batches.size() == 1);  // one call for all four messages
    const std::vector<seen_message>& b = app.batches[0];
    REQUIRE(b.size() == 4);
    CHECK(b[0].style == PAM_TEXT_INFO);
    CHECK(b[1].style == PAM_PROMPT_ECHO_ON);
    CHECK(b[2].style == PAM_ERROR_MSG);
    CHECK(b[3].style == PAM_PROMPT_ECHO_OFF);
    CHECK(b[3].text == "off: ");
}

TEST_CASE("every misbehaviour of the application gives its documented code and frees all") {
    const converse_case cases[] = {
        {act::success_null_array, 0, PAM_CONV_ERR, pam::failure::bad_reply},
        {act::null_answer, 0, PAM_CONV_ERR, pam::failure::unanswered_prompt},
        {act::long_answer, PAM_MAX_RESP_SIZE, PAM_CONV_ERR, pam::failure::answer_too_long},
        {act::long_answer, std::size_t{64} * 1024, PAM_CONV_ERR, pam::failure::answer_too_long},
        {act::retcode, 0, PAM_CONV_ERR, pam::failure::bad_reply},
        {act::conv_err_after_write, 0, PAM_CONV_ERR, pam::failure::conversation_error},
        {act::buf_err_after_write, 0, PAM_BUF_ERR, pam::failure::out_of_memory},
        {act::odd_code_after_write, 0, PAM_CONV_ERR, pam::failure::conversation_error},
        // A module returns PAM_INCOMPLETE then, never PAM_CONV_AGAIN.
        {act::conv_again, 0, PAM_INCOMPLETE, pam::failure::conversation_error},
    };
    for (const converse_case& c : cases) {
        CAPTURE(static_cast<int>(c.what));
        CAPTURE(c.long_size);
        application app;
        app.what = c.what;
        app.long_size = c.long_size;
        app.answers = {"1234"};
        handle h("probe", app);
        REQUIRE(h.started() == PAM_SUCCESS);
        wrapped::armed count;
        {
            pam::responses r = info_and_prompt(h.get());
            CHECK_FALSE(r.ok());
            CHECK(r.code() == c.code);
            CHECK(r.conversation_failure() == c.why);
            CHECK(r.size() == 0);
            CHECK_FALSE(r.has_answer(1));
            CHECK(std::string(r.status().message()) == ::pam_strerror(h.get(), c.code));
        }
        CHECK(app.calls == 1);
        CHECK_FALSE(app.resp_was_null);
        // Whatever the application allocated is gone, and no answer was freed unwiped.
        CHECK(wrapped::state().live_count == 0);
        // The array too: owns_response_text leaves each released element
        // all zero, a resp_retcode the application set included.
        CHECK(wrapped::state().frees_nonzero == 0);
    }
}

TEST_CASE("an answer with no NUL is refused and wiped within its block, never past it") {
    // A hostile application: 600 bytes (longer than any answer) or 100 bytes
    // (shorter) of 'x' and no NUL, for the prompt and the info message alike.
    // valgrind and ASan report any byte read or wiped past the block.
    for (std::size_t size : {std::size_t{600}, std::size_t{100}}) {
        CAPTURE(size);
        application app;
        app.what = act::unterminated;
        app.long_size = size;
        handle h("probe", app);
        REQUIRE(h.started() == PAM_SUCCESS);
        wrapped::armed count;
        {
            pam::responses r = info_and_prompt(h.get());
            CHECK(r.code() == PAM_CONV_ERR);
            CHECK(r.conversation_failure() == (size > PAM_MAX_RESP_SIZE
                                                   ? pam::failure::answer_too_long
                                                   : pam::failure::bad_reply));
        }
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);  // both blocks wiped whole
    }
}

TEST_CASE("an answer of PAM_MAX_RESP_SIZE - 1 bytes is the longest accepted") {
    application app;
    app.what = act::long_answer;
    app.long_size = PAM_MAX_RESP_SIZE - 1;
    handle h("probe", app);
    pam::responses r = info_and_prompt(h.get());
    REQUIRE(r.ok());
    CHECK(r.text(1).size() == PAM_MAX_RESP_SIZE - 1);
}

TEST_CASE("answers to info messages are wiped and freed at once and read as none") {
    application app;
    app.what = act::answer_info_too;
    app.answers = {"1234"};
    handle h("probe", app);
    wrapped::armed count;
    {
        pam::responses r = info_and_prompt(h.get());
        REQUIRE(r.ok());
        CHECK_FALSE(r.has_answer(0));
        CHECK(r.text(1) == "1234");
        CHECK(wrapped::state().frees == 1);  // the info's answer, before anyone reads it
        CHECK(wrapped::state().frees_nonzero == 0);
    }
    CHECK(wrapped::state().live_count == 0);
}

TEST_CASE("success with no array is fine when nothing needed an answer") {
    application app;
    app.what = act::success_null_array;
    handle h("probe", app);
    pam::module_handle m(h.get());
    pam::responses r = m.try_converse({pam::outgoing::info("a"), pam::outgoing::error("b")});
    CHECK(r.ok());
    CHECK(r.size() == 2);
    CHECK_FALSE(r.has_answer(0));
    CHECK(m.try_send_info("c").ok());
    CHECK(m.try_send_error("d").ok());
    CHECK_FALSE(app.resp_was_null);  // a reply slot is passed even for messages only
}

TEST_CASE("the module's own mistakes are refused before the application is called") {
    application app;
    handle h("probe", app);
    pam::module_handle m(h.get());
    std::vector<pam::outgoing> too_many(PAM_MAX_NUM_MSG + 1, pam::outgoing::info("x"));
    const pam::responses refused[] = {
        m.try_converse(nullptr, 1),
        m.try_converse(too_many.data(), 0),
        m.try_converse(too_many.data(), too_many.size()),
        m.try_converse({pam::outgoing::info(static_cast<const char*>(nullptr))}),
        m.try_prompt(nullptr),
    };
    for (const pam::responses& r : refused) {
        CHECK(r.code() == PAM_CONV_ERR);
        CHECK(r.conversation_failure() == pam::failure::bad_message);
    }
    CHECK(app.calls == 0);
    // PAM_MAX_NUM_MSG messages are allowed.
    CHECK(m.try_converse(too_many.data(), PAM_MAX_NUM_MSG).ok());
    CHECK(app.calls == 1);
}

TEST_CASE("no conversation function is no_conversation, not a crash") {
    application app;
    handle h("probe", app);
    ::pam_conv none{nullptr, nullptr};
    REQUIRE(::pam_set_item(h.get(), PAM_CONV, &none) == PAM_SUCCESS);
    pam::responses r = pam::module_handle(h.get()).try_prompt("Code: ");
    CHECK(r.code() == PAM_CONV_ERR);
    CHECK(r.conversation_failure() == pam::failure::no_conversation);
}

TEST_CASE("take() moves an answer out; it stays a wiped secret") {
    application app;
    app.answers = {"keep-me"};
    handle h("probe", app);
    wrapped::armed count;
    {
        handoff::secure_c_string<> kept;
        {
            pam::responses r = pam::module_handle(h.get()).try_prompt("Code: ");
            REQUIRE(r.ok());
            kept = r.take(0);
            CHECK_FALSE(r.has_answer(0));
            CHECK(r.take(5) == nullptr);
        }
        REQUIRE(kept != nullptr);
        CHECK(std::string_view(kept.get()) == "keep-me");
        CHECK(wrapped::state().live_count == 1);
    }
    CHECK(wrapped::state().live_count == 0);
    CHECK(wrapped::state().frees_nonzero == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing forms throw pam::error with the code and the reason") {
    application app;
    app.what = act::null_answer;
    handle h("probe", app);
    pam::module_handle m(h.get());
    try {
        (void)m.prompt("Code: ");
        FAIL("prompt did not throw");
    } catch (const pam::error& e) {
        CHECK(e.code() == PAM_CONV_ERR);
        CHECK(e.conversation_failure() == pam::failure::unanswered_prompt);
    }
    CHECK_THROWS_AS(m.send_info(nullptr), pam::error);
    app.what = act::answer;
    app.answers = {"ok"};
    CHECK(m.converse({pam::outgoing::prompt("x")}).text(0) == "ok");
}

TEST_CASE("the throwing forms return what the application answered when the call succeeds") {
    application app;
    app.answers = {"typed", "second"};
    handle h("probe", app);
    pam::module_handle m(h.get());
    CHECK(m.prompt("Code: ", pam::echo::on).text(0) == "typed");
    const pam::outgoing two[] = {pam::outgoing::info("i"), pam::outgoing::prompt("p")};
    CHECK(m.converse(two, 2).text(1) == "second");
    CHECK_NOTHROW(m.send_info("for your information"));
    CHECK_NOTHROW(m.send_error("an error message"));
    REQUIRE(app.batches.size() == 4);
    CHECK(app.batches[0][0].style == PAM_PROMPT_ECHO_ON);
    CHECK(app.batches[2][0].style == PAM_TEXT_INFO);
    CHECK(app.batches[3][0].style == PAM_ERROR_MSG);
    CHECK(app.batches[3][0].text == "an error message");
}
#endif

TEST_SUITE_END();

// ---------------------------------------------------------------------------
// The demo module (examples/pam_module) under the same applications.
// ---------------------------------------------------------------------------

TEST_SUITE_BEGIN("demo module");

TEST_CASE("the demo sends one info message and the Code: prompt in one call") {
    application app;
    app.answers = {"1234"};
    handle h("demo", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate() == PAM_SUCCESS);
    REQUIRE(app.batches.size() == 1);
    REQUIRE(app.batches[0].size() == 2);
    CHECK(app.batches[0][0].style == PAM_TEXT_INFO);
    CHECK(app.batches[0][0].text == "Enter the code.");
    CHECK(app.batches[0][1].style == PAM_PROMPT_ECHO_OFF);
    CHECK(app.batches[0][1].text == "Code: ");
    CHECK(::pam_setcred(h.get(), PAM_ESTABLISH_CRED) == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
}

TEST_CASE("the demo refuses a wrong code, a longer one and a prefix") {
    for (const char* wrong : {"9999", "12345", "123", ""}) {
        CAPTURE(wrong);
        application app;
        app.answers = {wrong};
        handle h("demo", app);
        CHECK(h.authenticate() == PAM_AUTH_ERR);
        CHECK(h.end(PAM_AUTH_ERR) == PAM_SUCCESS);
    }
}

TEST_CASE("the demo needs a non-empty code= argument") {
    for (const char* service : {"demo_noarg", "demo_empty"}) {
        CAPTURE(service);
        application app;
        app.answers = {""};
        handle h(service, app);
        stderr_capture log;
        CHECK(h.authenticate() == PAM_SERVICE_ERR);
        CHECK(contains(log.text(), "no code= argument in the service file"));
        CHECK(app.calls == 0);
        CHECK(h.end(PAM_SERVICE_ERR) == PAM_SUCCESS);
    }
}

TEST_CASE("failed attempts are counted in module data and shown on the next attempt") {
    application app;
    app.answers = {"1", "22", "1234", "333"};
    handle h("demo", app);
    CHECK(h.authenticate() == PAM_AUTH_ERR);
    CHECK(h.authenticate() == PAM_AUTH_ERR);
    CHECK(h.authenticate() == PAM_SUCCESS);
    CHECK(h.authenticate() == PAM_AUTH_ERR);
    REQUIRE(app.batches.size() == 4);
    CHECK(app.batches[0][0].text == "Enter the code.");
    CHECK(app.batches[1][0].text == "1 failed attempt so far.");
    CHECK(app.batches[2][0].text == "2 failed attempts so far.");
    CHECK(app.batches[3][0].text == "2 failed attempts so far.");
    CHECK(h.end(PAM_AUTH_ERR) == PAM_SUCCESS);  // and the counter is freed (leak checkers)

    application fresh;  // a new transaction starts from zero
    fresh.answers = {"1234"};
    handle h2("demo", fresh);
    CHECK(h2.authenticate() == PAM_SUCCESS);
    CHECK(fresh.batches[0][0].text == "Enter the code.");
}

TEST_CASE("the count shows through handoff's own application side too") {
    pam::scripted script({"0000", "1234"});
    {
        pam::transaction tx("demo", "alice", std::ref(script));
        REQUIRE(tx.started());
        CHECK(tx.authenticate().code() == PAM_AUTH_ERR);
        CHECK(tx.authenticate().ok());
    }
    REQUIRE(script.transcript().size() == 2);
    CHECK(script.transcript()[1] == "1 failed attempt so far.");
}

TEST_CASE("a misbehaving application gets PAM_CONV_ERR from the demo, which leaks nothing") {
    const converse_case cases[] = {
        {act::success_null_array, 0, 0, {}},
        {act::null_answer, 0, 0, {}},
        {act::long_answer, PAM_MAX_RESP_SIZE, 0, {}},
        {act::long_answer, std::size_t{64} * 1024, 0, {}},
        {act::retcode, 0, 0, {}},
        {act::conv_err_after_write, 0, 0, {}},
        {act::buf_err_after_write, 0, 0, {}},
        {act::odd_code_after_write, 0, 0, {}},
        {act::unterminated, 600, 0, {}},
        {act::unterminated, 100, 0, {}},
    };
    for (const converse_case& c : cases) {
        CAPTURE(static_cast<int>(c.what));
        CAPTURE(c.long_size);
        application app;
        app.what = c.what;
        app.long_size = c.long_size;
        app.answers = {"1234"};  // the right code, where an answer is given at all
        handle h("demo", app);
        REQUIRE(h.started() == PAM_SUCCESS);
        // The module frees with libc's free, which this executable does not
        // count: glibc's heap statistics catch a leaked 64 KiB answer, and the
        // sanitizer and valgrind builds check every byte.
        const std::size_t before = ::mallinfo2().uordblks;
        CHECK(h.authenticate() == PAM_CONV_ERR);
        const std::size_t after = ::mallinfo2().uordblks;
        CHECK(after < before + 4096);
        CHECK(app.calls == 1);
        CHECK(h.end(PAM_CONV_ERR) == PAM_SUCCESS);
    }
}

TEST_CASE("the demo frees an answer to its info message and still authenticates") {
    application app;
    app.what = act::answer_info_too;  // libpamtest's conversation does this
    app.answers = {"1234"};
    handle h("demo", app);
    CHECK(h.authenticate() == PAM_SUCCESS);
}

TEST_SUITE_END();

// ---------------------------------------------------------------------------
// Module data: the probe module stores owners; its reports say when they go.
// ---------------------------------------------------------------------------

TEST_SUITE_BEGIN("module data");

TEST_CASE("stored data lives until pam_end and its deleter runs exactly once there") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("store") == PAM_SUCCESS);
    CHECK(events.take().empty());
    CHECK(h.authenticate("read_A") == PAM_SUCCESS);  // another call, same transaction
    CHECK(events.take().empty());
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(events.take() == lines{"destroyed A"});
}

TEST_CASE("stored data reads back at once, typed") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("store_then_read") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(events.take() == lines{"destroyed A"});
}

TEST_CASE("a new transaction has no data") {
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("read_nothing") == PAM_SUCCESS);
}

TEST_CASE("setting a name again runs the old deleter then, and the new one at pam_end") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("replace") == PAM_SUCCESS);
    CHECK(events.take() == lines{"replacing", "destroyed A", "replaced"});
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(events.take() == lines{"destroyed B"});
}

TEST_CASE("removing, or setting an empty owner, runs the deleter at once") {
    for (const char* mode : {"remove", "empty_owner"}) {
        CAPTURE(mode);
        probe_events events;
        application app;
        handle h("probe", app);
        CHECK(h.authenticate(mode) == PAM_SUCCESS);
        const lines expected = std::string(mode) == "remove"
                                   ? lines{"removing", "destroyed A", "removed"}
                                   : lines{"emptying", "destroyed A", "emptied"};
        CHECK(events.take() == expected);
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
        CHECK(events.take().empty());
    }
}

TEST_CASE("another type under the same name is refused, not misread") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("wrong_type") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(events.take() == lines{"destroyed A"});
}

TEST_CASE("a data_key whose char array holds no NUL is refused, not read past") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("key_without_nul") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    // The refused objects were freed by try_set_data.
    CHECK(events.take() == lines{"destroyed K", "destroyed K"});
}

TEST_CASE("data stored through the C API is not handed out as a typed object") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("foreign") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(events.take() == lines{"foreign cleanup"});
}

namespace {
// The name the demo keeps its counter under (pam_module.hpp, section 5): the
// key's name, "\x1fhandoff:" and the address of the demo's tag for its type,
// found as an attacker in the process would: the symbol's offset in the
// module's symbol table plus the address the module is loaded at.
std::string demo_data_name() {
    const char* path = std::getenv("HANDOFF_DEMO_MODULE");
    REQUIRE(path != nullptr);
    void* loaded = ::dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    REQUIRE(loaded != nullptr);
    ::link_map* map = nullptr;
    REQUIRE(::dlinfo(loaded, RTLD_DI_LINKMAP, static_cast<void*>(&map)) == 0);
    const std::uintptr_t base = map->l_addr;
    ::dlclose(loaded);
    const std::string command = std::string("nm --defined-only ") + path;
    // NOLINTNEXTLINE(cert-env33-c): the test runs nm, as an attacker would, on a path of its own
    std::FILE* nm = ::popen(command.c_str(), "r");
    REQUIRE(nm != nullptr);
    std::uintptr_t offset = 0;
    char line[512];
    while (std::fgets(line, sizeof line, nm) != nullptr) {
        const std::string_view l(line);
        if (l.find("data_tag") != std::string_view::npos &&
            l.find("attempts") != std::string_view::npos) {
            offset = std::strtoull(line, nullptr, 16);
        }
    }
    (void)::pclose(nm);
    REQUIRE(offset != 0);
    char name[128];
    (void)std::snprintf(name, sizeof name, "pam_handoff_demo.attempts\x1fhandoff:%016jx",
                        static_cast<std::uintmax_t>(base + offset));
    return name;
}
}  // namespace

TEST_CASE("a conversation that removes the demo's data: no pointer kept across it (ASan)") {
    // demo_retry: the demo is optional, so each wrong code still ends in
    // success and the next authenticate runs in the same transaction.
    application app;
    app.answers = {"0000", "0000", "0000"};
    handle h("demo_retry", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate() == PAM_SUCCESS);  // one failure counted
    app.pamh = h.get();
    app.remove_name = demo_data_name();
    // The counter is freed inside the conversation; a demo that kept its
    // pointer across it would now write into freed memory.
    CHECK(h.authenticate() == PAM_SUCCESS);
    app.remove_name.clear();
    CHECK(h.authenticate() == PAM_SUCCESS);
    REQUIRE(app.batches.size() == 3);
    CHECK(app.batches[1][0].text == "1 failed attempt so far.");
    // Counted again from the failure after the removal.
    CHECK(app.batches[2][0].text == "1 failed attempt so far.");
}

TEST_CASE(
    "the demo refuses a code= of PAM_MAX_RESP_SIZE bytes before prompting, and never logs it") {
    application app;
    app.answers = {"1234"};
    stderr_capture log;  // pam_wrapper prints pam_syslog lines on stderr
    handle h("demo_code_too_long", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate() == PAM_SERVICE_ERR);
    CHECK(app.calls == 0);
    const std::string text = log.text();
    CHECK(contains(text, "code= has 512 bytes"));
    CHECK_FALSE(contains(text, "xxxxxxxx"));
}

namespace {
struct delay_seen {
    int calls = 0;
    int status = PAM_SUCCESS;
    unsigned usec = 0;
};
// libpam's delay function has no context of its own.
delay_seen last_delay;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
void record_delay(int status, unsigned usec, void*) {
    ++last_delay.calls;
    last_delay.status = status;
    last_delay.usec = usec;
}
}  // namespace

TEST_CASE("the demo asks libpam for a fail delay after a wrong code") {
    application app;
    app.answers = {"9999", "1234"};
    handle h("demo_delay", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    using delay_fn = void (*)(int, unsigned, void*);
    const delay_fn fn = &record_delay;
    // libpam takes the delay function as the item's void*.
    // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast)
    REQUIRE(::pam_set_item(h.get(), PAM_FAIL_DELAY, reinterpret_cast<const void*>(fn)) ==
            PAM_SUCCESS);
    // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
    last_delay = {};
    CHECK(h.authenticate() == PAM_AUTH_ERR);
    CHECK(last_delay.calls == 1);
    CHECK(last_delay.status == PAM_AUTH_ERR);
    // 2 s by default; libpam scales it by a random factor in 0.5 .. 1.5 (the
    // mean of three draws, pam_delay.c).
    CHECK(last_delay.usec >= 1000000u);
    CHECK(last_delay.usec <= 3000000u);
    last_delay = {};
    CHECK(h.authenticate() == PAM_SUCCESS);
    CHECK(last_delay.status == PAM_SUCCESS);  // a success is not delayed
}

TEST_CASE("the demo listed twice in a stack counts each line's failures apart") {
    // Both lines are optional, so each authenticate asks both codes.
    application app;
    app.answers = {"0000", "5678", "1234", "0000", "1234", "5678"};
    handle h("demo_twice", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate() == PAM_SUCCESS);  // line 1 fails, line 2 passes
    CHECK(h.authenticate() == PAM_SUCCESS);  // line 1 passes, line 2 fails
    CHECK(h.authenticate() == PAM_SUCCESS);
    REQUIRE(app.batches.size() == 6);
    const char* const shown[] = {"Enter the code.",          "Enter the code.",
                                 "1 failed attempt so far.", "Enter the code.",
                                 "1 failed attempt so far.", "1 failed attempt so far."};
    for (std::size_t i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(app.batches[i][0].text == shown[i]);
    }
}

TEST_CASE("try_send_info/try_send_error with the flags send nothing under PAM_SILENT") {
    std::vector<const char*> modes = {"send_with_flags"};
#if HANDOFF_HAS_EXCEPTIONS
    modes.push_back("send_with_flags_throwing");
#endif
    for (const char* mode : modes) {
        CAPTURE(mode);
        application app;
        handle h("probe", app);
        REQUIRE(h.started() == PAM_SUCCESS);
        CHECK(h.authenticate(mode, PAM_SILENT) == PAM_SUCCESS);
        CHECK(app.calls == 0);
        CHECK(h.authenticate(mode, 0) == PAM_SUCCESS);
        REQUIRE(app.batches.size() == 2);
        CHECK(app.batches[0][0].style == PAM_TEXT_INFO);
        CHECK(app.batches[1][0].style == PAM_ERROR_MSG);
        app.what = act::conv_err_after_write;  // a failed message stops the body
        CHECK(h.authenticate(mode, 0) == PAM_CONV_ERR);
    }
}

TEST_CASE("the demo under PAM_SILENT sends the prompt alone") {
    application app;
    app.answers = {"1234"};
    handle h("demo", app);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate(nullptr, PAM_SILENT) == PAM_SUCCESS);
    REQUIRE(app.batches.size() == 1);
    REQUIRE(app.batches[0].size() == 1);
    CHECK(app.batches[0][0].style == PAM_PROMPT_ECHO_OFF);
}

TEST_CASE(
    "PAM_CONV_AGAIN from the application: pam_authenticate returns PAM_INCOMPLETE, then resumes") {
    // Through real libpam: the demo and the README's module return what the
    // library maps the reply to; libpam then resumes the stack at the module.
    for (const char* service : {"demo", "readme"}) {
        CAPTURE(service);
        application app;
        app.what = act::conv_again;
        handle h(service, app);
        REQUIRE(h.started() == PAM_SUCCESS);
        CHECK(h.authenticate() == PAM_INCOMPLETE);  // not 30 (PAM_CONV_AGAIN)
        app.what = act::answer;
        app.answers = {service == std::string_view("demo") ? "1234" : "4321"};
        CHECK(h.authenticate() == PAM_SUCCESS);
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    }
}

TEST_CASE("PAM_CONV_AGAIN while libpam asks for the user: try_user's code is PAM_INCOMPLETE") {
    // pam_get_user passes PAM_CONV_AGAIN (30) up; a module must not.
    application app;
    app.what = act::conv_again;
    handle h("probe", app, nullptr);
    REQUIRE(h.started() == PAM_SUCCESS);
    CHECK(h.authenticate("user_code") == PAM_INCOMPLETE);
    app.what = act::answer;
    app.answers = {"alice"};
    CHECK(h.authenticate("user_code") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
}

TEST_CASE("what a C module stores under a key's name is never read: a small integer, one byte") {
    // pam_set_data(h, name, (void*)1, NULL), and a 1-byte allocation, under
    // the probe's name and the demo's, then get_data in the probe and in the
    // demo further down the stack (service planted_demo). Under ASan a read
    // of the one byte's neighbours is a heap-buffer-overflow; the integer, a
    // SIGSEGV anywhere.
    for (const char* mode : {"plant_tiny", "plant_byte"}) {
        CAPTURE(mode);
        application app;
        app.answers = {"1234"};
        handle h("planted_demo", app);
        REQUIRE(h.started() == PAM_SUCCESS);
        CHECK(h.authenticate(mode) == PAM_SUCCESS);
        REQUIRE(app.batches.size() == 1);
        REQUIRE(app.batches[0].size() == 2);
        CHECK(app.batches[0][0].text == "Enter the code.");  // no count read from the byte
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    }
}

TEST_CASE("the same type stored by another module is that module's, not handed out here") {
    application app;
    handle h("probe_twin", app);
    CHECK(h.authenticate("twin") == PAM_SUCCESS);  // the twin got nullptr
}

TEST_CASE("owners of every kind: c_unique_ptr, a deleter-only domain, a stateful deleter") {
    probe_events events;
    {
        application app;
        handle h("probe", app);
        CHECK(h.authenticate("c_unique") == PAM_SUCCESS);  // free(3) at pam_end
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    }
    {
        application app;
        handle h("probe", app);
        CHECK(h.authenticate("deleter_domain") == PAM_SUCCESS);
        CHECK(events.take().empty());
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
        CHECK(events.take() == lines{"c_object_free"});
    }
    {
        application app;
        handle h("probe", app);
        CHECK(h.authenticate("stateful_deleter") == PAM_SUCCESS);
        CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
        CHECK(events.take() == lines{"deleter S", "destroyed S"});
    }
}

namespace {
struct local_counted {
    explicit local_counted(int* d) noexcept : destroyed(d) {}
    local_counted(const local_counted&) = delete;
    local_counted& operator=(const local_counted&) = delete;
    ~local_counted() { ++*destroyed; }
    int* destroyed;
};
constexpr pam::data_key<local_counted> local_key{"test.local"};
}  // namespace

TEST_CASE(
    "a deleter taking data_cleanup sees pam_end's status, PAM_DATA_SILENT and PAM_DATA_REPLACE") {
    application app;
    probe_events events;
    {
        handle h("probe", app);
        CHECK(h.authenticate("status_deleter") == PAM_SUCCESS);
        CHECK(events.take().empty());
        CHECK(h.end(PAM_AUTH_ERR | PAM_DATA_SILENT) == PAM_SUCCESS);
        CHECK(events.take() ==
              lines{"cleanup replaced=0 silent=1 status=" + std::to_string(PAM_AUTH_ERR),
                    "destroyed S"});
    }
    {
        handle h("probe", app);
        CHECK(h.authenticate("status_deleter_replaced") == PAM_SUCCESS);
        CHECK(events.take() == lines{"cleanup replaced=1 silent=0 status=0", "destroyed S"});
    }
    constexpr pam::data_cleanup c(PAM_DATA_REPLACE | PAM_DATA_SILENT | PAM_BUF_ERR);
    static_assert(c.replaced() && c.silent() && c.status() == PAM_BUF_ERR &&
                  c.raw() == (PAM_DATA_REPLACE | PAM_DATA_SILENT | PAM_BUF_ERR));
}

TEST_CASE("when pam_set_data fails the object is freed before try_set_data returns") {
    // libpam refuses pam_set_data from the application: PAM_SYSTEM_ERR.
    application app;
    handle h("probe", app);
    pam::module_handle m(h.get());
    int destroyed = 0;
    pam::status s = m.try_set_data(local_key, std::make_unique<local_counted>(&destroyed));
    CHECK(s.code() == PAM_SYSTEM_ERR);
    CHECK(destroyed == 1);
    CHECK(m.get_data(local_key) == nullptr);  // pam_get_data refuses the application too
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    CHECK(destroyed == 1);  // and libpam never had it
}

TEST_CASE("when the box cannot be allocated the object is freed and the code is PAM_BUF_ERR") {
    application app;
    handle h("probe", app);
    pam::module_handle m(h.get());
    int destroyed = 0;
    auto owner = std::make_unique<local_counted>(&destroyed);
    {
        wrapped::armed fail_first(1);
        CHECK(m.try_set_data(local_key, std::move(owner)).code() == PAM_BUF_ERR);
        CHECK(wrapped::state().injected);
    }
    CHECK(destroyed == 1);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("set_data throws pam::error after freeing the object") {
    application app;
    handle h("probe", app);
    int destroyed = 0;
    try {
        pam::module_handle(h.get()).set_data(local_key,
                                             std::make_unique<local_counted>(&destroyed));
        FAIL("set_data did not throw");
    } catch (const pam::error& e) {
        CHECK(e.code() == PAM_SYSTEM_ERR);
    }
    CHECK(destroyed == 1);
}
#endif

TEST_SUITE_END();

// ---------------------------------------------------------------------------
// The exception barrier: what a body throws becomes a PAM code and a log line.
// ---------------------------------------------------------------------------

TEST_SUITE_BEGIN("entry points");

TEST_CASE("a body's return value is the entry point's; an unknown mode is PAM_SERVICE_ERR") {
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("no such mode") == PAM_SERVICE_ERR);
    CHECK(h.end(PAM_SERVICE_ERR) == PAM_SUCCESS);
    handle h2("probe", app);
    CHECK(::pam_setcred(h2.get(), PAM_ESTABLISH_CRED) == PAM_SUCCESS);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("what a body throws becomes the documented code and pam_end still succeeds") {
    struct thrown {
        const char* mode;
        int code;
        const char* logged;
    };
    const thrown table[] = {
        {"throw:bad_alloc", PAM_BUF_ERR, "pam_sm_authenticate: std::bad_alloc"},
        {"throw:pam_error", PAM_CRED_INSUFFICIENT, "pam_sm_authenticate: probe: insufficient"},
        {"throw:pam_error_success", PAM_SERVICE_ERR, "pam_sm_authenticate: probe: success?"},
        {"throw:pam_error_ignore", PAM_SERVICE_ERR, "pam_sm_authenticate: probe: ignore?"},
        {"throw:system_error", PAM_SYSTEM_ERR, "pam_sm_authenticate: probe: disk"},
        {"throw:runtime_error", PAM_SERVICE_ERR, "pam_sm_authenticate: probe: runtime error"},
        {"throw:int", PAM_SERVICE_ERR, "pam_sm_authenticate: an exception that is not"},
    };
    for (const thrown& t : table) {
        CAPTURE(t.mode);
        application app;
        handle h("probe", app);
        stderr_capture log;
        CHECK(h.authenticate(t.mode) == t.code);
        CHECK(contains(log.text(), t.logged));
        CHECK(h.end(t.code) == PAM_SUCCESS);
    }
}

TEST_CASE("data set before the body threw is still freed once, at pam_end") {
    probe_events events;
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("throw:after_set_data") == PAM_SERVICE_ERR);
    CHECK(events.take().empty());
    CHECK(h.end(PAM_SERVICE_ERR) == PAM_SUCCESS);
    CHECK(events.take() == lines{"destroyed T"});
}

TEST_CASE("a throwing conversation form ends the body with the conversation's code") {
    application app;
    app.what = act::retcode;
    app.answers = {"x"};
    handle h("probe", app);
    CHECK(h.authenticate("throw:conversation") == PAM_CONV_ERR);
    app.what = act::conv_again;
    CHECK(h.authenticate("throw:conversation") == PAM_INCOMPLETE);
    CHECK(h.end(PAM_CONV_ERR) == PAM_SUCCESS);
}
#endif

TEST_CASE("an entry point called with a NULL handle returns PAM_SYSTEM_ERR, body not run") {
    const char* path = std::getenv("HANDOFF_PROBE_MODULE");
    REQUIRE(path != nullptr);
    void* module = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(module != nullptr);
    using entry = int (*)(::pam_handle_t*, int, int, const char**);
    void* symbol = ::dlsym(module, "pam_sm_authenticate");
    REQUIRE(symbol != nullptr);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): dlsym's void*, as POSIX says
    auto authenticate = reinterpret_cast<entry>(symbol);
    const char* argv[] = {"x"};
    CHECK(authenticate(nullptr, 0, 1, argv) == PAM_SYSTEM_ERR);
    CHECK(::dlclose(module) == 0);
}

TEST_CASE("the flags libpam passes reach the body named") {
    application app;
    probe_events events;
    handle h("probe", app);
    CHECK(h.authenticate("flags", PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) == PAM_SUCCESS);
    CHECK(events.take() == lines{"silent", "disallow null"});
    CHECK(h.authenticate("flags", 0) == PAM_SUCCESS);
    CHECK(events.take() == lines{"not silent", "null allowed"});
}

TEST_CASE("module_flags names each bit an entry point can receive") {
    constexpr pam::module_flags none;
    static_assert(none.bits() == 0 && !none.silent() && !none.has(0));
    constexpr pam::module_flags chauthtok(PAM_SILENT | PAM_UPDATE_AUTHTOK |
                                          PAM_CHANGE_EXPIRED_AUTHTOK);
    static_assert(chauthtok.silent() && chauthtok.update_authtok() &&
                  chauthtok.change_expired_authtok() && !chauthtok.prelim_check());
    static_assert(pam::module_flags(PAM_PRELIM_CHECK).prelim_check());
    static_assert(pam::module_flags(PAM_DISALLOW_NULL_AUTHTOK).disallow_null_authtok());
    constexpr pam::module_flags cred(PAM_ESTABLISH_CRED);
    static_assert(cred.establish_cred() && !cred.delete_cred() && !cred.reinitialize_cred() &&
                  !cred.refresh_cred());
    static_assert(pam::module_flags(PAM_DELETE_CRED).delete_cred());
    static_assert(pam::module_flags(PAM_REINITIALIZE_CRED).reinitialize_cred());
    static_assert(pam::module_flags(PAM_REFRESH_CRED).refresh_cred());
    // has() wants every bit of its argument.
    static_assert(!pam::module_flags(PAM_ESTABLISH_CRED).has(PAM_ESTABLISH_CRED | PAM_SILENT));
    // A runtime value, so the coverage build sees the accessors run too.
    volatile int bits = PAM_SILENT | PAM_REFRESH_CRED;
    const pam::module_flags f(bits);
    CHECK(f.silent());
    CHECK(f.refresh_cred());
    CHECK_FALSE(f.delete_cred());
    CHECK_FALSE(f.establish_cred());
    CHECK_FALSE(f.reinitialize_cred());
    CHECK_FALSE(f.prelim_check());
    CHECK_FALSE(f.update_authtok());
    CHECK_FALSE(f.change_expired_authtok());
    CHECK_FALSE(f.disallow_null_authtok());
    CHECK(static_cast<int>(f) == (PAM_SILENT | PAM_REFRESH_CRED));
}

TEST_CASE("module_arguments survive a NULL argv, a negative argc and NULL entries") {
    CHECK(pam::module_arguments(3, nullptr).empty());
    const char* argv[] = {"a=1", nullptr, "b"};
    CHECK(pam::module_arguments(-1, argv).empty());
    pam::module_arguments args(3, argv);
    REQUIRE(args.size() == 3);
    CHECK(args[1].empty());
    CHECK(args.value("a") == std::optional<std::string_view>("1"));
    CHECK(args.has("b"));
    CHECK_FALSE(args.has("a"));
    std::size_t seen = 0;
    for (std::string_view a : args) seen += a.size();
    CHECK(seen == 4);
    CHECK(pam::module_arguments().empty());
}

TEST_CASE("module arguments: flags, key=value, first wins, empty values, brackets") {
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("args") == PAM_SUCCESS);
}

TEST_CASE("user, items and the authentication token, as libpam lends them") {
    application app;
    handle h("probe", app);
    CHECK(h.authenticate("items") == PAM_SUCCESS);
}

TEST_CASE("an authentication token asked through libpam's prompt") {
    application app;
    app.answers = {"typed-token"};
    handle h("probe", app);
    CHECK(h.authenticate("authtok_prompt") == PAM_SUCCESS);
    REQUIRE(app.batches.size() == 1);
    CHECK(app.batches[0][0].text == "Token: ");
}

TEST_CASE("a user libpam cannot get is no string, with libpam's code and message") {
    application app;
    app.what = act::null_answer;  // the prompt for the user name gets no answer
    handle h("probe", app, nullptr);
    REQUIRE(h.started() == PAM_SUCCESS);
    pam::module_handle m(h.get());
    const pam::libpam_string user = m.try_user("Login: ");
    CHECK_FALSE(user);
    CHECK_FALSE(user.ok());
    CHECK(user.code() == PAM_CONV_ERR);
    CHECK(std::string(user.status().message()) == ::pam_strerror(h.get(), PAM_CONV_ERR));
    CHECK(user.c_str() == nullptr);
    CHECK(user.view().empty());
    REQUIRE(app.batches.size() == 1);
    CHECK(app.batches[0][0].style == PAM_PROMPT_ECHO_ON);
    CHECK(app.batches[0][0].text == "Login: ");
#if HANDOFF_HAS_EXCEPTIONS
    try {
        (void)m.user("Login: ");
        FAIL("user() did not throw");
    } catch (const pam::error& e) {
        CHECK(e.code() == PAM_CONV_ERR);
    }
    CHECK(app.batches.size() == 1);  // libpam keeps the failure: no second prompt
    application answering;
    answering.answers = {"bob"};
    handle h2("probe", answering, nullptr);
    pam::module_handle m2(h2.get());
    CHECK(m2.user("Login: ") == "bob");
    CHECK(m2.user() == "bob");  // set now: not asked again
    CHECK(answering.batches.size() == 1);
#endif
}

TEST_CASE("the authentication tokens are hidden from the application: get_item reads nullopt") {
    application app;
    handle h("probe", app);
    const void* raw = nullptr;
    REQUIRE(::pam_get_item(h.get(), PAM_AUTHTOK, &raw) == PAM_BAD_ITEM);
    pam::module_handle m(h.get());
    CHECK_FALSE(m.get_item(pam::module_item::authtok).has_value());
    CHECK_FALSE(m.get_item(pam::module_item::oldauthtok).has_value());
    CHECK(m.get_item(pam::item::user) == std::optional<std::string_view>("alice"));
}

TEST_CASE("set_item reports PAM_BUF_ERR when its copy cannot be allocated, item unchanged") {
    application app;
    handle h("probe", app);
    pam::module_handle m(h.get());
    REQUIRE(m.try_set_item(pam::item::tty, "pts/1").ok());
    {
        wrapped::armed fail_first(1);
        CHECK(m.try_set_item(pam::item::tty, "pts/2").code() == PAM_BUF_ERR);
        CHECK(wrapped::state().injected);
    }
    CHECK(m.get_item(pam::item::tty) == std::optional<std::string_view>("pts/1"));
    CHECK(m.try_clear_item(pam::item::tty).ok());
    CHECK_FALSE(m.get_item(pam::item::tty).has_value());
}

TEST_CASE("an authentication token libpam cannot get is no string, with libpam's code") {
    application app;
    app.what = act::null_answer;  // libpam's prompt for the token gets no answer
    handle h("probe", app);
    // pam_get_authtok(3) turns a failed prompt into PAM_AUTHTOK_ERR.
    CHECK(h.authenticate("authtok_refused") == PAM_AUTHTOK_ERR);
    REQUIRE(app.batches.size() == 2);
    CHECK(app.batches[0][0].text == "Token: ");
    CHECK(app.batches[1][0].text == "Old token: ");
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing token and item forms return the value or carry libpam's code") {
    application app;
    app.answers = {"typed-token", "typed-token"};
    handle h("probe", app);
    CHECK(h.authenticate("throw:authtok") == PAM_SUCCESS);
    CHECK(h.authenticate("throw:old_authtok") == PAM_SUCCESS);
    CHECK(h.authenticate("throw:set_items") == PAM_SUCCESS);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
    application silent;
    silent.what = act::null_answer;
    handle h2("probe", silent);
    CHECK(h2.authenticate("throw:authtok") == PAM_AUTHTOK_ERR);
    CHECK(h2.authenticate("throw:old_authtok") == PAM_AUTHTOK_ERR);
    CHECK(h2.end(PAM_AUTHTOK_ERR) == PAM_SUCCESS);
}

TEST_CASE("guarded() names an unnamed entry point \"pam module\" in the log") {
    application app;
    handle h("probe", app);
    stderr_capture log;
    const int code =
        pam::guarded(h.get(), nullptr, []() -> int { throw std::runtime_error("unnamed"); });
    CHECK(code == PAM_SERVICE_ERR);
    CHECK(contains(log.text(), "pam module: unnamed"));
    CHECK(pam::guarded(h.get(), nullptr, [] { return PAM_IGNORE; }) == PAM_IGNORE);
}
#endif

TEST_CASE("log() goes to pam_syslog") {
    application app;
    handle h("probe", app);
    stderr_capture log;
    CHECK(h.authenticate("log") == PAM_SUCCESS);
    CHECK(contains(log.text(), "probe says hello 42"));
}

TEST_CASE("a module's conversation through libpam: answers and codes") {
    application app;
    app.answers = {"first", "second"};
    handle h("probe", app);
    CHECK(h.authenticate("converse") == PAM_SUCCESS);
    app.what = act::null_answer;
    CHECK(h.authenticate("converse_code") == PAM_CONV_ERR);
    app.what = act::buf_err_after_write;
    CHECK(h.authenticate("converse_code") == PAM_BUF_ERR);
    app.what = act::success_null_array;
    CHECK(h.authenticate("send_info") == PAM_SUCCESS);
    CHECK_FALSE(app.resp_was_null);
    CHECK(h.end(PAM_SUCCESS) == PAM_SUCCESS);
}

TEST_SUITE_END();

// Run on its own (see meson.build): the cancelled call leaves libpam's handle
// mid-call, which pam_end then refuses, so the handle is not freed.
TEST_CASE("thread cancellation passes through the barrier instead of aborting" *
          doctest::skip(std::getenv("HANDOFF_TEST_FORCED_UNWIND") == nullptr)) {
    struct call {
        application app;
        ::pam_handle_t* pamh = nullptr;
        bool returned = false;
    } c;
    ::pam_conv conv{&application::conv, &c.app};
    REQUIRE(::pam_start("probe", "alice", &conv, &c.pamh) == PAM_SUCCESS);
    REQUIRE(::pam_set_item(c.pamh, PAM_RUSER, "pthread_exit") == PAM_SUCCESS);
    pthread_t thread{};
    auto run = [](void* p) -> void* {
        auto* self = static_cast<call*>(p);
        (void)::pam_authenticate(self->pamh, 0);
        self->returned = true;
        return nullptr;
    };
    REQUIRE(::pthread_create(&thread, nullptr, run, &c) == 0);
    REQUIRE(::pthread_join(thread, nullptr) == 0);
    CHECK_FALSE(c.returned);  // the thread ended inside the module, and the process lives
}

// ---------------------------------------------------------------------------
// constant_time_equal
// ---------------------------------------------------------------------------

TEST_SUITE_BEGIN("constant time");

TEST_CASE("constant_time_equal is equality") {
    using pam::constant_time_equal;
    CHECK(constant_time_equal("1234", "1234"));
    CHECK_FALSE(constant_time_equal("1235", "1234"));
    CHECK_FALSE(constant_time_equal("123", "1234"));
    CHECK_FALSE(constant_time_equal("12345", "1234"));
    CHECK_FALSE(constant_time_equal("", "1234"));
    CHECK(constant_time_equal("", ""));
    CHECK_FALSE(constant_time_equal("x", ""));
    using namespace std::string_view_literals;
    CHECK_FALSE(constant_time_equal("12\0004"sv, "12"sv));
    CHECK(constant_time_equal("12\0004"sv, "12\0004"sv));
    CHECK_FALSE(constant_time_equal("\xff", "\x7f"));
    // Longer given than expected, agreeing with expected[0] past its end.
    CHECK_FALSE(constant_time_equal("aaaa", "a"));
}

TEST_CASE("constant_time_equal does not branch on the secret (memcheck, in the valgrind runs)") {
    // Under valgrind the secret's bytes are marked undefined: memcheck reports
    // any jump that depends on them and the run fails. Elsewhere this checks
    // the results only.
    char secret[] = "correct horse battery staple";
    const char* tries[] = {"correct horse battery staple", "correct horse battery stapler",
                           "Correct horse battery staple", "x", ""};
    for (const char* given : tries) {
#if HANDOFF_TEST_MEMCHECK
        VALGRIND_MAKE_MEM_UNDEFINED(secret, sizeof secret - 1);
#endif
        bool same = pam::constant_time_equal(given, std::string_view(secret, sizeof secret - 1));
#if HANDOFF_TEST_MEMCHECK
        VALGRIND_MAKE_MEM_DEFINED(&same, sizeof same);
        VALGRIND_MAKE_MEM_DEFINED(secret, sizeof secret - 1);
#endif
        CHECK(same == (std::strcmp(given, secret) == 0));
    }
}

TEST_SUITE_END();
