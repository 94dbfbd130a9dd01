// C strings: c_strdup and c_string_list.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;
using tracked_list = handoff::c_string_list<tracked>;

TEST_CASE("c_strdup copies exactly the view plus a NUL") {
    handoff_test::reset_state();
    std::string_view whole = "password-and-more";
    auto s = handoff::try_c_strdup<tracked>(whole.substr(0, 8));
    REQUIRE(s);
    CHECK(std::strcmp(s->get(), "password") == 0);
    REQUIRE(state().live_count == 1);
    CHECK(state().live[0].bytes == 9);
}

TEST_CASE("c_strdup of an empty view gives an empty C string") {
    auto s = handoff::try_c_strdup("");
    REQUIRE(s);
    CHECK(s->get()[0] == '\0');
}

TEST_CASE("c_strdup does not read past the view") {
    // A view into a buffer with no NUL at its end: strlen would run off it.
    char buffer[4] = {'a', 'b', 'c', 'd'};
    auto s = handoff::try_c_strdup(std::string_view(buffer, 4));
    REQUIRE(s);
    CHECK(std::strcmp(s->get(), "abcd") == 0);
}

TEST_CASE("c_strdup refuses an embedded NUL and allocates nothing") {
    handoff_test::reset_state();
    using namespace std::string_literals;
    auto s = handoff::try_c_strdup<tracked>("pass\0word"s);
    CHECK(s.error() == errc::embedded_nul);
    CHECK(s->get() == nullptr);
    CHECK(state().allocations == 0);
}

TEST_CASE("c_strdup reports out_of_memory") {
    handoff_test::reset_state();
    state().fail_at = 1;
    auto s = handoff::try_c_strdup<tracked>("x");
    CHECK(s.error() == errc::out_of_memory);
    CHECK(state().live_count == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("throwing c_strdup throws invalid_argument on embedded NUL") {
    using namespace std::string_literals;
    CHECK_THROWS_AS(handoff::c_strdup("a\0b"s), std::invalid_argument);
}

TEST_CASE("throwing c_strdup of a view copies exactly the view") {
    std::string_view whole = "user:secret";
    handoff::c_unique_ptr<char> user = handoff::c_strdup(whole.substr(0, 4));
    CHECK(std::strcmp(user.get(), "user") == 0);
}

TEST_CASE("throwing c_strdup throws bad_alloc on allocation failure") {
    handoff_test::reset_state();
    state().fail_at = 1;
    CHECK_THROWS_AS(handoff::c_strdup<tracked>("x"), std::bad_alloc);
}

TEST_CASE("from builds a list with exceptions for errors") {
    using namespace std::string_literals;
    std::vector<std::string> bad = {"ok", "no\0t"s};
    CHECK_THROWS_AS(handoff::c_string_list<>::from(bad), std::invalid_argument);
    auto good = handoff::c_string_list<>::from({"x", "y"});
    CHECK(good.size() == 2);
}
#endif

TEST_CASE("c_strdup_raw returns malloc memory or NULL") {
    char* p = handoff::c_strdup_raw("raw");
    REQUIRE(p != nullptr);
    CHECK(std::strcmp(p, "raw") == 0);
    std::free(p);
    using namespace std::string_literals;
    CHECK(handoff::c_strdup_raw("a\0b"s) == nullptr);
}

TEST_CASE("c_string_list builds a NULL-terminated array from a range") {
    handoff_test::reset_state();
    std::vector<std::string> args = {"prog", "--flag", "value"};
    auto list = tracked_list::try_from(args);
    REQUIRE(list);
    CHECK(list->size() == 3);
    char** argv = list->get();
    CHECK(std::strcmp(argv[0], "prog") == 0);
    CHECK(std::strcmp(argv[2], "value") == 0);
    CHECK(argv[3] == nullptr);
    CHECK(state().live_count == 4);
}

TEST_CASE("c_string_list iterates its strings as views") {
    auto list = handoff::c_string_list<>::try_from({"a", "bb", "ccc"});
    REQUIRE(list);
    std::string joined;
    for (std::string_view s : *list) joined += std::string(s) + ",";
    CHECK(joined == "a,bb,ccc,");
    CHECK((*list)[1] == "bb");
}

TEST_CASE("an empty c_string_list built from a range still has its terminator") {
    std::vector<std::string> none;
    auto list = handoff::c_string_list<>::try_from(none);
    REQUIRE(list);
    REQUIRE(list->get() != nullptr);
    CHECK(list->get()[0] == nullptr);
    CHECK(list->empty());
    CHECK(list->begin() == list->end());
}

TEST_CASE("c_string_list adopts a NULL-terminated array from C") {
    handoff_test::reset_state();
    {
        auto** raw = static_cast<char**>(tracked::allocate(3 * sizeof(char*)));
        REQUIRE(raw != nullptr);
        raw[0] = (*handoff::try_c_strdup<tracked>("HOME=/root")).release();
        raw[1] = (*handoff::try_c_strdup<tracked>("TERM=xterm")).release();
        raw[2] = nullptr;
        auto env = tracked_list::adopt(raw);
        CHECK(env.size() == 2);
        CHECK(env[1] == "TERM=xterm");
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("c_string_list adopts NULL as an empty list") {
    auto list = handoff::c_string_list<>::adopt(nullptr);
    CHECK(list.get() == nullptr);
    CHECK(list.empty());
    CHECK(list.begin() == list.end());
}

TEST_CASE("c_string_list release hands off strings and array") {
    handoff_test::reset_state();
    auto list = *tracked_list::try_from({"one"});
    char** raw = std::move(list).release();
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is specified
    CHECK(list.get() == nullptr);
    CHECK(list.size() == 0);
    CHECK(state().live_count == 2);
    tracked::deallocate(raw[0]);
    tracked::deallocate(raw);
    CHECK(state().live_count == 0);
}

TEST_CASE("c_string_list refuses a string with an embedded NUL and frees the rest") {
    handoff_test::reset_state();
    using namespace std::string_literals;
    std::vector<std::string> args = {"fine", "bro\0ken"s, "never"};
    auto list = tracked_list::try_from(args);
    CHECK(list.error() == errc::embedded_nul);
    CHECK(state().live_count == 0);
}

TEST_CASE("c_string_list cleans up at every failure point") {
    std::vector<std::string> args = {"a", "b", "c"};
    std::size_t points = handoff_test::for_each_allocation_failure(
        [&](std::size_t) {
            auto list = tracked_list::try_from(args);
            if (state().injected) {
                CHECK(list.error() == errc::out_of_memory);
            } else {
                CHECK(list->size() == 3);
            }
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 4);
}

TEST_CASE("c_strdup refuses a NULL C string with null_pointer instead of calling strlen") {
    handoff_test::reset_state();
    const char* missing = nullptr;  // what getenv returns for an unset variable
    auto s = handoff::try_c_strdup<tracked>(missing);
    CHECK(s.error() == errc::null_pointer);
    CHECK(s->get() == nullptr);
    CHECK(handoff::c_strdup_raw(missing) == nullptr);
    CHECK(state().allocations == 0);
}

TEST_CASE("c_string_list refuses a NULL C string in a range and frees the rest") {
    handoff_test::reset_state();
    std::vector<const char*> args = {"first", nullptr, "third"};
    auto list = tracked_list::try_from(args);
    CHECK(list.error() == errc::null_pointer);
    CHECK(list->get() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE("c_string_list refuses a NULL C string in a braced list") {
    handoff_test::reset_state();
    const char* missing = nullptr;
    auto list = tracked_list::try_from({"first", missing});
    CHECK(list.error() == errc::null_pointer);
    CHECK(state().live_count == 0);
}

TEST_CASE("c_string_list takes C strings, std::string and std::string_view in one braced list") {
    std::string owned = "owned";
    std::string_view viewed = "viewed";
    char mutable_text[] = "mutable";
    char* raw = mutable_text;
    auto list = tracked_list::try_from({"literal", owned, viewed, raw});
    REQUIRE(list);
    CHECK(list->size() == 4);
    CHECK((*list)[1] == "owned");
    CHECK((*list)[3] == "mutable");
}

TEST_CASE("c_string_list rebuilt from its own strings keeps them") {
    handoff_test::reset_state();
    auto list = *tracked_list::try_from({"a", "bb", "ccc"});
    list = *tracked_list::try_from(list);  // a range of views into list itself
    REQUIRE(list.size() == 3);
    CHECK(list[2] == "ccc");
    CHECK(state().live_count == 4);
    tracked_list& alias = list;
    list = std::move(alias);  // self-move keeps it
    CHECK(list.size() == 3);
    CHECK(list[0] == "a");
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("from throws invalid_argument for a NULL C string") {
    std::vector<const char*> args = {nullptr};
    CHECK_THROWS_AS(handoff::c_string_list<>::from(args), std::invalid_argument);
}
#endif

TEST_CASE("c_string_list reset frees the strings and the array, and the list is empty") {
    handoff_test::reset_state();
    auto list = *tracked_list::try_from({"one", "two"});
    CHECK(state().live_count == 3);
    list.reset();
    CHECK(state().live_count == 0);
    CHECK(list.get() == nullptr);
    CHECK(list.size() == 0);
    CHECK(list.empty());
    list.reset();  // twice is harmless
    CHECK(state().live_count == 0);
}
