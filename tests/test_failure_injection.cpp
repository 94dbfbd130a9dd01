// Every factory and every growth path, failed at each allocation point: each
// run must end with zero live allocations and the documented error.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;

namespace {
// The tracked domain without realloc: growth takes the allocate-copy-free path.
struct tracked_no_realloc {
    static void* allocate(std::size_t n) noexcept { return tracked::allocate(n); }
    static void deallocate(void* p) noexcept { tracked::deallocate(p); }
};

void live_is_zero(std::size_t live) { CHECK(live == 0); }

// Runs a try_ factory at every failure point: it must either succeed with no
// failure injected, or fail with out_of_memory.
template <class Make>
std::size_t every_failure_of(Make make) {
    return handoff_test::for_each_allocation_failure(
        [&](std::size_t) {
            auto r = make();
            if (state().injected) {
                CHECK_FALSE(r);
                CHECK(r.error() == errc::out_of_memory);
            } else {
                CHECK(r);
            }
        },
        live_is_zero);
}

// Grows an array step by step; a failed step must leave it as it was.
template <class Array>
std::size_t every_growth_failure() {
    return handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            Array a;
            for (std::size_t n : {3u, 17u, 300u, 5u, 4000u}) {
                std::size_t before = a.size();
                errc e = a.try_resize(n);
                if (e != errc::ok) {
                    CHECK(e == errc::out_of_memory);
                    CHECK(a.size() == before);
                    return;
                }
                CHECK(a.size() == n);
            }
        },
        live_is_zero);
}
}  // namespace

TEST_CASE("try_zeroed fails cleanly at every allocation point") {
    CHECK(every_failure_of([] { return handoff::malloc_array<long, tracked>::try_zeroed(9); }) ==
          1);
}

TEST_CASE("try_uninitialized fails cleanly at every allocation point") {
    CHECK(every_failure_of(
              [] { return handoff::malloc_array<long, tracked>::try_uninitialized(9); }) == 1);
}

TEST_CASE("try_c_strdup and try_secure_c_strdup fail cleanly at every allocation point") {
    // A literal takes the const char* overloads (strlen, one scan); a view the
    // std::string_view ones (the NUL check): each has its own failure path.
    CHECK(every_failure_of([] { return handoff::try_c_strdup<tracked>("abc"); }) == 1);
    CHECK(every_failure_of([] { return handoff::try_secure_c_strdup<tracked>("abc"); }) == 1);
    constexpr std::string_view view = "abc";
    CHECK(every_failure_of([view] { return handoff::try_c_strdup<tracked>(view); }) == 1);
    CHECK(every_failure_of([view] { return handoff::try_secure_c_strdup<tracked>(view); }) == 1);
}

TEST_CASE("c_string_list with secret strings fails cleanly at every allocation point") {
    std::vector<std::string> words = {"one", "two"};
    using secret_list = handoff::c_string_list<tracked, handoff::owns_secret_strings>;
    CHECK(every_failure_of([&] { return secret_list::try_from(words); }) == 3);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("secret_string::try_from fails cleanly at every allocation point") {
    CHECK(every_failure_of([] { return handoff::basic_secret_string<tracked>::try_from("pw"); }) ==
          1);
}

TEST_CASE("growth through realloc fails cleanly at every allocation point") {
    CHECK(every_growth_failure<handoff::malloc_array<int, tracked>>() >= 4);
}

TEST_CASE("growth without realloc fails cleanly at every allocation point") {
    CHECK(every_growth_failure<handoff::malloc_array<int, tracked_no_realloc>>() >= 4);
}

TEST_CASE("secret growth fails cleanly at every allocation point and leaves no unwiped free") {
    CHECK(every_growth_failure<handoff::secure_malloc_array<char, tracked>>() >= 4);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("owning growth and shrink fail cleanly at every allocation point") {
    using strings = handoff::malloc_array<char*, tracked, handoff::owns_pointees>;
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            strings a;
            if (a.try_resize(2) != errc::ok) return;
            for (char*& s : a) {
                auto copy = handoff::try_c_strdup<tracked>("value");
                if (!copy) return;
                s = copy->release();
            }
            if (a.try_resize(8) != errc::ok) {
                CHECK(a.size() == 2);
                return;
            }
            CHECK(a.try_resize(1) == errc::ok);  // shrinking never fails
            CHECK(state().live_count == 2);
        },
        live_is_zero);
    CHECK(points >= 4);
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("throwing factories throw bad_alloc at every allocation point and leak nothing") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            try {
                auto list = handoff::c_string_list<tracked>::from({"a", "b"});
                auto array = handoff::malloc_array<int, tracked>::zeroed(4);
                array.resize(100);
                auto secret = handoff::basic_secret_string<tracked>::from("s");
                secret.append(std::string(64, 'x'));
                auto one = handoff::make_c_unique<int, tracked>(3);
                CHECK_FALSE(state().injected);
            } catch (const std::bad_alloc&) {
                CHECK(state().injected);
            }
        },
        live_is_zero);
    CHECK(points == 8);
}
#endif
