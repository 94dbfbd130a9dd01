// The module-side helpers of pam_module.hpp against the real Linux-PAM
// (through pam_wrapper): pam_get_authtok's options and the password-change
// pair (through the test module pam_handoff_helpers.so), the PAM environment,
// printf-style messages and PAM_SILENT, the fail delay, and the argument
// checker. The environment, the messages and the argument checker are also
// called directly on the application's handle (libpam lets an application
// converse, log and use the environment as a module does).
#include <handoff/pam_module.hpp>

#include "../../doctest.hpp"
#include "../wrapped_malloc.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace pam = handoff::pam;
using namespace std::string_view_literals;

namespace {

// An application that answers prompts from a list (NULL once it runs out)
// and records every message.
struct application {
    std::vector<std::string> answers;
    // Returns an array of this many pam_response fewer than num_msg.
    int short_array = 0;
    std::size_t next = 0;
    std::vector<std::pair<int, std::string>> seen;
    // What libpam's PAM_FAIL_DELAY callback was given, if it was called.
    std::optional<unsigned> delay;
    // At the prompt of this number (from 1), the conversation sets these
    // items through pamh first, as an application may (libpam frees the old
    // strings then).
    ::pam_handle_t* pamh = nullptr;
    std::size_t set_at_prompt = 0;
    std::vector<std::pair<int, std::string>> set_items;
    std::size_t prompts_seen = 0;

    static int conv(int n, const ::pam_message** msg, ::pam_response** resp, void* data) {
        auto* self = static_cast<application*>(data);
        const int slots = n - self->short_array;
        auto* r = static_cast<::pam_response*>(
            std::calloc(static_cast<std::size_t>(slots), sizeof(::pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        for (int i = 0; i < slots; ++i) {
            self->seen.emplace_back(msg[i]->msg_style, msg[i]->msg);
            const int s = msg[i]->msg_style;
            if ((s == PAM_PROMPT_ECHO_OFF || s == PAM_PROMPT_ECHO_ON) &&
                ++self->prompts_seen == self->set_at_prompt) {
                for (const auto& item : self->set_items) {
                    if (::pam_set_item(self->pamh, item.first, item.second.c_str()) !=
                        PAM_SUCCESS) {
                        std::free(r);
                        return PAM_CONV_ERR;
                    }
                }
            }
            if ((s == PAM_PROMPT_ECHO_OFF || s == PAM_PROMPT_ECHO_ON) &&
                self->next < self->answers.size()) {
                // malloc'ed here, so the counting malloc sees it.
                const std::string& a = self->answers[self->next++];
                r[i].resp = static_cast<char*>(std::malloc(a.size() + 1));
                if (r[i].resp != nullptr) std::memcpy(r[i].resp, a.c_str(), a.size() + 1);
            }
        }
        *resp = r;
        return PAM_SUCCESS;
    }
    static void fail_delay(int, unsigned usec, void* data) {
        static_cast<application*>(data)->delay = usec;
    }
    std::vector<std::string> prompts() const {
        std::vector<std::string> out;
        for (const auto& m : seen) {
            if (m.first == PAM_PROMPT_ECHO_OFF || m.first == PAM_PROMPT_ECHO_ON) {
                out.push_back(m.second);
            }
        }
        return out;
    }
};

// pam_start / pam_end around one service, with the mode in PAM_RUSER.
class handle {
public:
    handle(const char* service, application& app) {
        ::pam_conv c{&application::conv, &app};
        REQUIRE(::pam_start(service, "alice", &c, &pamh_) == PAM_SUCCESS);
    }
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() { (void)::pam_end(pamh_, last_); }
    ::pam_handle_t* get() const { return pamh_; }
    pam::module_handle module() const { return pam::module_handle(pamh_); }
    int authenticate(const char* mode, int flags = 0) {
        REQUIRE(::pam_set_item(pamh_, PAM_RUSER, mode) == PAM_SUCCESS);
        return last_ = ::pam_authenticate(pamh_, flags);
    }
    int chauthtok(const char* mode) {
        REQUIRE(::pam_set_item(pamh_, PAM_RUSER, mode) == PAM_SUCCESS);
        return last_ = ::pam_chauthtok(pamh_, 0);
    }
    void use_fail_delay() {
        void (*fn)(int, unsigned, void*) = &application::fail_delay;
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): PAM_FAIL_DELAY's C API
        const void* item = reinterpret_cast<const void*>(fn);
        REQUIRE(::pam_set_item(pamh_, PAM_FAIL_DELAY, item) == PAM_SUCCESS);
    }
    // What the module reported (see pam_handoff_helpers.cpp).
    int code() const {
        const char* c = ::pam_getenv(pamh_, "HELPERS_CODE");
        REQUIRE(c != nullptr);
        char* end = nullptr;
        const long code = std::strtol(c, &end, 10);
        REQUIRE(*end == '\0');
        return static_cast<int>(code);
    }
    std::optional<std::string> token() const {
        const char* t = ::pam_getenv(pamh_, "HELPERS_TOKEN");
        if (t == nullptr) return std::nullopt;
        return std::string(t);
    }

private:
    ::pam_handle_t* pamh_ = nullptr;
    int last_ = PAM_SUCCESS;
};

// Captures stderr (where pam_wrapper prints pam_syslog lines) while alive.
class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()) {
        REQUIRE(file_ != nullptr);
        saved_ = ::dup(2);
        REQUIRE(::dup2(::fileno(file_), 2) == 2);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    ~stderr_capture() {
        restore();
        (void)std::fclose(file_);
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
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

std::size_t count(const std::string& haystack, std::string_view needle) {
    std::size_t n = 0;
    for (std::size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_SUITE_BEGIN("authentication tokens");

TEST_CASE("try_authtok prompts with the module's prompt when no module set a token") {
    application app;
    app.answers = {"typed"};
    handle h("helpers", app);
    CHECK(h.authenticate("authtok") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(h.token() == "typed");
    CHECK(app.prompts() == strings{"Token: "});
}

TEST_CASE("use_first_pass takes the token a module set before and never prompts") {
    application app;
    handle h("helpers_first_pass", app);
    CHECK(h.authenticate("authtok") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(h.token() == "preset");
    CHECK(app.seen.empty());
}

TEST_CASE("use_first_pass with no token set is PAM_AUTH_ERR, not a prompt") {
    application app;
    app.answers = {"never asked"};
    handle h("helpers_first_pass_unset", app);
    CHECK(h.authenticate("authtok") == PAM_SUCCESS);
    CHECK(h.code() == PAM_AUTH_ERR);
    CHECK_FALSE(h.token());
    CHECK(app.seen.empty());
}

TEST_CASE("try_first_pass takes the token set before") {
    application app;
    handle h("helpers_try_first_pass", app);
    CHECK(h.authenticate("authtok") == PAM_SUCCESS);
    CHECK(h.token() == "preset");
    CHECK(app.seen.empty());
}

TEST_CASE("try_old_authtok with use_first_pass takes the old token set before") {
    application app;
    handle h("helpers_old_first_pass", app);
    CHECK(h.authenticate("old_authtok") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(h.token() == "old-one");
    CHECK(app.seen.empty());
}

TEST_CASE("an unanswered token prompt gives libpam's code and no string") {
    application app;  // no answers: the prompt is answered with NULL
    handle h("helpers", app);
    CHECK(h.authenticate("authtok") == PAM_SUCCESS);
    CHECK(h.code() == PAM_AUTHTOK_ERR);
    CHECK_FALSE(h.token());
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("password changes");

TEST_CASE("in chauthtok try_authtok asks twice and libpam compares") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers", app);
    CHECK(h.chauthtok("new") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(h.token() == "n3w-token");
    CHECK(app.prompts() == strings{"New token: ", "Retype New token: "});
}

TEST_CASE("in chauthtok two different answers are PAM_TRY_AGAIN") {
    application app;
    app.answers = {"one", "two"};
    handle h("helpers", app);
    CHECK(h.chauthtok("new") == PAM_SUCCESS);
    CHECK(h.code() == PAM_TRY_AGAIN);
    CHECK_FALSE(h.token());
}

TEST_CASE("authtok_type= names the token in libpam's own prompts") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers_authtok_type", app);
    CHECK(h.chauthtok("new_default") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(app.prompts() == strings{"New UNIX password: ", "Retype new UNIX password: "});
}

TEST_CASE("use_authtok with no new token set is PAM_AUTHTOK_ERR, not a prompt") {
    application app;
    app.answers = {"never asked", "never asked"};
    handle h("helpers_use_authtok", app);
    CHECK(h.chauthtok("new") == PAM_SUCCESS);
    CHECK(h.code() == PAM_AUTHTOK_ERR);
    CHECK(app.seen.empty());
}

TEST_CASE("use_authtok takes the new token a module set before") {
    application app;
    handle h("helpers_use_authtok_set", app);
    CHECK(h.chauthtok("new") == PAM_SUCCESS);
    CHECK(h.token() == "given");
    CHECK(app.seen.empty());
}

TEST_CASE("the noverify/verify pair asks once, lets the module judge, then asks again") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers", app);
    CHECK(h.chauthtok("pair") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SUCCESS);
    CHECK(h.token() == "n3w-token");
    CHECK(app.prompts() == strings{"New token: ", "Retype New token: "});
}

TEST_CASE("the pair: a token the module refuses is never asked for again") {
    application app;
    app.answers = {"abc", "abc"};
    handle h("helpers", app);
    CHECK(h.chauthtok("pair") == PAM_SUCCESS);
    CHECK(h.code() == PAM_AUTHTOK_ERR);
    CHECK(app.prompts() == strings{"New token: "});
    CHECK(app.seen.back() == std::pair<int, std::string>(PAM_ERROR_MSG, "too short"));
}

TEST_CASE("the pair: a mistyped second answer is PAM_TRY_AGAIN and clears the token") {
    application app;
    app.answers = {"n3w-token", "n3w-tokem"};
    handle h("helpers", app);
    CHECK(h.chauthtok("pair") == PAM_SUCCESS);
    CHECK(h.code() == PAM_TRY_AGAIN);
    CHECK_FALSE(h.token());
    CHECK(app.seen.back() ==
          std::pair<int, std::string>(PAM_ERROR_MSG, "Sorry, passwords do not match."));
}

TEST_CASE("the pair with libpam's default prompts") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers", app);
    CHECK(h.chauthtok("pair_default_prompts") == PAM_SUCCESS);
    CHECK(h.token() == "n3w-token");
    CHECK(app.prompts() == strings{"New password: ", "Retype new password: "});
}

TEST_CASE("the pair: a token set before (use_authtok) is verified already, no prompt") {
    application app;
    handle h("helpers_use_authtok_set", app);
    CHECK(h.chauthtok("pair") == PAM_SUCCESS);
    CHECK(h.token() == "given");
    CHECK(app.seen.empty());
}

TEST_CASE("the pair: an unanswered first prompt is PAM_AUTHTOK_ERR, verify passes it on") {
    application app;  // no answers
    handle h("helpers", app);
    CHECK(h.chauthtok("pair_default_prompts") == PAM_SUCCESS);
    CHECK(h.code() == PAM_AUTHTOK_ERR);
    CHECK(app.prompts() == strings{"New password: "});  // verify did not ask
}

TEST_CASE("try_authtok_verify of a token without a string is PAM_SYSTEM_ERR, never a crash") {
    application app;
    app.answers = {"n3w-token"};
    handle h("helpers", app);
    CHECK(h.chauthtok("verify_nothing") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SYSTEM_ERR);
    CHECK(app.seen.empty());
}

TEST_CASE("try_authtok_verify outside pam_sm_chauthtok is PAM_SYSTEM_ERR") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers", app);
    CHECK(h.authenticate("verify_outside") == PAM_SUCCESS);
    CHECK(h.code() == PAM_SYSTEM_ERR);
    CHECK(app.prompts() == strings{"New token: "});
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing forms of the pair carry libpam's code out of the body") {
    application app;
    app.answers = {"n3w-token"};
    handle h("helpers", app);
    CHECK(h.authenticate("throw:noverify") == PAM_SUCCESS);
    CHECK(h.token() == "n3w-token");
    // A first token without a string (default-made) is refused before libpam
    // reads it: PAM_SYSTEM_ERR, thrown and returned by the barrier.
    stderr_capture log;
    CHECK(h.authenticate("throw:verify") == PAM_SYSTEM_ERR);
}

TEST_CASE("the throwing forms of the pair return the verified token") {
    application app;
    app.answers = {"n3w-token", "n3w-token"};
    handle h("helpers", app);
    CHECK(h.chauthtok("throw:pair") == PAM_SUCCESS);
    CHECK(h.token() == "n3w-token");
    CHECK(app.prompts() == strings{"New token: ", "Retype New token: "});
}
#endif

TEST_SUITE_END();

TEST_SUITE_BEGIN("module environment");

TEST_CASE("try_putenv sets, sets empty and removes; libpam keeps its own copy") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    {
        std::string text = "HELPERS_X=one";
        CHECK(m.try_putenv(text).ok());
        text.assign(text.size(), '#');  // libpam copied it
    }
    CHECK(m.getenv("HELPERS_X") == "one"sv);
    CHECK(m.try_putenv("HELPERS_X=").ok());
    CHECK(m.getenv("HELPERS_X") == ""sv);
    CHECK(m.try_putenv("HELPERS_X").ok());
    CHECK_FALSE(m.getenv("HELPERS_X"));
    CHECK(::pam_getenv(h.get(), "HELPERS_X") == nullptr);
    // Removing what is not set, and libpam's own refusal of an empty name.
    CHECK(m.try_putenv("HELPERS_X").code() == PAM_BAD_ITEM);
    CHECK(m.try_putenv("=value").code() == PAM_BAD_ITEM);
}

TEST_CASE("a NUL inside is refused, never cut short") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    CHECK(m.try_putenv("HELPERS_Y=ab\0cd"sv).code() == PAM_BAD_ITEM);
    CHECK(m.try_setenv("HELPERS_Y", "ab\0cd"sv).code() == PAM_BAD_ITEM);
    CHECK(m.try_setenv("HELPERS_Y\0Z"sv, "v").code() == PAM_BAD_ITEM);
    CHECK_FALSE(m.getenv("HELPERS_Y"));
    CHECK(m.try_setenv("HELPERS_Y", "ab").ok());
    CHECK_FALSE(m.getenv("HELPERS_Y\0Z"sv));
    CHECK(m.getenv("HELPERS_Y") == "ab"sv);
}

TEST_CASE("try_setenv and try_unsetenv take a name, never NAME=value") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    CHECK(m.try_setenv("HELPERS_Z", "a=b").ok());
    CHECK(m.getenv("HELPERS_Z") == "a=b"sv);
    CHECK(m.try_setenv("HELPERS_Z", "").ok());
    CHECK(m.getenv("HELPERS_Z") == ""sv);
    CHECK(m.try_setenv("A=B", "c").code() == PAM_BAD_ITEM);
    CHECK(m.try_setenv("", "c").code() == PAM_BAD_ITEM);
    CHECK(m.try_unsetenv("HELPERS_Z=").code() == PAM_BAD_ITEM);
    CHECK(m.try_unsetenv("").code() == PAM_BAD_ITEM);
    CHECK(m.getenv("HELPERS_Z") == ""sv);
    CHECK(m.try_unsetenv("HELPERS_Z").ok());
    CHECK_FALSE(m.getenv("HELPERS_Z"));
    CHECK(m.try_unsetenv("HELPERS_Z").code() == PAM_BAD_ITEM);
    CHECK_FALSE(m.getenv(""));
    CHECK_FALSE(m.getenv("A=B"));
}

TEST_CASE("the temporary copies made for libpam are wiped and freed") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    wrapped::armed counting;
    CHECK(m.try_putenv("HELPERS_S=secret").ok());
    CHECK(m.try_setenv("HELPERS_S", "secret2").ok());
    CHECK(m.getenv("HELPERS_S") == "secret2"sv);
    CHECK(wrapped::state().live_count == 0);
    CHECK(wrapped::state().frees == 3);          // two values and getenv's name
    CHECK(wrapped::state().frees_nonzero == 1);  // only the name is not a secret
}

TEST_CASE("no memory for the copy: PAM_BUF_ERR, and getenv reads nullopt") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    CHECK(m.try_setenv("HELPERS_M", "v").ok());
    {
        wrapped::armed failing(1);
        CHECK(m.try_putenv("HELPERS_M=w").code() == PAM_BUF_ERR);
    }
    {
        wrapped::armed failing(1);
        CHECK(m.try_setenv("HELPERS_M", "w").code() == PAM_BUF_ERR);
    }
    {
        wrapped::armed failing(1);
        CHECK_FALSE(m.getenv("HELPERS_M"));
    }
    CHECK(m.getenv("HELPERS_M") == "v"sv);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing forms of the environment throw libpam's code") {
    application app;
    handle h("helpers", app);
    stderr_capture log;
    CHECK(h.authenticate("throw:env") == PAM_BAD_ITEM);
    CHECK(::pam_getenv(h.get(), "HELPERS_B") == "2"sv);
    CHECK(::pam_getenv(h.get(), "HELPERS_A") == nullptr);
}
#endif

TEST_SUITE_END();

TEST_SUITE_BEGIN("module messages");

TEST_CASE("try_infof and try_errorf format like printf and send one message each") {
    application app;
    handle h("helpers", app);
    CHECK(h.authenticate("infof") == PAM_SUCCESS);
    REQUIRE(app.seen.size() == 2);
    CHECK(app.seen[0] == std::pair<int, std::string>(PAM_TEXT_INFO, "alice has 3 new messages"));
    CHECK(app.seen[1] == std::pair<int, std::string>(PAM_ERROR_MSG, "and one error"));
}

TEST_CASE("with PAM_SILENT nothing is sent and the result is PAM_SUCCESS") {
    application app;
    handle h("helpers", app);
    CHECK(h.authenticate("infof", PAM_SILENT) == PAM_SUCCESS);
    CHECK(app.seen.empty());
}

TEST_CASE("a formatted message longer than PAM_MAX_MSG_SIZE is sent whole") {
    application app;
    handle h("helpers", app);
    const std::string long_text(2000, 'x');
    CHECK(h.module().try_infof(pam::module_flags(), "<%s>", long_text.c_str()).ok());
    REQUIRE(app.seen.size() == 1);
    CHECK(app.seen[0].second == "<" + long_text + ">");
}

TEST_CASE("a formatted message: the buffer is freed, wiped, and no memory is PAM_BUF_ERR") {
    application app;
    handle h("helpers", app);
    const pam::module_handle m = h.module();
    {
        wrapped::armed counting;
        CHECK(m.try_errorf(pam::module_flags(), "code %04d", 7).ok());
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
    {
        wrapped::armed failing(1);
        CHECK(m.try_infof(pam::module_flags(), "%s", "never sent").code() == PAM_BUF_ERR);
    }
    REQUIRE(app.seen.size() == 1);
    CHECK(app.seen[0].second == "code 0007");
}

TEST_CASE("a format libc cannot render is PAM_SYSTEM_ERR and sends nothing") {
    application app;
    handle h("helpers", app);
    // An invalid wide character in the C locale: vsnprintf fails (EILSEQ).
    const wchar_t bad[] = {static_cast<wchar_t>(0x110000), 0};
    CHECK(h.module().try_infof(pam::module_flags(), "%ls", bad).code() == PAM_SYSTEM_ERR);
    CHECK(app.seen.empty());
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("fail delay");

TEST_CASE("try_fail_delay reaches libpam: the application's delay callback sees it") {
    application app;
    handle h("helpers", app);
    h.use_fail_delay();
    CHECK(h.authenticate("fail_delay") == PAM_AUTH_ERR);
    REQUIRE(app.delay.has_value());
    CHECK(*app.delay > 0u);
    // 20 ms scaled by libpam's random factor, the mean of three draws in 0.5 .. 1.5.
    CHECK(*app.delay >= 10000u);
    CHECK(*app.delay <= 30000u);
}

TEST_CASE("without try_fail_delay the application's delay callback sees no delay") {
    application app;
    handle h("helpers", app);
    h.use_fail_delay();
    CHECK(h.authenticate("unknown mode") == PAM_SERVICE_ERR);
    CHECK(app.delay == 0u);
}

TEST_CASE("try_fail_delay clamps what libpam cannot take") {
    application app;
    handle h("helpers", app);
    CHECK(h.module().try_fail_delay(std::chrono::microseconds(-5)).ok());
    CHECK(h.module().try_fail_delay(std::chrono::hours(24 * 365)).ok());
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("argument checker");

TEST_CASE("warn_unknown logs each unknown option once, by name, never its value") {
    application app;
    handle h("helpers_args", app);
    stderr_capture log;
    CHECK(h.authenticate("args") == PAM_SUCCESS);
    const std::string text = log.text();
    CHECK(::pam_getenv(h.get(), "HELPERS_UNKNOWN") == "4"sv);
    CHECK(count(text, "unknown option secret=") == 1);
    CHECK(count(text, "unknown option bogus") == 1);
    CHECK(count(text, "option debug takes no value (debug= ignored)") == 1);
    CHECK(count(text, "option file= needs a value") == 1);
    CHECK(count(text, "hunter2") == 0);
    CHECK(count(text, "again") == 0);
    CHECK(count(text, "/etc/x") == 0);
    CHECK(count(text, "use_first_pass") == 0);
}

TEST_CASE("warn_unknown: known options log nothing; names are cut at 64 bytes") {
    application app;
    handle h("helpers", app);
    const std::string long_name(100, 'n');
    const char* argv[] = {"debug", "file=x", "file=", nullptr, long_name.c_str()};
    const pam::module_arguments args(5, argv);
    stderr_capture log;
    CHECK(args.warn_unknown(h.module(), {"debug", "file="}) == 2);
    const std::string text = log.text();
    CHECK(count(text, "unknown option \n") == 1);  // the NULL entry reads as ""
    CHECK(count(text, "unknown option " + std::string(64, 'n')) == 1);
    CHECK(count(text, std::string(65, 'n')) == 0);
    CHECK(pam::module_arguments().warn_unknown(h.module(), {}) == 0);
    // An empty name in the list is a flag named "", not a key.
    const char* one[] = {"debug"};
    CHECK(pam::module_arguments(1, one).warn_unknown(h.module(), {"", "debug"}) == 0);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("module conversation");

TEST_CASE("an array too small for num_msg is refused; only the array is freed, nothing read") {
    application app;
    app.answers = {"first"};
    app.short_array = 7;  // one pam_response for eight messages
    handle h("helpers", app);
    {
        wrapped::armed counting;
        {
            pam::responses r = h.module().try_converse(
                {pam::outgoing::prompt("one: "), pam::outgoing::info("2"), pam::outgoing::info("3"),
                 pam::outgoing::info("4"), pam::outgoing::info("5"), pam::outgoing::info("6"),
                 pam::outgoing::info("7"), pam::outgoing::prompt("eight: ")});
            CHECK(r.code() == PAM_CONV_ERR);
            CHECK(r.conversation_failure() == pam::failure::bad_reply);
            CHECK_FALSE(r.has_answer(0));
        }
        // The array is freed; the one answer in it is not read, so it stays
        // the application's loss (freed here by the test).
        REQUIRE(wrapped::state().live_count == 1);
        CHECK(std::strcmp(static_cast<const char*>(wrapped::state().live[0].p), "first") == 0);
        std::free(wrapped::state().live[0].p);
    }
    CHECK(app.next == 1);
}

TEST_SUITE_END();

// pam_handoff_passwd (examples/pam_module) keeps copies of what libpam lends
// it: a conversation that sets PAM_USER or PAM_OLDAUTHTOK while it asks does
// not leave it reading freed strings (ASan: heap-use-after-free before).
namespace {
std::string passwd_db() {
    const char* dir = std::getenv("HANDOFF_TEST_BUILDDIR");
    REQUIRE(dir != nullptr);
    return std::string(dir) + "/helpers/passwd_db";
}
void write_db(const std::string& text) {
    std::FILE* f = std::fopen(passwd_db().c_str(), "w");
    REQUIRE(f != nullptr);
    REQUIRE(std::fputs(text.c_str(), f) >= 0);
    REQUIRE(std::fclose(f) == 0);
}
std::string read_db() {
    std::string text;
    std::FILE* f = std::fopen(passwd_db().c_str(), "r");
    REQUIRE(f != nullptr);
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) text.push_back(static_cast<char>(c));
    (void)std::fclose(f);
    return text;
}
}  // namespace

TEST_CASE("passwd: the conversation setting PAM_USER while the password is asked for") {
    write_db("alice:secret\nbob:hunter22\n");
    application app;
    app.answers = {"secret"};
    app.set_at_prompt = 1;
    app.set_items = {{PAM_USER, "bob"}};
    handle h("passwd", app);
    app.pamh = h.get();
    // The user asked for is alice: her password is checked.
    CHECK(::pam_authenticate(h.get(), 0) == PAM_SUCCESS);
}

TEST_CASE(
    "passwd: the conversation setting PAM_USER and PAM_OLDAUTHTOK while the new one is "
    "asked for") {
    write_db("alice:secret\nbob:hunter22\n");
    application app;
    app.answers = {"secret", "newpass1", "newpass1"};
    app.set_at_prompt = 2;  // the first new-password prompt
    app.set_items = {{PAM_USER, "bob"}, {PAM_OLDAUTHTOK, "newpass1"}};
    handle h("passwd", app);
    app.pamh = h.get();
    CHECK(::pam_chauthtok(h.get(), 0) == PAM_SUCCESS);
    CHECK(read_db() == "alice:newpass1\nbob:hunter22\n");
}

TEST_CASE("passwd: an empty stored password opens only without PAM_DISALLOW_NULL_AUTHTOK") {
    write_db("alice:\n");
    for (const int flags : {0, static_cast<int>(PAM_DISALLOW_NULL_AUTHTOK)}) {
        CAPTURE(flags);
        application app;
        app.answers = {""};
        handle h("passwd", app);
        CHECK(::pam_authenticate(h.get(), flags) == (flags == 0 ? PAM_SUCCESS : PAM_AUTH_ERR));
    }
}

TEST_CASE("passwd: the fail delay is asked for an unknown user too") {
    write_db("bob:hunter22\n");
    application app;
    app.answers = {"wrong"};
    handle h("passwd_delay", app);
    h.use_fail_delay();
    CHECK(::pam_authenticate(h.get(), 0) == PAM_USER_UNKNOWN);
    CHECK(app.delay.value_or(0) > 0);  // libpam calls it with 0 when none was asked for
}

TEST_CASE("passwd: a new password longer than PAM_MAX_RESP_SIZE is refused") {
    write_db("alice:secret\n");
    const std::string longer(PAM_MAX_RESP_SIZE + 1, 'x');
    application app;
    app.answers = {"secret", longer, longer};
    handle h("passwd", app);
    CHECK(::pam_chauthtok(h.get(), 0) == PAM_AUTHTOK_ERR);
    CHECK(read_db() == "alice:secret\n");
}

TEST_CASE("passwd: file= a symbolic link is not written through") {
    const std::string target = passwd_db() + ".target";
    std::FILE* f = std::fopen(target.c_str(), "w");
    REQUIRE(f != nullptr);
    REQUIRE(std::fputs("alice:secret\n", f) >= 0);
    REQUIRE(std::fclose(f) == 0);
    (void)::unlink(passwd_db().c_str());
    REQUIRE(::symlink(target.c_str(), passwd_db().c_str()) == 0);
    application app;
    app.answers = {"secret", "newpass1", "newpass1"};
    {
        handle h("passwd", app);
        CHECK(::pam_chauthtok(h.get(), 0) == PAM_AUTHTOK_ERR);
    }
    struct stat st {};
    CHECK(::lstat(passwd_db().c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(read_db() == "alice:secret\n");
    (void)::unlink(passwd_db().c_str());
    (void)::unlink(target.c_str());
}
