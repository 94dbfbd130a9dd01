// Secrets: wiping owners, secure_clear and secret_string. The tracked domain
// checks at every free whether the bytes were zero, which observes the wipe.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstring>
#include <string>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;
using tracked_secret = handoff::basic_secret_string<tracked>;

namespace {
struct credentials {
    char user[16];
    char pin[8];
};
}  // namespace

TEST_CASE("a plain owner frees without wiping (the observation can fail)") {
    handoff_test::reset_state();
    { auto s = *handoff::try_c_strdup<tracked>("hunter2"); }
    CHECK(state().frees == 1);
    CHECK(state().frees_nonzero == 1);
}

TEST_CASE("secure_c_string wipes every byte before freeing") {
    handoff_test::reset_state();
    { auto s = *handoff::try_secure_c_strdup<tracked>("hunter2"); }
    CHECK(state().frees == 1);
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secure_c_string released to C is handed over intact") {
    handoff_test::reset_state();
    auto s = *handoff::try_secure_c_strdup<tracked>("hunter2");
    char* raw = s.release();
    CHECK(std::strcmp(raw, "hunter2") == 0);
    tracked::deallocate(raw);
    CHECK(state().frees_nonzero == 1);
}

TEST_CASE("secure_c_unique_ptr wipes the whole object") {
    handoff_test::reset_state();
    {
        handoff::secure_c_unique_ptr<credentials, tracked> c(
            static_cast<credentials*>(tracked::allocate(sizeof(credentials))));
        REQUIRE(c);
        std::memset(c.get(), 'k', sizeof(credentials));  // user name and PIN
    }
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secure_malloc_array wipes the buffer before freeing") {
    handoff_test::reset_state();
    {
        auto a = *handoff::secure_malloc_array<char, tracked>::try_zeroed(32);
        std::memset(a.data(), 'k', a.size());
    }
    CHECK(state().frees_all_zero == 1);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("secure_malloc_array growth wipes the old buffer instead of realloc") {
    handoff_test::reset_state();
    auto a = *handoff::secure_malloc_array<char, tracked>::try_zeroed(4);
    std::memcpy(a.data(), "key!", 4);
    REQUIRE(a.try_resize(4096) == errc::ok);
    CHECK(std::memcmp(a.data(), "key!", 4) == 0);
    CHECK(state().frees == 1);
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secure_malloc_array shrink wipes the dropped tail") {
    handoff_test::reset_state();
    {
        auto a = *handoff::secure_malloc_array<char, tracked>::try_zeroed(8);
        std::memset(a.data(), 's', 8);
        REQUIRE(a.try_resize(2) == errc::ok);
        CHECK(a.size() == 2);
        CHECK(a.data()[0] == 's');
    }
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("owns_secret_strings wipes each string and the array") {
    handoff_test::reset_state();
    {
        auto a =
            *handoff::malloc_array<char*, tracked, handoff::owns_secret_strings>::try_zeroed(2);
        for (auto [i, text] :
             {std::pair<std::size_t, const char*>{0, "old-password"}, {1, "new-password"}}) {
            auto copy = handoff::try_c_strdup<tracked>(text);
            REQUIRE(copy);
            a[i] = copy->release();
        }
    }
    CHECK(state().frees == 3);
    CHECK(state().frees_all_zero == 3);
}

TEST_CASE("secure_clear wipes a std::string including its small buffer") {
    std::string s = "short";  // fits the small-string buffer
    const char* where = s.data();
    handoff::secure_clear(s);
    CHECK(s.empty());
    CHECK(s.data() == where);
    for (std::size_t i = 0; i < 5; ++i) CHECK(where[i] == '\0');
}

TEST_CASE("secret_string keeps its bytes in the domain's heap, never inline") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("pin");
    CHECK(state().live_count == 1);
    CHECK(s.view() == "pin");
    CHECK(std::strcmp(s.c_str(), "pin") == 0);
    const char* p = s.c_str();
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the object's own bytes
    const char* object_begin = reinterpret_cast<const char*>(&s);
    bool inside = p >= object_begin && p < object_begin + sizeof(s);
    CHECK_FALSE(inside);
}

TEST_CASE("secret_string wipes its buffer on destruction") {
    handoff_test::reset_state();
    { auto s = *tracked_secret::try_from("correct horse"); }
    CHECK(state().frees == 1);
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secret_string wipes the old buffer when it grows") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("a");
    for (int i = 0; i < 100; ++i) REQUIRE(s.try_push_back('x') == errc::ok);
    CHECK(s.size() == 101);
    CHECK(state().frees >= 1);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("secret_string clear and pop_back wipe what they drop") {
    auto s = *handoff::secret_string::try_from("abc");
    const char* p = s.c_str();
    s.pop_back();
    CHECK(s.view() == "ab");
    CHECK(p[2] == '\0');
    s.clear();
    CHECK(s.empty());
    CHECK(p[0] == '\0');
}

TEST_CASE("secret_string move leaves the source empty") {
    auto a = *handoff::secret_string::try_from("x");
    handoff::secret_string b = std::move(a);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(a.c_str()[0] == '\0');
    CHECK(b.view() == "x");
}

TEST_CASE("secret_string hands its buffer to C without a copy") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("token");
    const char* before = s.c_str();
    auto c = std::move(s).try_release_c_string();
    REQUIRE(c);
    CHECK(c->get() == before);
    CHECK(state().live_count == 1);
    c->reset();
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secret_string refuses to hand over a string with an embedded NUL") {
    auto s = *handoff::secret_string::try_from(std::string_view("a\0b", 3));
    auto c = std::move(s).try_release_c_string();
    CHECK(c.error() == errc::embedded_nul);
    CHECK(s.size() == 3);  // NOLINT(bugprone-use-after-move): a refusal leaves it unchanged
}

TEST_CASE("secret_string growth cleans up at every failure point") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            tracked_secret s;
            for (int i = 0; i < 40; ++i) {
                errc e = s.try_push_back('p');
                if (e != errc::ok) {
                    CHECK(e == errc::out_of_memory);
                    CHECK(s.size() == static_cast<std::size_t>(i));
                    return;
                }
            }
            CHECK(s.size() == 40);
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points >= 2);
    CHECK(state().frees_nonzero == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("secret_string throwing append reports allocation failure") {
    handoff_test::reset_state();
    state().fail_at = 1;
    tracked_secret s;
    CHECK_THROWS_AS(s.append("x"), std::bad_alloc);
    CHECK(s.empty());
}
#endif

TEST_CASE("secret_string appends a view of itself when the buffer must grow") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("0123456789abcde");  // 15 bytes: the buffer is full
    REQUIRE(s.size() == s.capacity());
    REQUIRE(s.try_append(s.view()) == errc::ok);
    CHECK(s.view() == "0123456789abcde0123456789abcde");
    CHECK(s.c_str()[s.size()] == '\0');
    CHECK(state().frees_nonzero == 0);  // the old buffer was still wiped
}

TEST_CASE("secret_string appends a part of itself that overlaps where it writes") {
    auto s = *tracked_secret::try_from("abc");
    REQUIRE(s.try_reserve(64) == errc::ok);
    // A view running past the content into the zeroed spare capacity.
    std::string_view overlapping(s.c_str() + 1, 6);
    REQUIRE(s.try_append(overlapping) == errc::ok);
    CHECK(s.view() == std::string_view("abcbc\0\0\0\0", 9));
    REQUIRE(s.try_append(s.view().substr(0, 2)) == errc::ok);
    CHECK(s.view().substr(9) == "ab");
}

TEST_CASE("appending an empty view to a secret_string with a buffer changes nothing") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("kept");
    const char* before = s.c_str();
    std::size_t allocations = state().allocations;
    REQUIRE(s.try_append(std::string_view()) == errc::ok);  // data() is NULL: never read
    REQUIRE(s.try_append(s.view().substr(4)) == errc::ok);  // empty, at the terminator
    CHECK(s.view() == "kept");
    CHECK(s.c_str() == before);
    CHECK(s.c_str()[4] == '\0');
    CHECK(state().allocations == allocations);
}

TEST_CASE("secret_string grows from a view of itself at every failure point") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            auto made = tracked_secret::try_from("0123456789abcde");
            if (!made) return;
            tracked_secret s = std::move(*made);
            for (int round = 0; round < 3; ++round) {
                std::string before(s.view());
                errc e = s.try_append(s.view());
                if (e != errc::ok) {
                    CHECK(e == errc::out_of_memory);
                    CHECK(s.view() == before);
                    return;
                }
                CHECK(s.view() == before + before);
            }
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 4);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("a plain C string becomes a secure one of the same domain without a copy") {
    handoff_test::reset_state();
    auto plain = *handoff::try_c_strdup<tracked>("pin");
    char* where = plain.get();
    handoff::secure_c_string<tracked> secure = std::move(plain);
    CHECK(secure.get() == where);
    CHECK(plain.get() == nullptr);
    secure.reset();
    CHECK(state().frees_all_zero == 1);
}

TEST_CASE("secure_c_strdup refuses a NULL C string") {
    auto s = handoff::try_secure_c_strdup<tracked>(static_cast<const char*>(nullptr));
    CHECK(s.error() == errc::null_pointer);
}
