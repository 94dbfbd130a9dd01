// malloc_vector: amortised growth in a C domain, handed to C as pointer +
// length (untrimmed) or as a trimmed malloc_array.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;

using int_vector = handoff::malloc_vector<int, tracked>;
using string_vector = handoff::malloc_vector<char*, tracked, handoff::owns_pointees>;
using secret_vector = handoff::malloc_vector<char, tracked, handoff::secret_bytes>;

namespace {
struct tracked_no_realloc {
    static void* allocate(std::size_t n) noexcept { return tracked::allocate(n); }
    static void deallocate(void* p) noexcept { tracked::deallocate(p); }
};

// A domain that carves its blocks one after another out of one static arena
// and never reuses them, so a test can place data right after a vector's
// block, and that data stays readable after the vector has moved on.
struct bump_arena {
    static constexpr std::size_t alignment = alignof(std::max_align_t);
    static void* allocate(std::size_t n) noexcept {
        std::size_t rounded = (n + alignment - 1) / alignment * alignment;
        if (rounded > sizeof(memory) - used) return nullptr;
        void* p = memory + used;
        used += rounded;
        return p;
    }
    static void deallocate(void*) noexcept {}  // the arena goes as a whole
    // A domain is a type without state: its arena is global.
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
    alignas(std::max_align_t) static inline unsigned char memory[1024];
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
    static inline std::size_t used = 0;
};

// The bytes of elements [from, to) are zero: where dropped elements were, in
// the spare capacity (which growth leaves as the allocator gave it, and the
// tracked domain fills with garbage).
template <class Vector>
bool zero_between(const Vector& v, std::size_t from, std::size_t to) {
    const auto* bytes = static_cast<const unsigned char*>(static_cast<const void*>(v.data()));
    for (std::size_t i = from * sizeof(typename Vector::value_type);
         i < to * sizeof(typename Vector::value_type); ++i) {
        if (bytes[i] != 0) return false;
    }
    return true;
}
}  // namespace

static_assert(sizeof(int_vector) == 3 * sizeof(void*));
static_assert(!std::is_copy_constructible_v<int_vector>);
static_assert(std::is_nothrow_move_constructible_v<int_vector>);

TEST_CASE("push_back one at a time allocates O(log n) times") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 1000; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    CHECK(v.size() == 1000);
    CHECK(v[999] == 999);
    CHECK(state().allocations <= 10);  // 4, 8, 16, ... 1024
    CHECK(state().live_count == 1);
}

TEST_CASE("new elements of a resize are zero, whatever the spare capacity held") {
    handoff_test::reset_state();
    auto v = *int_vector::try_with_capacity(8);  // tracked fills fresh blocks with garbage
    REQUIRE(v.try_push_back(7) == errc::ok);
    REQUIRE(v.try_resize(8) == errc::ok);
    CHECK(v[0] == 7);
    CHECK(zero_between(v, 1, 8));
    REQUIRE(v.try_resize(20) == errc::ok);  // grows: the new block's bytes are garbage too
    CHECK(v[0] == 7);
    CHECK(zero_between(v, 1, 20));
}

TEST_CASE("an element that leaves the vector leaves zero bytes behind") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 1; i <= 4; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    v.pop_back();
    CHECK(zero_between(v, 3, 4));
    REQUIRE(v.try_resize(1) == errc::ok);
    CHECK(zero_between(v, 1, 4));
    v.clear();
    CHECK(zero_between(v, 0, 4));
}

TEST_CASE("an empty vector owns no block: capacity 0 exactly when data is NULL") {
    int_vector v;
    CHECK(v.data() == nullptr);
    CHECK(v.capacity() == 0);
    auto reserved = int_vector::try_with_capacity(0);
    REQUIRE(reserved);
    CHECK(reserved->data() == nullptr);
}

TEST_CASE("push_back of one of its own elements survives the growth it causes") {
    handoff_test::reset_state();
    int_vector v;
    REQUIRE(v.try_push_back(42) == errc::ok);
    while (v.size() < v.capacity()) REQUIRE(v.try_push_back(0) == errc::ok);
    REQUIRE(v.try_push_back(v[0]) == errc::ok);  // v[0] lives in the block being replaced
    CHECK(v[v.size() - 1] == 42);
}

TEST_CASE("append of its own contents doubles it, with and without realloc") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 1; i <= 4; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    REQUIRE(v.try_append(v.data(), v.size()) == errc::ok);
    REQUIRE(v.size() == 8);
    CHECK(v[4] == 1);
    CHECK(v[7] == 4);

    handoff::malloc_vector<int, tracked_no_realloc> w;
    for (int i = 1; i <= 4; ++i) REQUIRE(w.try_push_back(i) == errc::ok);
    REQUIRE(w.try_append(w.data() + 1, 3) == errc::ok);
    REQUIRE(w.size() == 7);
    CHECK(w[4] == 2);
    CHECK(w[6] == 4);
}

TEST_CASE("a source that starts where the vector's block ends is not one of its elements") {
    bump_arena::used = 0;
    auto v = *handoff::malloc_vector<int, bump_arena>::try_with_capacity(4);
    for (int i = 0; i < 4; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    REQUIRE(v.size() == v.capacity());
    auto* after = static_cast<int*>(bump_arena::allocate(4 * sizeof(int)));
    REQUIRE(after == v.data() + v.capacity());  // the next bytes of the arena
    for (int i = 0; i < 4; ++i) after[i] = 10 + i;
    REQUIRE(v.try_append(after, 4) == errc::ok);  // grows: the vector's block moves
    REQUIRE(v.size() == 8);
    for (int i = 0; i < 4; ++i) CHECK(v[static_cast<std::size_t>(4 + i)] == 10 + i);
}

TEST_CASE("a failed append leaves the vector as it was") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 4; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    const int more[] = {7, 8};
    state().fail_at = state().allocations + 1;
    CHECK(v.try_append(more, 2) == errc::out_of_memory);
    CHECK(v.size() == 4);
    CHECK(v.capacity() == 4);
    CHECK(v[3] == 3);
    state().fail_at = 0;
}

TEST_CASE("append refuses a NULL source with a count") {
    int_vector v;
    CHECK(v.try_append(nullptr, 2) == errc::null_pointer);
    CHECK(v.try_append(nullptr, 0) == errc::ok);
    CHECK(v.empty());
}

TEST_CASE("a failed growth leaves the vector as it was and the element with the caller") {
    handoff_test::reset_state();
    string_vector v;
    for (int i = 0; i < 4; ++i) {
        REQUIRE(v.try_push_back((*handoff::try_c_strdup<tracked>("x")).release()) == errc::ok);
    }
    char* extra = (*handoff::try_c_strdup<tracked>("extra")).release();
    state().fail_at = state().allocations + 1;
    CHECK(v.try_push_back(extra) == errc::out_of_memory);
    CHECK(v.size() == 4);
    CHECK(v.capacity() == 4);
    tracked::deallocate(extra);  // still ours
    v.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("growth too large for size_t is refused") {
    handoff_test::reset_state();
    auto none = int_vector::try_with_capacity(std::numeric_limits<std::size_t>::max());
    CHECK(none.error() == errc::too_large);
    CHECK(state().allocations == 0);
    int_vector v;
    CHECK(v.try_reserve(std::numeric_limits<std::size_t>::max() / sizeof(int) + 1) ==
          errc::too_large);
    CHECK(v.try_resize(std::numeric_limits<std::size_t>::max()) == errc::too_large);
    CHECK(v.data() == nullptr);
}

TEST_CASE("resize to 0 keeps the block; new elements are zero") {
    handoff_test::reset_state();
    int_vector v;
    REQUIRE(v.try_resize(5) == errc::ok);
    v[4] = 4;
    REQUIRE(v.try_resize(0) == errc::ok);
    CHECK(v.capacity() >= 5);
    CHECK(zero_between(v, 0, 5));
    REQUIRE(v.try_resize(5) == errc::ok);
    CHECK(v[4] == 0);
}

TEST_CASE("pop_back, shrinking resize and clear release owned elements") {
    handoff_test::reset_state();
    string_vector v;
    for (const char* s : {"a", "b", "c", "d"}) {
        REQUIRE(v.try_push_back((*handoff::try_c_strdup<tracked>(s)).release()) == errc::ok);
    }
    v.pop_back();
    CHECK(state().live_count == 4);  // the block and three strings
    REQUIRE(v.try_resize(1) == errc::ok);
    CHECK(state().live_count == 2);
    v.clear();
    CHECK(state().live_count == 1);
    CHECK(v.empty());
    CHECK(zero_between(v, 0, 4));
}

TEST_CASE("pop_back, clear and a resize to the size do nothing to an empty vector") {
    handoff_test::reset_state();
    int_vector v;
    v.pop_back();
    v.clear();
    CHECK(v.try_resize(0) == errc::ok);
    CHECK(v.data() == nullptr);
    auto w = *int_vector::try_with_capacity(2);
    w.pop_back();
    CHECK(w.empty());
    CHECK(w.capacity() == 2);
    CHECK(state().frees == 0);
}

TEST_CASE("a resize to the current size keeps every element") {
    handoff_test::reset_state();
    string_vector v;
    REQUIRE(v.try_push_back((*handoff::try_c_strdup<tracked>("kept")).release()) == errc::ok);
    REQUIRE(v.try_resize(1) == errc::ok);
    CHECK(std::strcmp(v[0], "kept") == 0);
    CHECK(state().live_count == 2);  // the block and the string
}

TEST_CASE("release_with_size hands the untrimmed block to C") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 5; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    std::size_t capacity = v.capacity();
    auto out = std::move(v).release_with_size();
    CHECK(out.size == 5);
    CHECK(capacity == 8);
    CHECK(state().live[0].bytes == capacity * sizeof(int));
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is specified
    CHECK(v.data() == nullptr);
    CHECK(v.capacity() == 0);
    tracked::deallocate(out.data);
    CHECK(state().live_count == 0);
}

TEST_CASE("an empty vector hands NULL to C and frees its spare block") {
    handoff_test::reset_state();
    auto v = *int_vector::try_with_capacity(16);
    CHECK(state().live_count == 1);
    auto out = std::move(v).release_with_size();
    CHECK(out.data == nullptr);
    CHECK(out.size == 0);
    CHECK(state().live_count == 0);
}

TEST_CASE("to_array trims the block to the size through realloc") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 5; ++i) REQUIRE(v.try_push_back(i * 2) == errc::ok);
    handoff::malloc_array<int, tracked> a = std::move(v).to_array();
    REQUIRE(a.size() == 5);
    CHECK(a[4] == 8);
    CHECK(state().live[0].bytes == 5 * sizeof(int));
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is specified
    CHECK(v.data() == nullptr);
}

TEST_CASE("to_array of a vector without spare capacity hands its block over as it is") {
    handoff_test::reset_state();
    auto v = *int_vector::try_with_capacity(3);
    for (int i = 0; i < 3; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    const int* block = v.data();
    std::size_t allocations = state().allocations;
    auto a = std::move(v).to_array();
    CHECK(a.data() == block);
    CHECK(a.size() == 3);
    CHECK(state().allocations == allocations);  // no realloc to trim
}

TEST_CASE("to_array of an empty vector is an empty array owning nothing") {
    handoff_test::reset_state();
    auto v = *int_vector::try_with_capacity(4);
    auto a = std::move(v).to_array();
    CHECK(a.data() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE("from_array takes a malloc_array's block and keeps growing it") {
    handoff_test::reset_state();
    auto a = *handoff::malloc_array<int, tracked>::try_zeroed(2);
    a[1] = 1;
    auto v = int_vector::from_array(std::move(a));
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is specified
    CHECK(a.data() == nullptr);
    CHECK(v.capacity() == 2);
    REQUIRE(v.try_push_back(2) == errc::ok);
    CHECK(v[1] == 1);
    CHECK(v[2] == 2);
    CHECK(state().live_count == 1);
}

TEST_CASE("secret growth copies and wipes the old block, never realloc") {
    handoff_test::reset_state();
    {
        secret_vector v;
        for (char c : std::string(100, 's')) REQUIRE(v.try_push_back(c) == errc::ok);
        v.pop_back();
        CHECK(zero_between(v, 99, 100));  // wiped
        v.shrink_to_fit();
        CHECK(v.capacity() == 99);
    }
    CHECK(state().frees >= 5);
    CHECK(state().frees_nonzero == 0);
}

TEST_CASE("a secret vector whose growth fails keeps its bytes and frees nothing") {
    handoff_test::reset_state();
    secret_vector v;
    for (char c : std::string("1234")) REQUIRE(v.try_push_back(c) == errc::ok);
    REQUIRE(v.size() == v.capacity());
    state().fail_at = state().allocations + 1;
    CHECK(v.try_push_back('5') == errc::out_of_memory);
    CHECK(std::string(v.data(), v.size()) == "1234");
    CHECK(state().frees == 0);
    state().fail_at = 0;
}

TEST_CASE("shrink_to_fit of a vector without spare capacity keeps its block") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 4; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    REQUIRE(v.size() == v.capacity());
    const int* block = v.data();
    std::size_t allocations = state().allocations;
    v.shrink_to_fit();
    CHECK(v.data() == block);
    CHECK(state().allocations == allocations);
}

TEST_CASE("shrink_to_fit gives the spare back, and an empty vector its block") {
    handoff_test::reset_state();
    int_vector v;
    for (int i = 0; i < 5; ++i) REQUIRE(v.try_push_back(i) == errc::ok);
    v.shrink_to_fit();
    CHECK(v.capacity() == 5);
    CHECK(state().live[0].bytes == 5 * sizeof(int));
    v.clear();
    v.shrink_to_fit();
    CHECK(v.data() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE("rows of a table: each starts empty, and a row moved in frees the one it replaces") {
    handoff_test::reset_state();
    std::vector<int_vector> table(2);
    CHECK(table[0].data() == nullptr);
    CHECK(table[1].capacity() == 0);
    REQUIRE(table[0].try_push_back(1) == errc::ok);
    CHECK(state().live_count == 1);
    int_vector row;
    REQUIRE(row.try_push_back(2) == errc::ok);
    REQUIRE(row.try_push_back(3) == errc::ok);
    const int* block = row.data();
    table[0] = std::move(row);
    CHECK(state().live_count == 1);  // the first row's block was freed
    CHECK(table[0].data() == block);
    CHECK(table[0].size() == 2);
    CHECK(table[0][1] == 3);
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is specified
    CHECK(row.data() == nullptr);
    CHECK(row.size() == 0);
}

TEST_CASE("self-move leaves a vector as it was") {
    int_vector v;
    REQUIRE(v.try_push_back(3) == errc::ok);
    int_vector& alias = v;
    v = std::move(alias);
    CHECK(v.size() == 1);
    CHECK(v[0] == 3);
}

TEST_CASE("reading lines of unknown count into C strings cleans up at every failure point") {
    std::size_t points = handoff_test::for_each_allocation_failure(
        [](std::size_t) {
            string_vector lines;
            for (int i = 0; i < 9; ++i) {
                auto line = handoff::try_c_strdup<tracked>("line");
                if (!line) return;
                errc e = lines.try_push_back(line->get());
                if (e != errc::ok) {
                    CHECK(e == errc::out_of_memory);
                    return;  // `line` still owns the string
                }
                (void)line->release();  // the vector owns it now
            }
            auto array = std::move(lines).to_array();
            CHECK(array.size() == 9);
        },
        [](std::size_t live) { CHECK(live == 0); });
    CHECK(points >= 12);  // nine strings, three growths
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing forms throw and leave the vector unchanged") {
    handoff_test::reset_state();
    int_vector v;
    v.push_back(1);
    state().fail_at = state().allocations + 1;
    v.resize(4);  // within capacity: no allocation
    CHECK_THROWS_AS(v.resize(100), std::bad_alloc);
    CHECK(v.size() == 4);
    CHECK_THROWS_AS(v.reserve(std::numeric_limits<std::size_t>::max()), std::length_error);
}
#endif

TEST_CASE("a const vector reads its elements through operator[]") {
    handoff_test::reset_state();
    int_vector v;
    REQUIRE(v.try_push_back(7) == errc::ok);
    REQUIRE(v.try_push_back(9) == errc::ok);
    const int_vector& view = v;
    CHECK(view[0] == 7);
    CHECK(view[1] == 9);
    CHECK(&view[1] == v.data() + 1);
}
