// The edges of handoff.hpp that the other unit tests pass by: NULL given to a
// domain or a deleter, zero sizes, an array moved into itself, sizes that
// overflow, and the empty secret_string. Each case states the behaviour the
// header promises there; tools/coverage shows which lines and branches they
// reach (CONTRIBUTING.md).
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;

namespace {

constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();

// A C library's allocator and deleter that count their calls.
// A domain is a type without state: what it counts is global.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int frees_called = 0;
void* counted_malloc(std::size_t n) { return std::malloc(n); }
void counted_free(void* p) {
    ++frees_called;
    std::free(p);
}
struct handle {
    int id;
};
void counted_close(handle* h) {
    ++frees_called;
    std::free(h);
}
using counted_domain = handoff::allocator_domain<counted_malloc, counted_free>;
using counted_deleter = handoff::deleter_domain<counted_close>;

// An allocator without calloc: zeroed memory comes from allocate + memset.
struct no_calloc {
    static void* allocate(std::size_t n) noexcept { return tracked::allocate(n); }
    static void deallocate(void* p) noexcept { tracked::deallocate(p); }
};

using int_array = handoff::malloc_array<int, tracked>;
using tracked_secret = handoff::basic_secret_string<tracked>;

}  // namespace

// ---------------------------------------------------------------------------
// Domains and deleters accept NULL, like free(3)
// ---------------------------------------------------------------------------

TEST_CASE("an allocator_domain releases NULL without calling the library's free") {
    frees_called = 0;
    counted_domain::deallocate(nullptr);
    CHECK(frees_called == 0);
    void* p = counted_domain::allocate(8);
    REQUIRE(p != nullptr);
    counted_domain::deallocate(p);
    CHECK(frees_called == 1);
}

TEST_CASE("a deleter_domain destroys NULL without calling the library's function") {
    frees_called = 0;
    counted_deleter::destroy<handle>(nullptr);
    CHECK(frees_called == 0);
    auto* h = static_cast<handle*>(std::malloc(sizeof(handle)));
    REQUIRE(h != nullptr);
    counted_deleter::destroy(h);
    CHECK(frees_called == 1);
}

TEST_CASE("the secure deleters accept NULL") {
    handoff_test::reset_state();
    handoff::secure_deleter<int, tracked>{}(nullptr);
    handoff::secure_string_deleter<tracked>{}(nullptr);
    CHECK(state().frees == 0);
}

TEST_CASE("secure_wipe of NULL or of zero bytes touches nothing") {
    char byte = 'x';
    handoff::secure_wipe(nullptr, 16);
    handoff::secure_wipe(&byte, 0);
    CHECK(byte == 'x');
    handoff::secure_wipe(&byte, 1);
    CHECK(byte == '\0');
}

// ---------------------------------------------------------------------------
// The helpers under the factories
// ---------------------------------------------------------------------------

TEST_CASE("checked_multiply: a zero size never overflows, n * size past SIZE_MAX does") {
    std::size_t out = 1;
    CHECK(handoff::detail::checked_multiply(size_max, 0, out));
    CHECK(out == 0);
    CHECK_FALSE(handoff::detail::checked_multiply(size_max / 2 + 1, 2, out));
    CHECK(handoff::detail::checked_multiply(3, 4, out));
    CHECK(out == 12);
}

TEST_CASE("a domain without calloc refuses a zeroed size that overflows, allocating nothing") {
    handoff_test::reset_state();
    CHECK(handoff::detail::allocate_zeroed<no_calloc>(size_max / 2 + 1, 2) == nullptr);
    CHECK(state().allocations == 0);
    void* p = handoff::detail::allocate_zeroed<no_calloc>(4, 2);
    REQUIRE(p != nullptr);
    CHECK(std::memcmp(p, "\0\0\0\0\0\0\0\0", 8) == 0);
    no_calloc::deallocate(p);
    CHECK(state().live_count == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("an error code outside errc throws std::bad_alloc, the most general failure") {
    CHECK_THROWS_AS(handoff::detail::throw_error(static_cast<errc>(200)), std::bad_alloc);
    CHECK_THROWS_AS(handoff::detail::throw_error(errc::out_of_memory), std::bad_alloc);
}
#endif

// ---------------------------------------------------------------------------
// malloc_array
// ---------------------------------------------------------------------------

TEST_CASE("a malloc_array moved into itself keeps its elements") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(3);
    a[1] = 42;
    int* before = a.data();
    int_array& alias = a;
    a = std::move(alias);
    CHECK(a.data() == before);
    CHECK(a.size() == 3);
    CHECK(a[1] == 42);
    CHECK(state().live_count == 1);
}

TEST_CASE("adopt with a length whose byte size overflows gives an empty array, frees nothing") {
    handoff_test::reset_state();
    void* raw = tracked::allocate(sizeof(int));
    REQUIRE(raw != nullptr);
    auto* p = static_cast<int*>(raw);
    {
        int_array a = int_array::adopt(p, size_max / sizeof(int) + 1);
        CHECK(a.empty());
        CHECK(a.data() == nullptr);
    }
    CHECK(state().frees == 0);  // the caller still owns p
    tracked::deallocate(p);
}

TEST_CASE("adopt of NULL with a length owns nothing") {
    int_array a = int_array::adopt(nullptr, 5);
    CHECK(a.empty());
}

TEST_CASE("resizing to the current size changes nothing and allocates nothing") {
    handoff_test::reset_state();
    auto a = *int_array::try_zeroed(4);
    a[3] = 7;
    int* before = a.data();
    std::size_t allocations = state().allocations;
    CHECK(a.try_resize(4) == errc::ok);
    CHECK(a.data() == before);
    CHECK(a[3] == 7);
    CHECK(state().allocations == allocations);
}

// ---------------------------------------------------------------------------
// Strings: the throwing forms when nothing fails
// ---------------------------------------------------------------------------

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("c_strdup returns the copy when nothing fails") {
    handoff::c_unique_ptr<char> copy = handoff::c_strdup("copied");
    REQUIRE(copy);
    CHECK(std::strcmp(copy.get(), "copied") == 0);
}

TEST_CASE("c_string_list::from a range returns the list when nothing fails") {
    std::vector<std::string> words = {"alpha", "beta"};
    auto list = handoff::c_string_list<>::from(words);
    REQUIRE(list.size() == 2);
    CHECK(list[1] == "beta");
    CHECK(list.get()[2] == nullptr);
}
#endif

// ---------------------------------------------------------------------------
// secret_string at its edges
// ---------------------------------------------------------------------------

TEST_CASE("an empty secret_string reads as empty and its clear and pop_back do nothing") {
    handoff::secret_string s;
    CHECK(s.view().empty());
    CHECK(s.view().data() == nullptr);
    s.clear();
    s.pop_back();
    CHECK(s.empty());
    CHECK(s.capacity() == 0);
    CHECK(std::strcmp(s.c_str(), "") == 0);
}

TEST_CASE("reserving SIZE_MAX bytes is refused as too large, the string unchanged") {
    auto s = *handoff::secret_string::try_from("kept");
    CHECK(s.try_reserve(size_max) == errc::too_large);
    CHECK(s.view() == "kept");
}

TEST_CASE("reserving no more than the capacity keeps the buffer") {
    handoff_test::reset_state();
    auto s = *tracked_secret::try_from("abc");
    const char* before = s.c_str();
    std::size_t allocations = state().allocations;
    CHECK(s.try_reserve(s.capacity()) == errc::ok);
    CHECK(s.try_reserve(1) == errc::ok);
    CHECK(s.c_str() == before);
    CHECK(state().allocations == allocations);
}

TEST_CASE("appending nothing to a fresh secret_string gives it a terminated buffer") {
    handoff::secret_string s;
    CHECK(s.try_append("") == errc::ok);
    CHECK(s.empty());
    CHECK(s.capacity() > 0);
    CHECK(s.c_str()[0] == '\0');
}

TEST_CASE("an empty secret_string is handed to C as an empty C string") {
    handoff::secret_string s;
    auto c = std::move(s).try_release_c_string();
    REQUIRE(c);
    REQUIRE(c->get() != nullptr);
    CHECK(c->get()[0] == '\0');
}

TEST_CASE("an empty secret_string that cannot get a buffer reports out_of_memory") {
    handoff_test::reset_state();
    state().fail_at = 1;
    tracked_secret s;
    auto c = std::move(s).try_release_c_string();
    CHECK_FALSE(c);
    CHECK(c.error() == errc::out_of_memory);
    state().fail_at = 0;
    CHECK(state().live_count == 0);
}
