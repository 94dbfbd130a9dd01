// malloc_array: pointer + length in a C allocation domain.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;

using int_array = handoff::malloc_array<int, tracked>;
using string_array = handoff::malloc_array<char*, tracked, handoff::owns_pointees>;

namespace {
// A struct with an owned field, like pam_response.
struct reply {
    char* text;
    int code;
};
struct frees_reply_text {
    static constexpr bool wipe_buffer = false;
    template <class Domain>
    static void release_element(reply& r) noexcept {
        Domain::deallocate(r.text);
        r.text = nullptr;
    }
};
using reply_array = handoff::malloc_array<reply, tracked, frees_reply_text>;

std::size_t huge_count() { return std::numeric_limits<std::size_t>::max() / sizeof(int) + 1; }
}  // namespace

static_assert(!std::is_copy_constructible_v<int_array>);
static_assert(std::is_nothrow_move_constructible_v<int_array>);
static_assert(std::is_nothrow_move_assignable_v<int_array>);

TEST_CASE("zeroed allocates n elements that are all zero") {
    handoff_test::reset_state();
    auto a = int_array::try_zeroed(8);
    REQUIRE(a);
    CHECK(a->size() == 8);
    CHECK(a->size_bytes() == 8 * sizeof(int));
    for (int v : *a) CHECK(v == 0);
    CHECK(state().live_count == 1);
}

TEST_CASE("uninitialized allocates without zeroing through allocate") {
    handoff_test::reset_state();
    auto a = int_array::try_uninitialized(3);
    REQUIRE(a);
    CHECK(a->size() == 3);
    CHECK(state().live_count == 1);
}

TEST_CASE("zero length owns no allocation and releases NULL") {
    handoff_test::reset_state();
    auto a = int_array::try_zeroed(0);
    REQUIRE(a);
    CHECK(a->empty());
    CHECK(a->data() == nullptr);
    CHECK_FALSE(static_cast<bool>(*a));
    CHECK(state().allocations == 0);
    CHECK(std::move(*a).release() == nullptr);
    auto b = int_array::try_uninitialized(0);
    REQUIRE(b);
    CHECK(b->data() == nullptr);
    CHECK(state().allocations == 0);
}

TEST_CASE("overflowing n * sizeof(T) is refused before any allocation") {
    handoff_test::reset_state();
    auto a = int_array::try_zeroed(huge_count());
    CHECK(a.error() == errc::too_large);
    auto b = int_array::try_uninitialized(huge_count());
    CHECK(b.error() == errc::too_large);
    CHECK(state().allocations == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("throwing factories map errors to standard exceptions") {
    handoff_test::reset_state();
    CHECK_THROWS_AS(int_array::zeroed(huge_count()), std::length_error);
    state().fail_at = 1;
    CHECK_THROWS_AS(int_array::zeroed(4), std::bad_alloc);
    CHECK(state().live_count == 0);
}

TEST_CASE("resize throws and leaves the array unchanged on failure") {
    handoff_test::reset_state();
    auto a = int_array::zeroed(2);
    a[0] = 1;
    state().fail_at = state().allocations + 1;
    CHECK_THROWS_AS(a.resize(1000), std::bad_alloc);
    CHECK(a.size() == 2);
    CHECK(a[0] == 1);
}
#endif

TEST_CASE("copied_from copies exactly n elements") {
    const int source[] = {1, 2, 3, 4};
    auto a = int_array::try_copied_from(source, 4);
    REQUIRE(a);
    CHECK(std::accumulate(a->begin(), a->end(), 0) == 10);
    auto empty = int_array::try_copied_from(nullptr, 0);
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("growing keeps the contents and zeroes the new tail") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(3);
    a[0] = 10;
    a[2] = 30;
    REQUIRE(a.try_resize(64) == errc::ok);
    CHECK(a.size() == 64);
    CHECK(a[0] == 10);
    CHECK(a[2] == 30);
    for (std::size_t i = 3; i < 64; ++i) CHECK(a[i] == 0);
    CHECK(state().live_count == 1);
}

TEST_CASE("growing an empty array allocates a zeroed one") {
    int_array a;
    REQUIRE(a.try_resize(5) == errc::ok);
    CHECK(a.size() == 5);
    CHECK(a[4] == 0);
}

TEST_CASE("shrinking keeps the head and resizing to zero frees") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(10);
    a[1] = 11;
    REQUIRE(a.try_resize(2) == errc::ok);
    CHECK(a.size() == 2);
    CHECK(a[1] == 11);
    REQUIRE(a.try_resize(0) == errc::ok);
    CHECK(a.data() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE("a failed growth leaves the array as it was") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(2);
    a[1] = 5;
    int* before = a.data();
    state().fail_at = state().allocations + 1;
    CHECK(a.try_resize(100) == errc::out_of_memory);
    CHECK(a.data() == before);
    CHECK(a.size() == 2);
    CHECK(a[1] == 5);
}

TEST_CASE("growth whose byte size overflows is refused") {
    auto a = *int_array::try_zeroed(1);
    CHECK(a.try_resize(huge_count()) == errc::too_large);
    CHECK(a.size() == 1);
}

TEST_CASE("release hands the buffer off and the array becomes empty") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(4);
    int* raw = std::move(a).release();
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(a.data() == nullptr);
    CHECK(state().live_count == 1);
    tracked::deallocate(raw);
    CHECK(state().live_count == 0);
}

TEST_CASE("release_with_size hands pointer and length off together") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(6);
    auto out = std::move(a).release_with_size();
    CHECK(out.size == 6);
    CHECK(out.data != nullptr);
    CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    tracked::deallocate(out.data);
    CHECK(state().live_count == 0);
}

TEST_CASE("adopt takes a C buffer with its length") {
    handoff_test::reset_state();
    {
        auto* raw = static_cast<int*>(tracked::allocate(3 * sizeof(int)));
        REQUIRE(raw != nullptr);
        auto a = int_array::adopt(raw, 3);
        CHECK(a.size() == 3);
        CHECK(a.data() == raw);
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("adopt of NULL with a count gives an empty array") {
    auto a = int_array::adopt(nullptr, 7);
    CHECK(a.empty());
}

TEST_CASE("adopt with zero count frees the pointer and gives an empty array") {
    handoff_test::reset_state();
    auto* raw = static_cast<int*>(tracked::allocate(sizeof(int)));
    auto a = int_array::adopt(raw, 0);
    CHECK(a.empty());
    CHECK(state().live_count == 0);
}

TEST_CASE("move assignment frees what the target held") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(2);
    auto b = *int_array::try_zeroed(3);
    a = std::move(b);
    CHECK(a.size() == 3);
    CHECK(b.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(state().live_count == 1);
}

TEST_CASE("owns_pointees frees every element string") {
    handoff_test::reset_state();
    {
        auto a = *string_array::try_zeroed(3);
        a[0] = (*handoff::try_c_strdup<tracked>("a")).release();
        a[2] = (*handoff::try_c_strdup<tracked>("c")).release();
        CHECK(state().live_count == 3);
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("shrinking an owning array frees the dropped elements") {
    handoff_test::reset_state();
    auto a = *string_array::try_zeroed(3);
    for (auto& s : a) s = (*handoff::try_c_strdup<tracked>("x")).release();
    REQUIRE(a.try_resize(1) == errc::ok);
    CHECK(state().live_count == 2);
}

TEST_CASE("a user element policy frees owned struct fields") {
    handoff_test::reset_state();
    {
        auto r = *reply_array::try_zeroed(2);
        r[1].text = (*handoff::try_c_strdup<tracked>("answer")).release();
        CHECK(r[0].text == nullptr);
        CHECK(state().live_count == 2);
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("building an array of owned strings cleans up at every failure point") {
    const char* words[] = {"alpha", "beta", "gamma", "delta"};
    std::size_t points = handoff_test::for_each_allocation_failure(
        [&](std::size_t) {
            auto a = string_array::try_zeroed(4);
            if (!a) {
                CHECK(a.error() == errc::out_of_memory);
                return;
            }
            for (std::size_t i = 0; i < 4; ++i) {
                auto s = handoff::try_c_strdup<tracked>(words[i]);
                if (!s) {
                    CHECK(s.error() == errc::out_of_memory);
                    return;  // `a` frees the strings made so far
                }
                (*a)[i] = s->release();
            }
            CHECK(std::strcmp((*a)[3], "delta") == 0);
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 5);
}

TEST_CASE("every growth path cleans up at every failure point") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            auto a = int_array::try_zeroed(2);
            if (!a) return;
            for (std::size_t n : {4u, 64u, 1024u}) {
                std::size_t before = a->size();
                errc e = a->try_resize(n);
                if (e != errc::ok) {
                    CHECK(e == errc::out_of_memory);
                    CHECK(a->size() == before);
                    return;
                }
            }
            CHECK(a->size() == 1024);
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 4);
}

TEST_CASE("copied_from cleans up at every failure point") {
    const int source[] = {4, 5, 6};
    std::size_t points = handoff_test::for_each_allocation_failure(
        [&](std::size_t) {
            auto a = int_array::try_copied_from(source, 3);
            CHECK(static_cast<bool>(a) == !state().injected);
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 1);
}

#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
TEST_CASE("span views the elements") {
    handoff_test::reset_state();
    auto made = int_array::try_zeroed(3);
    REQUIRE(made);
    auto a = std::move(*made);
    std::span<int> s = a.span();
    s[1] = 2;
    CHECK(a[1] == 2);
    CHECK(s.size() == 3);
}
#endif

namespace {
// Trivially copyable but not trivial: default member initialisers.
struct with_defaults {
    int id = 7;
    const char* name = "unnamed";
};
}  // namespace

TEST_CASE("copied_from takes trivially copyable types that are not trivial") {
    handoff_test::reset_state();
    const std::string_view words[] = {"one", "two"};
    auto views = handoff::malloc_array<std::string_view, tracked>::try_copied_from(words, 2);
    REQUIRE(views);
    CHECK((*views)[1] == "two");
    const with_defaults records[] = {with_defaults{}, with_defaults{9, "nine"}};
    auto copies = handoff::malloc_array<with_defaults, tracked>::try_copied_from(records, 2);
    REQUIRE(copies);
    CHECK((*copies)[0].id == 7);
    CHECK(std::string_view((*copies)[1].name) == "nine");
}

TEST_CASE("copied_from refuses a NULL source with a count and allocates nothing") {
    handoff_test::reset_state();
    auto a = int_array::try_copied_from(nullptr, 3);
    CHECK(a.error() == errc::null_pointer);
    CHECK(state().allocations == 0);
}

TEST_CASE("copied_from refuses a count whose byte size overflows") {
    int one = 1;
    auto a = int_array::try_copied_from(&one, huge_count());
    CHECK(a.error() == errc::too_large);
}

TEST_CASE("an array assigned a copy of its own middle keeps the right elements") {
    handoff_test::reset_state();
    const int source[] = {1, 2, 3, 4, 5};
    auto a = *int_array::try_copied_from(source, 5);
    a = *int_array::try_copied_from(a.data() + 1, 3);  // the source lies inside a
    REQUIRE(a.size() == 3);
    CHECK(a[0] == 2);
    CHECK(a[2] == 4);
    CHECK(state().live_count == 1);
}

TEST_CASE("self-move leaves an array as it was") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(3);
    a[2] = 9;
    int_array& alias = a;
    a = std::move(alias);
    CHECK(a.size() == 3);
    CHECK(a[2] == 9);
    CHECK(state().live_count == 1);
}

TEST_CASE("resizing to zero and back gives zeroed elements and owns no block between") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(4);
    a[0] = 5;
    REQUIRE(a.try_resize(0) == errc::ok);
    CHECK(a.data() == nullptr);
    CHECK(state().live_count == 0);
    REQUIRE(a.try_resize(3) == errc::ok);
    CHECK(a[0] == 0);
    CHECK(state().live_count == 1);
}
