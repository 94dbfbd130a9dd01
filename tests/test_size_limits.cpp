// Sizes at the edge of size_t: every count whose bytes do not fit is refused
// (errc::too_large) before anything is allocated, read or adopted, and never
// wraps into a small request. The "just past the limit" cases run everywhere;
// the cases marked 32-bit use counts that are ordinary on a 64-bit size_t (a
// 4 GiB array) and must be refused where size_t has 32 bits: they run on a
// 32-bit target (tools/check --ports, armhf under qemu-user) and are skipped
// elsewhere.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;

namespace {

constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();
constexpr bool narrow_size_t = sizeof(std::size_t) == 4;
constexpr bool wide_size_t = !narrow_size_t;

// A domain that hands out small blocks only and records the largest request
// it saw, so a test can tell a refused count (no request at all) from a
// wrapped one (a small request) and from an exact one that failed.
struct small_blocks {
    static constexpr std::size_t alignment = alignof(std::max_align_t);
    static constexpr std::size_t most = 4096;
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the domain's record
    static inline std::size_t requests = 0;
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the domain's record
    static inline std::size_t largest = 0;
    static void reset() noexcept { requests = largest = 0; }
    static void* note(std::size_t bytes, void* p) noexcept {
        ++requests;
        if (bytes > largest) largest = bytes;
        return p;
    }
    static void* allocate(std::size_t bytes) noexcept {
        return note(bytes, bytes <= most ? std::malloc(bytes) : nullptr);
    }
    static void* reallocate(void* p, std::size_t bytes) noexcept {
        return note(bytes, bytes <= most ? std::realloc(p, bytes) : nullptr);
    }
    static void deallocate(void* p) noexcept { std::free(p); }
};

using u64_array = handoff::malloc_array<std::uint64_t, small_blocks>;
using u64_vector = handoff::malloc_vector<std::uint64_t, small_blocks>;
constexpr std::size_t u64_most = size_max / sizeof(std::uint64_t);  // largest count that fits

// 2^29 eight-byte elements: 4 GiB, one byte past a 32-bit size_t once -1 is added.
constexpr std::size_t four_gib_of_u64 = std::size_t{1} << 29U;

// A C-style call that allocates one element in the tracked domain and reports
// `claimed` elements, as a faulty or hostile library might.
template <class Count>
int give_one_claiming(std::uint64_t** out, Count* count, Count claimed) {
    *out = static_cast<std::uint64_t*>(tracked::allocate(sizeof(std::uint64_t)));
    *count = claimed;
    return 0;
}

}  // namespace

TEST_CASE(
    "zeroed refuses one element past the largest byte count, and asks for that count exactly") {
    small_blocks::reset();
    auto past = u64_array::try_zeroed(u64_most + 1);
    CHECK(past.error() == errc::too_large);
    CHECK(small_blocks::requests == 0);
    // The largest count that fits is asked for whole (it fails as memory, not as size).
    auto at = u64_array::try_zeroed(u64_most);
    CHECK(at.error() == errc::out_of_memory);
    CHECK(small_blocks::largest == u64_most * sizeof(std::uint64_t));
}

TEST_CASE("32-bit: zeroed, uninitialized and copied_from refuse a 4 GiB array" *
          doctest::skip(wide_size_t)) {
    small_blocks::reset();
    CHECK(u64_array::try_zeroed(four_gib_of_u64).error() == errc::too_large);
    CHECK(u64_array::try_uninitialized(four_gib_of_u64).error() == errc::too_large);
    const std::uint64_t one = 1;  // never read: the count is refused first
    CHECK(u64_array::try_copied_from(&one, four_gib_of_u64).error() == errc::too_large);
    CHECK(small_blocks::requests == 0);
}

TEST_CASE("resize past the largest byte count is refused and leaves the array as it was") {
    small_blocks::reset();
    u64_array a = *u64_array::try_zeroed(2);
    std::uint64_t* before = a.data();
    small_blocks::reset();
    CHECK(a.try_resize(u64_most + 1) == errc::too_large);
    CHECK(small_blocks::requests == 0);
    if (narrow_size_t) CHECK(a.try_resize(four_gib_of_u64) == errc::too_large);
    CHECK(small_blocks::requests == 0);
    CHECK(a.size() == 2);
    CHECK(a.data() == before);
    CHECK(a.try_resize(u64_most) == errc::out_of_memory);
    CHECK(small_blocks::largest == u64_most * sizeof(std::uint64_t));
    CHECK(a.size() == 2);
}

TEST_CASE("vector growth past the largest count is refused for reserve, resize and append") {
    small_blocks::reset();
    u64_vector v;
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    const std::size_t capacity = v.capacity();
    small_blocks::reset();
    CHECK(v.try_reserve(u64_most + 1) == errc::too_large);
    CHECK(v.try_resize(u64_most + 1) == errc::too_large);
    // size() + n would wrap: 3 + (u64_most - 2) is one past the largest count.
    const std::uint64_t source = 7;  // never read: the count is refused first
    CHECK(v.try_append(&source, u64_most - 2) == errc::too_large);
    CHECK(v.try_append(&source, size_max) == errc::too_large);
    if (narrow_size_t) {
        CHECK(v.try_reserve(four_gib_of_u64) == errc::too_large);
        CHECK(v.try_resize(four_gib_of_u64) == errc::too_large);
        CHECK(v.try_append(&source, four_gib_of_u64 - 3) == errc::too_large);
    }
    CHECK(small_blocks::requests == 0);
    CHECK(v.size() == 3);
    CHECK(v.capacity() == capacity);
    // Exactly the largest count is asked for whole.
    CHECK(v.try_reserve(u64_most) == errc::out_of_memory);
    CHECK(small_blocks::largest == u64_most * sizeof(std::uint64_t));
    CHECK(v.size() == 3);
}

TEST_CASE("a string view of SIZE_MAX bytes is refused before it is read") {
    // The view's length is checked before a byte is read, so a view claiming
    // every byte of the address space is refused without touching `text`.
    const char text[] = "abc";
    const std::string_view all(static_cast<const char*>(text), size_max);
    CHECK(handoff::try_c_strdup<tracked>(all).error() == errc::too_large);
    CHECK(handoff::try_secure_c_strdup<tracked>(all).error() == errc::too_large);
    CHECK(state().live_count == 0);
}

TEST_CASE("32-bit: out_array refuses a 64-bit count that size_t cannot hold, and frees the block" *
          doctest::skip(wide_size_t)) {
    handoff_test::reset_state();
    using tracked_u64 = handoff::malloc_array<std::uint64_t, tracked>;
    tracked_u64 a;
    // 2^32 + 1 truncates to 1 in a 32-bit size_t: adopting one element of a
    // block the call said held four billion would be a silent wrap.
    std::uint64_t count = 0;
    REQUIRE(give_one_claiming(handoff::out_array(a, count), &count,
                              (std::uint64_t{1} << 32U) + 1) == 0);
    CHECK(a.empty());
    CHECK(a.data() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE(
    "out_array with a count whose bytes overflow size_t leaves the array empty and frees the "
    "block") {
    handoff_test::reset_state();
    using tracked_u64 = handoff::malloc_array<std::uint64_t, tracked>;
    tracked_u64 a;
    std::size_t count = 0;
    REQUIRE(give_one_claiming(handoff::out_array(a, count), &count, u64_most + 1) == 0);
    CHECK(a.empty());
    CHECK(a.data() == nullptr);
    // The block the call made is nobody's once the expression ends: freed, not leaked.
    CHECK(state().live_count == 0);
}
