// c_unique_ptr: one C-allocated object or an adopted C pointer.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "tracked_domain.hpp"

using handoff_test::state;
using handoff_test::tracked;

namespace {
struct point {
    int x;
    int y;
};
}  // namespace

static_assert(sizeof(handoff::c_unique_ptr<int>) == sizeof(int*));
static_assert(sizeof(handoff::c_unique_ptr<char, tracked>) == sizeof(char*));
static_assert(sizeof(handoff::c_unique_ptr<char[]>) == sizeof(char*));
static_assert(sizeof(handoff::secure_c_string<>) == sizeof(char*));
// NOLINTNEXTLINE(bugprone-sizeof-expression): the size of a pointer is the point
static_assert(sizeof(handoff::secure_c_unique_ptr<point>) == sizeof(point*));
static_assert(!std::is_copy_constructible_v<handoff::c_unique_ptr<int>>);
static_assert(std::is_nothrow_move_constructible_v<handoff::c_unique_ptr<int>>);
static_assert(std::is_empty_v<handoff::domain_deleter<int, handoff::libc>>);

TEST_CASE("try_make_c_unique allocates in the domain and constructs") {
    handoff_test::reset_state();
    {
        auto p = handoff::try_make_c_unique<point, tracked>(point{3, 4});
        REQUIRE(p);
        CHECK((*p)->x == 3);
        CHECK((*p)->y == 4);
        CHECK(state().live_count == 1);
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("try_make_c_unique value-initialises without arguments") {
    handoff_test::reset_state();
    auto p = handoff::try_make_c_unique<point, tracked>();
    REQUIRE(p);
    CHECK((*p)->x == 0);
    CHECK((*p)->y == 0);
}

TEST_CASE("try_make_c_unique reports out_of_memory and owns nothing") {
    handoff_test::reset_state();
    state().fail_at = 1;
    auto p = handoff::try_make_c_unique<point, tracked>();
    CHECK_FALSE(p);
    CHECK(p.error() == handoff::errc::out_of_memory);
    CHECK(p->get() == nullptr);
    CHECK(state().live_count == 0);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("make_c_unique throws bad_alloc when the domain fails") {
    handoff_test::reset_state();
    state().fail_at = 1;
    CHECK_THROWS_AS((handoff::make_c_unique<point, tracked>()), std::bad_alloc);
    CHECK(state().live_count == 0);
}

namespace {
struct throws_on_construction {
    int value;
    explicit throws_on_construction(int v) : value(v) {
        if (v < 0) throw std::runtime_error("negative");
    }
};
}  // namespace

TEST_CASE("make_c_unique frees the memory when the constructor throws") {
    handoff_test::reset_state();
    CHECK_THROWS_AS((handoff::make_c_unique<throws_on_construction, tracked>(-1)),
                    std::runtime_error);
    CHECK(state().live_count == 0);
    auto ok = handoff::make_c_unique<throws_on_construction, tracked>(5);
    CHECK(ok->value == 5);
}
#endif

TEST_CASE("adopt takes a pointer that C allocated") {
    char* raw = ::strdup("from C");
    REQUIRE(raw != nullptr);
    auto owned = handoff::adopt(raw);
    static_assert(std::is_same_v<decltype(owned), handoff::c_unique_ptr<char>>);
    CHECK(std::strcmp(owned.get(), "from C") == 0);
}

TEST_CASE("adopt of realpath result frees it with free") {
    auto resolved = handoff::adopt(::realpath(".", nullptr));
    REQUIRE(resolved);
    CHECK(resolved.get()[0] == '/');
}

TEST_CASE("release hands the pointer off and the owner frees nothing") {
    handoff_test::reset_state();
    char* raw = nullptr;
    {
        auto s = *handoff::try_c_strdup<tracked>("gone");
        raw = s.release();
        CHECK(s.get() == nullptr);
    }
    CHECK(state().live_count == 1);
    tracked::deallocate(raw);
    CHECK(state().live_count == 0);
}

TEST_CASE("reset frees the old pointer and keeps the new one") {
    handoff_test::reset_state();
    auto s = *handoff::try_c_strdup<tracked>("one");
    s.reset((*handoff::try_c_strdup<tracked>("two")).release());
    CHECK(state().frees == 1);
    CHECK(std::strcmp(s.get(), "two") == 0);
    s.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("c_unique_ptr of an array type indexes and frees once") {
    handoff_test::reset_state();
    {
        auto* raw = static_cast<int*>(tracked::allocate(4 * sizeof(int)));
        REQUIRE(raw != nullptr);
        handoff::c_unique_ptr<int[], tracked> a(raw);
        a[3] = 42;
        CHECK(a[3] == 42);
    }
    CHECK(state().live_count == 0);
    CHECK(state().frees == 1);
}

TEST_CASE("every try_make_c_unique failure point ends with zero live allocations") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            auto p = handoff::try_make_c_unique<point, tracked>(point{1, 2});
            if (state().injected) {
                CHECK(p.error() == handoff::errc::out_of_memory);
            } else {
                CHECK(p);
            }
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points == 1);
}

TEST_CASE("c_unique_ptr<void> owns a C block of no stated type") {
    handoff_test::reset_state();
    {
        void* block = tracked::allocate(32);
        REQUIRE(block != nullptr);
        auto owner = handoff::adopt<tracked>(block);
        static_assert(std::is_same_v<decltype(owner), handoff::c_unique_ptr<void, tracked>>);
        CHECK(owner.get() == block);
        static_assert(sizeof(owner) == sizeof(void*));
    }
    CHECK(state().live_count == 0);
    CHECK(state().frees == 1);
}

TEST_CASE("c_unique_ptr<void> adopts malloc memory in the libc domain") {
    auto owner = handoff::adopt<handoff::libc>(std::malloc(8));
    REQUIRE(owner);
    std::memset(owner.get(), 0, 8);
}

TEST_CASE("raw pointers carry no domain: the boundary the documentation states") {
    // Owners of different domains never convert into each other ...
    CHECK_FALSE(
        std::is_convertible_v<handoff::c_unique_ptr<char, tracked>&&, handoff::c_unique_ptr<char>>);
    CHECK_FALSE(std::is_constructible_v<handoff::c_unique_ptr<char>,
                                        handoff::c_unique_ptr<char, tracked>&&>);
    CHECK_FALSE(std::is_convertible_v<handoff::c_unique_ptr<char, tracked>&&,
                                      handoff::secure_c_string<handoff::libc>>);
    // ... a plain string becomes a secure one only in its own domain ...
    CHECK(std::is_convertible_v<handoff::c_unique_ptr<char, tracked>&&,
                                handoff::secure_c_string<tracked>>);
    // ... but a released T* is just a pointer: adopt's Safety paragraph applies.
    CHECK(std::is_constructible_v<handoff::c_unique_ptr<char>, char*>);
}
