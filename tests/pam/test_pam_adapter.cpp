// The conversation adapter's C function, called directly with hand-built
// message arrays: every bad input, every allocation failure, every wipe.
#include <handoff/pam.hpp>

#include "../doctest.hpp"
#include "pipe_pair.hpp"
#include "wrapped_malloc.hpp"

#include <climits>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

namespace pam = handoff::pam;

namespace {

// Messages in Linux-PAM's layout: an array of pointers to pam_message.
class messages {
public:
    messages(std::initializer_list<std::pair<int, const char*>> list) {
        for (const auto& [s, text] : list) storage_.push_back(::pam_message{s, text});
        for (const ::pam_message& m : storage_) pointers_.push_back(&m);
    }
    const ::pam_message** get() { return pointers_.data(); }
    int count() const { return static_cast<int>(storage_.size()); }
    void null_entry(std::size_t i) { pointers_[i] = nullptr; }

private:
    std::vector<::pam_message> storage_;
    std::vector<const ::pam_message*> pointers_;
};

// What libpam does with a reply: free each string, then the array.
void free_like_libpam(::pam_response* r, int n) {
    if (r == nullptr) return;
    for (int i = 0; i < n; ++i) std::free(r[i].resp);
    std::free(r);
}

// A sentinel address, compared and never dereferenced.
// NOLINTNEXTLINE(cppcoreguidelines-*-global-variables,cppcoreguidelines-pro-type-reinterpret-cast)
::pam_response* const untouched = reinterpret_cast<::pam_response*>(0x1);

template <class Conv>
int call(Conv& c, int n, const ::pam_message** msg, ::pam_response** resp) {
    ::pam_conv pc = c.c_conv();
    return pc.conv(n, msg, resp, pc.appdata_ptr);
}

// One call that must fail with PAM_CONV_ERR for `why`, leaving *resp alone.
template <class Conv>
void expect_refused(Conv& c, messages& m, pam::failure why) {
    ::pam_response* resp = untouched;
    CHECK(call(c, m.count(), m.get(), &resp) == PAM_CONV_ERR);
    CHECK(c.last_failure() == why);
    CHECK(resp == untouched);
}

// A handler that answers prompts with fixed text and counts its calls.
struct answer_with {
    std::string text;
    int* calls;
    pam::reply operator()(const pam::message& m) {
        ++*calls;
        return m.is_prompt() ? pam::reply::answer(std::string_view(text)) : pam::reply::none();
    }
};

}  // namespace

TEST_CASE("answers fill one zeroed array indexed like the messages") {
    int calls = 0;
    pam::conversation conv(answer_with{"pw", &calls});
    messages m{{PAM_TEXT_INFO, "hello"},
               {PAM_PROMPT_ECHO_OFF, "Password: "},
               {PAM_PROMPT_ECHO_ON, "Login: "}};
    ::pam_response* resp = untouched;
    std::size_t allocations = 0;
    {
        wrapped::armed count;
        REQUIRE(call(conv, m.count(), m.get(), &resp) == PAM_SUCCESS);
        allocations = wrapped::state().allocations;
    }
    CHECK(allocations == 3);  // the array + one per answer
    // The wrapped malloc hands out 0xA5 bytes: the adapter zeroed the array.
    REQUIRE(resp != untouched);
    CHECK(resp[0].resp == nullptr);
    CHECK(std::strcmp(resp[1].resp, "pw") == 0);
    CHECK(std::strcmp(resp[2].resp, "pw") == 0);
    for (int i = 0; i < 3; ++i) CHECK(resp[i].resp_retcode == 0);
    CHECK(calls == 3);
    CHECK(conv.last_failure() == pam::failure::none);
    free_like_libpam(resp, 3);
}

TEST_CASE("each answer is one allocation of exactly its length plus one") {
    int calls = 0;
    pam::conversation conv(answer_with{std::string(100, 'a'), &calls});
    messages m{{PAM_PROMPT_ECHO_ON, "q"}};
    ::pam_response* resp = nullptr;
    wrapped::armed count;
    REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    REQUIRE(wrapped::state().live_count == 2);
    bool found = false;
    for (std::size_t i = 0; i < 2; ++i) {
        if (wrapped::state().live[i].p == resp[0].resp) {
            found = true;
            CHECK(wrapped::state().live[i].bytes == 101);
        }
    }
    CHECK(found);
    free_like_libpam(resp, 1);
}

TEST_CASE("num_msg outside 1..PAM_MAX_NUM_MSG is a conversation error with nothing allocated") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_PROMPT_ECHO_ON, "q"}};
    for (int n : {0, -1, PAM_MAX_NUM_MSG + 1, 1 << 30}) {
        ::pam_response* resp = untouched;
        wrapped::armed count;
        CHECK(call(conv, n, m.get(), &resp) == PAM_CONV_ERR);
        CHECK(resp == untouched);
        CHECK(wrapped::state().allocations == 0);
        CHECK(conv.last_failure() == pam::failure::bad_message);
    }
    CHECK(calls == 0);
}

TEST_CASE("the maximum message count is accepted") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    std::vector<::pam_message> storage(PAM_MAX_NUM_MSG, ::pam_message{PAM_PROMPT_ECHO_ON, "q"});
    std::vector<const ::pam_message*> ptrs;
    ptrs.reserve(storage.size());
    for (const auto& s : storage) ptrs.push_back(&s);
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, PAM_MAX_NUM_MSG, ptrs.data(), &resp) == PAM_SUCCESS);
    CHECK(calls == PAM_MAX_NUM_MSG);
    free_like_libpam(resp, PAM_MAX_NUM_MSG);
}

TEST_CASE("a NULL message array is a conversation error") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, nullptr, &resp) == PAM_CONV_ERR);
    CHECK(resp == untouched);
    CHECK(calls == 0);
}

TEST_CASE("a NULL message pointer is a conversation error before any allocation") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_PROMPT_ECHO_ON, "a"}, {PAM_PROMPT_ECHO_ON, "b"}};
    m.null_entry(1);
    ::pam_response* resp = untouched;
    wrapped::armed count;
    CHECK(call(conv, 2, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(wrapped::state().allocations == 0);
    CHECK(resp == untouched);
    CHECK(calls == 0);
}

TEST_CASE("a NULL text is a conversation error") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_TEXT_INFO, nullptr}};
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::bad_message);
    CHECK(calls == 0);
}

TEST_CASE("an unknown style is a conversation error, never an echo-on prompt") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    // Around the known 1..5 and 7, and values whose low bits look known.
    for (int s : {0, 6, 8, 99, -3, -1, 0x101, 0x10001, INT_MIN, INT_MIN + 1, INT_MAX}) {
        messages m{{s, "what?"}};
        ::pam_response* resp = untouched;
        CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
        CHECK(resp == untouched);
    }
    CHECK(calls == 0);
}

TEST_CASE("a NULL appdata_ptr is a conversation error") {
    messages m{{PAM_TEXT_INFO, "hi"}};
    ::pam_response* resp = untouched;
    using conv_t = pam::conversation<answer_with>;
    CHECK(conv_t::c_function(1, m.get(), &resp, nullptr) == PAM_CONV_ERR);
    CHECK(resp == untouched);
}

TEST_CASE("a NULL resp with only info and error messages shows them and succeeds") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_TEXT_INFO, "note"}, {PAM_ERROR_MSG, "warning"}};
    wrapped::armed count;
    CHECK(call(conv, 2, m.get(), nullptr) == PAM_SUCCESS);
    CHECK(calls == 2);
    CHECK(wrapped::state().allocations == 0);
}

TEST_CASE("a NULL resp with a prompt is a conversation error and asks nothing") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_TEXT_INFO, "note"}, {PAM_PROMPT_ECHO_OFF, "Password: "}};
    CHECK(call(conv, 2, m.get(), nullptr) == PAM_CONV_ERR);
    CHECK(calls == 0);
}

TEST_CASE("an error message is shown, not treated as a failure") {
    int calls = 0;
    pam::conversation conv(answer_with{"x", &calls});
    messages m{{PAM_ERROR_MSG, "your password expires soon"}};
    ::pam_response* resp = nullptr;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    REQUIRE(resp != nullptr);
    CHECK(resp[0].resp == nullptr);
    free_like_libpam(resp, 1);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("a handler that throws gives PAM_CONV_ERR, frees everything and keeps the exception") {
    int asked = 0;
    pam::conversation conv([&](const pam::message&) -> pam::reply {
        if (++asked == 2) throw std::runtime_error("no terminal");
        return pam::reply::answer("first");
    });
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_PROMPT_ECHO_OFF, "b"}};
    ::pam_response* resp = untouched;
    {
        wrapped::armed count;
        CHECK(call(conv, 2, m.get(), &resp) == PAM_CONV_ERR);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);  // the first answer was wiped
    }
    CHECK(resp == untouched);
    CHECK(conv.last_failure() == pam::failure::handler_threw);
    REQUIRE(conv.has_exception());
    CHECK_THROWS_WITH_AS(std::rethrow_exception(conv.take_exception()), "no terminal",
                         std::runtime_error);
    CHECK_FALSE(conv.has_exception());
}

TEST_CASE("a handler that throws bad_alloc gives PAM_BUF_ERR") {
    pam::conversation conv([](const pam::message&) -> pam::reply { throw std::bad_alloc(); });
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}};
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_BUF_ERR);
    CHECK(conv.last_failure() == pam::failure::out_of_memory);
    CHECK(resp == untouched);
}

#endif

TEST_CASE("a refusal fails the whole call and wipes the answers made before it") {
    int asked = 0;
    pam::conversation conv([&](const pam::message&) {
        return ++asked < 3 ? pam::reply::answer("secret")
                           : pam::reply::refuse(pam::failure::cancelled);
    });
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_PROMPT_ECHO_OFF, "b"}, {PAM_PROMPT_ECHO_OFF, "c"}};
    ::pam_response* resp = untouched;
    wrapped::armed count;
    CHECK(call(conv, 3, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(resp == untouched);
    CHECK(conv.last_failure() == pam::failure::cancelled);
    CHECK(wrapped::state().live_count == 0);
    CHECK(wrapped::state().frees == 3);
    CHECK(wrapped::state().frees_nonzero == 0);
}

TEST_CASE("an answer of PAM_MAX_RESP_SIZE bytes is refused, one byte less is accepted") {
    std::string longest(PAM_MAX_RESP_SIZE - 1, 'x');
    std::string too_long(PAM_MAX_RESP_SIZE, 'x');
    CHECK(pam::reply::answer(std::string_view(longest)).has_answer());
    pam::reply r = pam::reply::answer(std::string_view(too_long));
    CHECK_FALSE(r.has_answer());
    CHECK(r.error() == pam::failure::answer_too_long);

    pam::conversation conv(
        [&](const pam::message&) { return pam::reply::answer(std::string_view(too_long)); });
    messages m{{PAM_PROMPT_ECHO_ON, "q"}};
    expect_refused(conv, m, pam::failure::answer_too_long);
}

TEST_CASE("an answer with an embedded NUL is refused, never truncated") {
    pam::conversation conv(
        [](const pam::message&) { return pam::reply::answer(std::string_view("pass\0word", 9)); });
    messages m{{PAM_PROMPT_ECHO_OFF, "q"}};
    expect_refused(conv, m, pam::failure::answer_has_nul);
}

TEST_CASE("a prompt left without an answer is a conversation error") {
    pam::conversation conv([](const pam::message&) { return pam::reply::none(); });
    messages m{{PAM_PROMPT_ECHO_ON, "q"}};
    expect_refused(conv, m, pam::failure::unanswered_prompt);
}

TEST_CASE("a per-message handler is not asked again once a reply of the call has failed") {
    const std::string too_long(PAM_MAX_RESP_SIZE, 'x');
    struct failing {
        const char* name;
        pam::reply (*first)(const std::string&);
        pam::failure why;
    };
    const failing cases[] = {
        {"refusal", [](const std::string&) { return pam::reply::refuse(pam::failure::cancelled); },
         pam::failure::cancelled},
        {"no answer to a prompt", [](const std::string&) { return pam::reply::none(); },
         pam::failure::unanswered_prompt},
        {"answer too long",
         [](const std::string& t) { return pam::reply::answer(std::string_view(t)); },
         pam::failure::answer_too_long},
        {"answer with NUL",
         [](const std::string&) { return pam::reply::answer(std::string_view("a\0b", 3)); },
         pam::failure::answer_has_nul},
    };
    for (const failing& c : cases) {
        CAPTURE(c.name);
        int asked = 0;
        pam::conversation conv([&](const pam::message&) {
            if (++asked == 2) return c.first(too_long);
            return pam::reply::answer("secret");
        });
        messages m{{PAM_PROMPT_ECHO_OFF, "a"},
                   {PAM_PROMPT_ECHO_OFF, "b"},
                   {PAM_PROMPT_ECHO_ON, "never shown"},
                   {PAM_TEXT_INFO, "never shown either"}};
        wrapped::armed count;
        expect_refused(conv, m, c.why);
        CHECK(asked == 2);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
}

TEST_CASE("after a failed allocation the per-message handler is not asked again") {
    int calls = 0;
    pam::conversation conv(answer_with{"topsecret", &calls});
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_PROMPT_ECHO_OFF, "b"}, {PAM_PROMPT_ECHO_ON, "c"}};
    ::pam_response* resp = untouched;
    wrapped::armed count(2);  // the array succeeds, the first answer fails
    CHECK(call(conv, m.count(), m.get(), &resp) == PAM_BUF_ERR);
    CHECK(conv.last_failure() == pam::failure::out_of_memory);
    CHECK(calls == 1);
    CHECK(resp == untouched);
    CHECK(wrapped::state().live_count == 0);
}

TEST_CASE("a NULL resp drops the handler's answers to info messages, wiped") {
    messages m{{PAM_TEXT_INFO, "note"}, {PAM_ERROR_MSG, "warning"}};
    SUBCASE("per message") {
        pam::conversation conv([](const pam::message&) { return pam::reply::answer("ack"); });
        wrapped::armed count;
        CHECK(call(conv, 2, m.get(), nullptr) == PAM_SUCCESS);
        CHECK(wrapped::state().allocations == 2);  // the answers; no array
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
    SUBCASE("batch") {
        pam::conversation conv([](const pam::message_batch& b, pam::reply_batch& out) {
            for (std::size_t i = 0; i < b.size(); ++i) out[i] = pam::reply::answer("ack");
        });
        wrapped::armed count;
        CHECK(call(conv, 2, m.get(), nullptr) == PAM_SUCCESS);
        CHECK(wrapped::state().allocations == 2);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
    SUBCASE("a refusal still fails the call") {
        pam::conversation conv([](const pam::message_batch&, pam::reply_batch& out) {
            out[0] = pam::reply::answer("ack");
            out[1] = pam::reply::refuse(pam::failure::input_closed);
        });
        wrapped::armed count;
        CHECK(call(conv, 2, m.get(), nullptr) == PAM_CONV_ERR);
        CHECK(conv.last_failure() == pam::failure::input_closed);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
}

TEST_CASE("an answer made from a C string is measured once and checked like any other") {
    std::string longest(PAM_MAX_RESP_SIZE - 1, 'y');
    std::string too_long(PAM_MAX_RESP_SIZE, 'y');
    pam::reply ok = pam::reply::answer(longest.c_str());
    CHECK(ok.text() == longest);
    pam::reply no = pam::reply::answer(too_long.c_str());
    CHECK_FALSE(no.has_answer());
    CHECK(no.error() == pam::failure::answer_too_long);
    pam::reply null = pam::reply::answer(static_cast<const char*>(nullptr));
    CHECK(null.error() == pam::failure::refused);
    pam::reply empty = pam::reply::answer("");
    REQUIRE(empty.has_answer());
    CHECK(empty.text().empty());
}

TEST_CASE("a message knows whether it is a prompt, for every style") {
    const std::pair<int, bool> styles[] = {{PAM_PROMPT_ECHO_OFF, true}, {PAM_PROMPT_ECHO_ON, true},
                                           {PAM_ERROR_MSG, false},      {PAM_TEXT_INFO, false},
                                           {PAM_RADIO_TYPE, true},      {PAM_BINARY_PROMPT, true}};
    for (const auto& entry : styles) {
        const int s = entry.first;
        const bool prompt = entry.second;
        CAPTURE(s);
        ::pam_message raw{s, "text"};
        CHECK(pam::message(static_cast<pam::style>(s), &raw).is_prompt() == prompt);
        CHECK(pam::message::from_validated(&raw).is_prompt() == prompt);
        CHECK(pam::is_prompt_style(static_cast<pam::style>(s)) == prompt);
    }
    ::pam_message odd{99, "text"};
    CHECK_FALSE(pam::message(static_cast<pam::style>(99), &odd).is_prompt());
    CHECK(pam::message(pam::style::text_info, &odd).text() == "text");
}

TEST_CASE("every allocation failure gives PAM_BUF_ERR, frees all and wipes secrets") {
    int calls = 0;
    pam::conversation conv(answer_with{"topsecret", &calls});
    messages m{{PAM_PROMPT_ECHO_OFF, "a"},
               {PAM_TEXT_INFO, "i"},
               {PAM_PROMPT_ECHO_OFF, "b"},
               {PAM_PROMPT_ECHO_ON, "c"}};
    std::size_t points = 0;
    for (std::size_t k = 1; k < 20; ++k) {
        ::pam_response* resp = untouched;
        int rc = 0;
        bool injected = false;
        {
            wrapped::armed count(k);
            rc = call(conv, m.count(), m.get(), &resp);
            injected = wrapped::state().injected;
            if (injected) {
                CHECK(rc == PAM_BUF_ERR);
                CHECK(resp == untouched);
                CHECK(conv.last_failure() == pam::failure::out_of_memory);
                CHECK(wrapped::state().live_count == 0);
                CHECK(wrapped::state().frees_nonzero == 0);
            }
        }
        if (!injected) {
            CHECK(rc == PAM_SUCCESS);
            free_like_libpam(resp, m.count());
            break;
        }
        ++points;
    }
    CHECK(points == 4);  // the array and three answers
}

TEST_CASE("a prepared secret_string is handed over without another allocation") {
    handoff::secret_string prepared = *handoff::secret_string::try_from("prepared");
    const char* buffer = prepared.c_str();
    pam::conversation conv(
        [&](const pam::message&) { return pam::reply::answer(std::move(prepared)); });
    messages m{{PAM_PROMPT_ECHO_OFF, "q"}};
    ::pam_response* resp = nullptr;
    {
        wrapped::armed count;
        REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
        CHECK(wrapped::state().allocations == 1);  // only the response array
    }
    CHECK(resp[0].resp == buffer);
    free_like_libpam(resp, 1);
}

TEST_CASE("a secret_string answer holding NUL is refused") {
    handoff::secret_string with_nul =
        *handoff::secret_string::try_from(std::string_view("a\0b", 3));
    pam::reply r = pam::reply::answer(std::move(with_nul));
    CHECK_FALSE(r.has_answer());
    CHECK(r.error() == pam::failure::answer_has_nul);
}

TEST_CASE("an empty secret_string answer whose buffer cannot be made is out_of_memory") {
    handoff::secret_string empty;  // owns no buffer yet: handing it over allocates one
    wrapped::armed count(1);
    pam::reply r = pam::reply::answer(std::move(empty));
    CHECK_FALSE(r.has_answer());
    CHECK(r.error() == pam::failure::out_of_memory);
    CHECK(wrapped::state().live_count == 0);
}

TEST_CASE("a std::string answer is wiped once copied") {
    std::string kept = "short-pw";
    const char* where = kept.data();
    pam::reply r = pam::reply::answer(std::move(kept));
    CHECK(r.text() == "short-pw");
    for (std::size_t i = 0; i < 8; ++i) CHECK(where[i] == '\0');
}

TEST_CASE("a batch handler sees every message of the call at once") {
    std::size_t seen = 0;
    pam::conversation conv([&](const pam::message_batch& batch, pam::reply_batch& replies) {
        seen = batch.size();
        std::size_t i = 0;
        for (pam::message msg : batch) {
            if (msg.is_prompt()) replies[i] = pam::reply::answer(msg.is_secret() ? "s" : "v");
            ++i;
        }
    });
    messages m{{PAM_PROMPT_ECHO_ON, "user"}, {PAM_TEXT_INFO, "-"}, {PAM_PROMPT_ECHO_OFF, "pw"}};
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, 3, m.get(), &resp) == PAM_SUCCESS);
    CHECK(seen == 3);
    CHECK(std::strcmp(resp[0].resp, "v") == 0);
    CHECK(resp[1].resp == nullptr);
    CHECK(std::strcmp(resp[2].resp, "s") == 0);
    free_like_libpam(resp, 3);
}

TEST_CASE("a batch handler's answers go straight into the array libpam receives") {
    const char* written = nullptr;
    pam::conversation conv([&](const pam::message_batch&, pam::reply_batch& replies) {
        replies[0] = pam::reply::answer("pw");
        CHECK(replies[0].has_answer());
        CHECK(replies[0].error() == pam::failure::none);
        CHECK(replies[0].text() == "pw");
        CHECK_FALSE(replies[1].has_answer());
        CHECK(replies[1].text().empty());
        written = replies[0].text().data();
    });
    messages m{{PAM_PROMPT_ECHO_OFF, "pw"}, {PAM_TEXT_INFO, "-"}};
    ::pam_response* resp = nullptr;
    std::size_t allocations = 0;
    {
        wrapped::armed count;
        REQUIRE(call(conv, 2, m.get(), &resp) == PAM_SUCCESS);
        allocations = wrapped::state().allocations;
    }
    CHECK(allocations == 2);  // the array + the answer, nothing in between
    CHECK(resp[0].resp == written);
    CHECK(resp[0].resp_retcode == 0);
    CHECK(resp[1].resp == nullptr);
    CHECK(resp[1].resp_retcode == 0);
    free_like_libpam(resp, 2);
}

TEST_CASE("a batch slot given a second reply wipes and frees the answer it held") {
    pam::conversation conv([](const pam::message_batch&, pam::reply_batch& replies) {
        replies[0] = pam::reply::answer("first");
        replies[0] = pam::reply::answer("second");
    });
    messages m{{PAM_PROMPT_ECHO_OFF, "pw"}};
    ::pam_response* resp = nullptr;
    {
        wrapped::armed count;
        REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
        CHECK(wrapped::state().frees == 1);          // "first"
        CHECK(wrapped::state().frees_nonzero == 0);  // wiped before it was freed
    }
    CHECK(std::strcmp(resp[0].resp, "second") == 0);
    free_like_libpam(resp, 1);
}

TEST_CASE("a refusal in a batch slot fails the call unless the slot gets another reply") {
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_PROMPT_ECHO_ON, "b"}};
    SUBCASE("refused, then answered") {
        pam::conversation conv([](const pam::message_batch&, pam::reply_batch& replies) {
            replies[0] = pam::reply::refuse(pam::failure::timed_out);
            CHECK(replies[0].error() == pam::failure::timed_out);
            CHECK_FALSE(replies[0].has_answer());
            replies[0] = pam::reply::answer("late");
            replies[1] = pam::reply::answer("b");
        });
        ::pam_response* resp = nullptr;
        REQUIRE(call(conv, 2, m.get(), &resp) == PAM_SUCCESS);
        CHECK(resp[0].resp_retcode == 0);
        CHECK(std::strcmp(resp[0].resp, "late") == 0);
        free_like_libpam(resp, 2);
    }
    SUBCASE("answered, then refused") {
        pam::conversation conv([](const pam::message_batch&, pam::reply_batch& replies) {
            replies[0] = pam::reply::answer("a");
            replies[1] = pam::reply::answer("b");
            replies[1] = pam::reply::refuse(pam::failure::cancelled);
        });
        wrapped::armed count;
        expect_refused(conv, m, pam::failure::cancelled);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);  // answers wiped, the array all zero
    }
    SUBCASE("the first failed slot decides") {
        pam::conversation conv([](const pam::message_batch&, pam::reply_batch& replies) {
            replies[1] = pam::reply::refuse(pam::failure::input_closed);  // slot 0 unanswered
        });
        expect_refused(conv, m, pam::failure::unanswered_prompt);
    }
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("a batch handler that throws after answering leaves nothing behind") {
    pam::conversation conv([](const pam::message_batch&, pam::reply_batch& replies) {
        replies[0] = pam::reply::answer("secret");
        throw std::runtime_error("window closed");
    });
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_PROMPT_ECHO_OFF, "b"}};
    {
        wrapped::armed count;
        expect_refused(conv, m, pam::failure::handler_threw);
        CHECK(wrapped::state().live_count == 0);
        CHECK(wrapped::state().frees_nonzero == 0);
    }
    CHECK_THROWS_WITH_AS(std::rethrow_exception(conv.take_exception()), "window closed",
                         std::runtime_error);
}
#endif

TEST_CASE("a radio prompt is answered like an echo-on prompt") {
    pam::conversation conv([](const pam::message& m) {
        CHECK(m.kind() == pam::style::radio);
        CHECK(m.is_prompt());
        CHECK_FALSE(m.is_secret());
        return pam::reply::answer("yes");
    });
    messages m{{PAM_RADIO_TYPE, "Continue?"}};
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "yes") == 0);
    free_like_libpam(resp, 1);
}

TEST_CASE("a binary prompt reaches the handler as a packet and the ready handlers refuse it") {
    static const unsigned char packet[] = {0, 0, 0, 6, 1, 0};
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): pam_message.msg is char*
    const char* raw = reinterpret_cast<const char*>(packet);
    const void* seen = nullptr;
    pam::conversation conv([&](const pam::message& m) {
        seen = m.binary();
        CHECK(m.text().empty());
        return pam::reply::refuse();
    });
    messages m{{PAM_BINARY_PROMPT, raw}};
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(seen == packet);

    pam::conversation script(pam::scripted({"unused"}));
    CHECK(call(script, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(script.handler().answers_used() == 0);
}

TEST_CASE("re-entering the conversation from its handler is refused") {
    messages inner{{PAM_TEXT_INFO, "inner"}};
    int inner_rc = 0;
    pam::conversation_state* self = nullptr;
    pam::conversation conv([&](const pam::message&) {
        ::pam_conv c = self->c_conv();
        ::pam_response* r = nullptr;
        inner_rc = c.conv(1, inner.get(), &r, c.appdata_ptr);
        return pam::reply::none();
    });
    self = &conv;
    messages m{{PAM_TEXT_INFO, "outer"}};
    ::pam_response* resp = nullptr;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    CHECK(inner_rc == PAM_CONV_ERR);
    // The refused inner call does not rewrite the outcome of the outer one.
    CHECK(conv.last_failure() == pam::failure::none);
    free_like_libpam(resp, 1);
}

TEST_CASE("scripted answers prompts in order and fails cleanly when they run out") {
    pam::conversation conv(pam::scripted({"one", "two"}));
    messages m{{PAM_PROMPT_ECHO_OFF, "a"}, {PAM_TEXT_INFO, "note"}, {PAM_PROMPT_ECHO_ON, "b"}};
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, 3, m.get(), &resp) == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "one") == 0);
    CHECK(std::strcmp(resp[2].resp, "two") == 0);
    free_like_libpam(resp, 3);
    REQUIRE(conv.handler().transcript().size() == 1);
    CHECK(conv.handler().transcript()[0] == "note");
    messages more{{PAM_PROMPT_ECHO_OFF, "c"}};
    ::pam_response* none = untouched;
    CHECK(call(conv, 1, more.get(), &none) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::input_closed);
    CHECK(none == untouched);
}

namespace {

pam::terminal terminal_on(int in_fd, int prompt_fd, int timeout_ms = 2000) {
    pam::terminal_options o;
    o.input_fd = in_fd;
    o.prompt_fd = prompt_fd;
    o.timeout_ms = timeout_ms;
    return pam::terminal(o);
}
}  // namespace

TEST_CASE("terminal reads one answer per line and consumes nothing past it") {
    pipe_pair input, prompts;
    input.write("first\nsecond\n");
    pam::conversation conv(terminal_on(input.read_end, prompts.write_end));
    messages m{{PAM_PROMPT_ECHO_ON, "A: "}, {PAM_PROMPT_ECHO_OFF, "B: "}};
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, 2, m.get(), &resp) == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "first") == 0);
    CHECK(std::strcmp(resp[1].resp, "second") == 0);
    free_like_libpam(resp, 2);
    char shown[16] = {};
    CHECK(::read(prompts.read_end, shown, sizeof shown - 1) == 6);
    CHECK(std::string_view(shown) == "A: B: ");
}

TEST_CASE(
    "terminal refuses an overlong line and drains it, so the next prompt gets the next line") {
    pipe_pair input, prompts;
    input.write(std::string(700, 'z') + "\nnext\n");
    pam::conversation conv(terminal_on(input.read_end, prompts.write_end));
    messages m{{PAM_PROMPT_ECHO_OFF, "pw: "}};
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::answer_too_long);
    CHECK(resp == untouched);
    resp = nullptr;
    REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "next") == 0);
    free_like_libpam(resp, 1);
}

TEST_CASE("terminal at end of input is input_closed; a last line without newline still counts") {
    pipe_pair input, prompts;
    input.write("last");
    input.close_writer();
    pam::conversation conv(terminal_on(input.read_end, prompts.write_end));
    messages m{{PAM_PROMPT_ECHO_ON, "q: "}};
    ::pam_response* resp = nullptr;
    REQUIRE(call(conv, 1, m.get(), &resp) == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "last") == 0);
    free_like_libpam(resp, 1);
    resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::input_closed);
}

TEST_CASE("terminal times out with poll, not with a signal") {
    pipe_pair input, prompts;
    pam::conversation conv(terminal_on(input.read_end, prompts.write_end, 50));
    messages m{{PAM_PROMPT_ECHO_ON, "q: "}};
    ::pam_response* resp = untouched;
    CHECK(call(conv, 1, m.get(), &resp) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::timed_out);
}

TEST_CASE("terminal in non-interactive mode fails prompts but still shows info") {
    pipe_pair input, prompts;
    pam::terminal_options o;
    o.input_fd = input.read_end;
    o.prompt_fd = prompts.write_end;
    o.interactive = false;
    pam::conversation conv{pam::terminal(o)};
    messages info{{PAM_TEXT_INFO, "shown"}};
    ::pam_response* resp = nullptr;
    CHECK(call(conv, 1, info.get(), &resp) == PAM_SUCCESS);
    free_like_libpam(resp, 1);
    messages prompt{{PAM_PROMPT_ECHO_ON, "q: "}};
    resp = untouched;
    CHECK(call(conv, 1, prompt.get(), &resp) == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::input_closed);
}

namespace {
// A pseudo-terminal: the test types on master, the conversation reads slave.
struct pty_pair {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    int slave = -1;
    pty_pair() {
        REQUIRE(master >= 0);
        REQUIRE(::grantpt(master) == 0);
        REQUIRE(::unlockpt(master) == 0);
        slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
        REQUIRE(slave >= 0);
    }
    ~pty_pair() {
        if (slave >= 0) ::close(slave);
        if (master >= 0) ::close(master);
    }
    pty_pair(const pty_pair&) = delete;
    pty_pair& operator=(const pty_pair&) = delete;
};
}  // namespace

TEST_CASE("terminal turns echo off for secrets on a real terminal and restores it") {
    pty_pair pty;
    const int master = pty.master;
    const int slave = pty.slave;
    termios before{};
    REQUIRE(::tcgetattr(slave, &before) == 0);
    REQUIRE((before.c_lflag & ECHO) != 0);

    pam::conversation conv(terminal_on(slave, slave));
    // Typed before the prompt: TCSAFLUSH would discard it, so type after.
    messages m{{PAM_PROMPT_ECHO_OFF, "Password: "}};
    ::pam_response* resp = nullptr;
    int rc = 0;
    {
        pid_t typist = ::fork();
        REQUIRE(typist >= 0);
        if (typist == 0) {
            ::usleep(200000);
            static_cast<void>(::write(master, "hidden\n", 7));
            ::_exit(0);
        }
        rc = call(conv, 1, m.get(), &resp);
        int status = 0;
        ::waitpid(typist, &status, 0);
    }
    REQUIRE(rc == PAM_SUCCESS);
    CHECK(std::strcmp(resp[0].resp, "hidden") == 0);
    free_like_libpam(resp, 1);

    termios after{};
    REQUIRE(::tcgetattr(slave, &after) == 0);
    CHECK((after.c_lflag & ECHO) != 0);
    // What the terminal showed: the prompt and a newline, never the secret.
    ::usleep(50000);
    char screen[256] = {};
    int flags = ::fcntl(master, F_GETFL);
    ::fcntl(master, F_SETFL, flags | O_NONBLOCK);
    ssize_t n = ::read(master, screen, sizeof screen - 1);
    REQUIRE(n > 0);
    std::string shown(screen, static_cast<std::size_t>(n));
    CHECK(shown.find("Password: ") != std::string::npos);
    CHECK(shown.find("hidden") == std::string::npos);
}

TEST_CASE("response_array frees and wipes every resp it still owns") {
    wrapped::armed count;
    {
        auto made = pam::response_array::try_zeroed(3);
        REQUIRE(made);
        (*made)[0].resp = handoff::c_strdup_raw("first-secret");
        (*made)[2].resp = handoff::c_strdup_raw("second-secret");
        CHECK(wrapped::state().live_count == 3);
    }
    CHECK(wrapped::state().live_count == 0);
    CHECK(wrapped::state().frees == 3);
    CHECK(wrapped::state().frees_nonzero == 0);
}

TEST_CASE("Ctrl-C at a secret prompt cancels, restores echo and the old SIGINT handler") {
    pty_pair pty;
    const int slave = pty.slave;
    struct sigaction before {};
    REQUIRE(::sigaction(SIGINT, nullptr, &before) == 0);

    pam::conversation conv(terminal_on(slave, slave, 5000));
    messages m{{PAM_PROMPT_ECHO_OFF, "Password: "}, {PAM_PROMPT_ECHO_ON, "never asked: "}};
    ::pam_response* resp = untouched;
    pid_t parent = ::getpid();
    pid_t interrupter = ::fork();
    REQUIRE(interrupter >= 0);
    if (interrupter == 0) {
        ::usleep(200000);
        ::kill(parent, SIGINT);
        ::_exit(0);
    }
    int rc = call(conv, 2, m.get(), &resp);
    int status = 0;
    ::waitpid(interrupter, &status, 0);
    CHECK(rc == PAM_CONV_ERR);
    CHECK(conv.last_failure() == pam::failure::cancelled);
    CHECK(resp == untouched);
    // The call ended at the cancelled prompt: the second was never shown.
    char screen[256] = {};
    int flags = ::fcntl(pty.master, F_GETFL);
    ::fcntl(pty.master, F_SETFL, flags | O_NONBLOCK);
    ssize_t n = ::read(pty.master, screen, sizeof screen - 1);
    std::string shown(screen, n > 0 ? static_cast<std::size_t>(n) : 0);
    CHECK(shown.find("Password: ") != std::string::npos);
    CHECK(shown.find("never asked") == std::string::npos);

    termios after{};
    REQUIRE(::tcgetattr(slave, &after) == 0);
    CHECK((after.c_lflag & ECHO) != 0);
    struct sigaction now {};
    REQUIRE(::sigaction(SIGINT, nullptr, &now) == 0);
    bool same_handler = now.sa_handler == before.sa_handler;
    CHECK(same_handler);
}
