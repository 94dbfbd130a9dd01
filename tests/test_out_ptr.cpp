// Out-parameters: out_ptr / inout_ptr with C functions that allocate.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <cstdio>
#include <cstring>
#include <string>

#include "tracked_domain.hpp"

using handoff_test::state;
using handoff_test::tracked;

namespace {
// A tiny fake C API in the tracked domain.
int make_greeting(char** out) {
    *out = (*handoff::try_c_strdup<tracked>("hello")).release();
    return *out == nullptr ? -1 : 0;
}
int fail_without_writing(char** /*out*/) { return -1; }
// Frees the string it is given and writes NULL: the LWG 3594 case.
int consume_and_clear(char** inout) {
    tracked::deallocate(*inout);
    *inout = nullptr;
    return 0;
}
// Replaces the string with a longer one, like getline growing its buffer.
int append_world(char** inout) {
    std::string grown = std::string(*inout) + " world";
    tracked::deallocate(*inout);
    *inout = (*handoff::try_c_strdup<tracked>(grown)).release();
    return 0;
}
int write_void(void** out) {
    *out = tracked::allocate(4);
    return 0;
}
}  // namespace

TEST_CASE("out_ptr stores what the C function allocated") {
    handoff_test::reset_state();
    handoff::c_unique_ptr<char, tracked> s;
    REQUIRE(make_greeting(handoff::out_ptr(s)) == 0);
    CHECK(std::strcmp(s.get(), "hello") == 0);
    s.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("out_ptr empties the owner first, so a failing call leaves it empty") {
    handoff_test::reset_state();
    auto s = *handoff::try_c_strdup<tracked>("old");
    CHECK(fail_without_writing(handoff::out_ptr(s)) == -1);
    CHECK(s.get() == nullptr);
    CHECK(state().live_count == 0);
}

TEST_CASE("out_ptr converts to void** for C APIs that take it") {
    handoff_test::reset_state();
    handoff::c_unique_ptr<char, tracked> s;
    REQUIRE(write_void(handoff::out_ptr(s)) == 0);
    CHECK(s.get() != nullptr);
    s.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("inout_ptr passes the owned pointer in and takes the new one") {
    handoff_test::reset_state();
    auto s = *handoff::try_c_strdup<tracked>("hello");
    REQUIRE(append_world(handoff::inout_ptr(s)) == 0);
    CHECK(std::strcmp(s.get(), "hello world") == 0);
    CHECK(state().live_count == 1);
}

TEST_CASE("inout_ptr releases the old pointer even when C writes NULL (LWG 3594)") {
    handoff_test::reset_state();
    auto s = *handoff::try_c_strdup<tracked>("to be freed by C");
    REQUIRE(consume_and_clear(handoff::inout_ptr(s)) == 0);
    CHECK(s.get() == nullptr);
    CHECK(state().frees == 1);  // the tracked domain aborts on a second free
}

TEST_CASE("asprintf through out_ptr") {
    handoff::c_unique_ptr<char> s;
    int n = ::asprintf(handoff::out_ptr(s), "%s-%d", "pid", 42);
    REQUIRE(n == 6);
    CHECK(std::strcmp(s.get(), "pid-42") == 0);
}

TEST_CASE("getline through inout_ptr reuses and grows the buffer") {
    char text[] = "first line\na much longer second line than the first\n";
    FILE* f = ::fmemopen(text, std::strlen(text), "r");
    REQUIRE(f != nullptr);
    handoff::c_unique_ptr<char> line;
    std::size_t capacity = 0;
    std::string seen;
    while (::getline(handoff::inout_ptr(line), &capacity, f) != -1) seen += line.get();
    static_cast<void>(std::fclose(f));  // a stream opened for reading: nothing is lost
    CHECK(seen == "first line\na much longer second line than the first\n");
    CHECK(capacity > 0);
}

TEST_CASE("getaddrinfo through out_ptr with a deleter domain") {
    using addrinfo_domain = handoff::deleter_domain<::freeaddrinfo>;
    handoff::c_unique_ptr<addrinfo, addrinfo_domain> result;
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    REQUIRE(::getaddrinfo("127.0.0.1", "80", &hints, handoff::out_ptr(result)) == 0);
    REQUIRE(result);
    CHECK(result->ai_family == AF_INET);
}

TEST_CASE("scandir: an array of owned pointers with a count") {
    dirent** raw = nullptr;
    int n = ::scandir(".", &raw, nullptr, ::alphasort);
    REQUIRE(n >= 2);  // at least "." and ".."
    auto entries = handoff::malloc_array<dirent*, handoff::libc, handoff::owns_pointees>::adopt(
        raw, static_cast<std::size_t>(n));
    bool saw_dot = false;
    for (dirent* d : entries) saw_dot = saw_dot || std::strcmp(d->d_name, ".") == 0;
    CHECK(saw_dot);
    CHECK(entries.size() == static_cast<std::size_t>(n));
}

TEST_CASE("handoff::out_ptr is std::out_ptr exactly when the library has it") {
    handoff::c_unique_ptr<char> s;
#if defined(__cpp_lib_out_ptr) && __cpp_lib_out_ptr >= 202106L
    CHECK(HANDOFF_USES_STD_OUT_PTR == 1);
    CHECK(std::is_same_v<decltype(handoff::out_ptr(s)), std::out_ptr_t<decltype(s), char*>>);
#else
    CHECK(HANDOFF_USES_STD_OUT_PTR == 0);
    CHECK(std::is_same_v<decltype(handoff::out_ptr(s)), handoff::out_ptr_t<decltype(s), char*>>);
    MESSAGE("standard library without std::out_ptr: the C++17 fallback is what runs");
#endif
}

TEST_CASE("out_ptr on a raw pointer empties it first and stores the result") {
    handoff_test::reset_state();
    char stale = 's';
    char* raw = &stale;  // a stale value the call must not see kept
    CHECK(fail_without_writing(handoff::out_ptr(raw)) == -1);
    CHECK(raw == nullptr);
    REQUIRE(make_greeting(handoff::out_ptr(raw)) == 0);
    REQUIRE(raw != nullptr);
    CHECK(std::strcmp(raw, "hello") == 0);
    tracked::deallocate(raw);
    CHECK(state().live_count == 0);
}

TEST_CASE("inout_ptr on a raw pointer passes it in and takes the result, NULL included") {
    handoff_test::reset_state();
    char* raw = (*handoff::try_c_strdup<tracked>("hello")).release();
    REQUIRE(append_world(handoff::inout_ptr(raw)) == 0);
    CHECK(std::strcmp(raw, "hello world") == 0);
    REQUIRE(consume_and_clear(handoff::inout_ptr(raw)) == 0);
    CHECK(raw == nullptr);  // LWG 3897: a raw pointer is updated to NULL too
    CHECK(state().live_count == 0);
}

TEST_CASE("out_ptr on a raw pointer converts to void**") {
    handoff_test::reset_state();
    char* raw = nullptr;
    REQUIRE(write_void(handoff::out_ptr(raw)) == 0);
    CHECK(raw != nullptr);
    tracked::deallocate(raw);
}

TEST_CASE("out_ptr fills a c_unique_ptr<void>") {
    handoff_test::reset_state();
    handoff::c_unique_ptr<void, tracked> block;
    REQUIRE(write_void(handoff::out_ptr(block)) == 0);
    CHECK(block != nullptr);
    block.reset();
    CHECK(state().live_count == 0);
}

namespace {
using int_array = handoff::malloc_array<int, tracked>;
using string_array = handoff::malloc_array<char*, tracked, handoff::owns_pointees>;

// The (T** out, size_t* count) shape: the length is written through a pointer.
int get_numbers(int** out, std::size_t* count, std::size_t n) {
    if (n == 0) {
        *out = nullptr;
        *count = 0;
        return 0;
    }
    auto made = int_array::try_zeroed(n);
    if (!made) return -1;
    for (std::size_t i = 0; i < n; ++i) (*made)[i] = static_cast<int>(i * 10);
    *out = std::move(*made).release();
    *count = n;
    return 0;
}

// The scandir shape: the length is the return value, -1 on failure.
int list_words(char*** out, bool fail_after_writing) {
    auto made = string_array::try_zeroed(2);
    if (!made) return -1;
    (*made)[0] = (*handoff::try_c_strdup<tracked>("one")).release();
    (*made)[1] = (*handoff::try_c_strdup<tracked>("two")).release();
    if (fail_after_writing) {
        made->reset();
        *out = static_cast<char**>(tracked::allocate(sizeof(char*)));  // a stray block
        return -1;
    }
    *out = std::move(*made).release();
    return 2;
}
}  // namespace

TEST_CASE("out_array fills a malloc_array from a call that writes its length") {
    handoff_test::reset_state();
    auto numbers = *int_array::try_zeroed(1);  // emptied by out_array before the call
    std::size_t n = 0;
    REQUIRE(get_numbers(handoff::out_array(numbers, n), &n, 4) == 0);
    REQUIRE(numbers.size() == 4);
    CHECK(numbers[3] == 30);
    CHECK(state().live_count == 1);
}

TEST_CASE("out_array with a zero length and NULL leaves the array empty") {
    auto numbers = *int_array::try_zeroed(2);
    std::size_t n = 99;
    REQUIRE(get_numbers(handoff::out_array(numbers, n), &n, 0) == 0);
    CHECK(numbers.empty());
    CHECK(numbers.data() == nullptr);
}

TEST_CASE("out_array fills a malloc_array from a call that returns its length") {
    handoff_test::reset_state();
    string_array words;
    int count = 0;
    count = list_words(handoff::out_array(words, count), false);
    REQUIRE(count == 2);
    REQUIRE(words.size() == 2);
    CHECK(std::strcmp(words[1], "two") == 0);
    words.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("out_array frees a block written by a call that then failed") {
    handoff_test::reset_state();
    string_array words;
    int count = 0;
    count = list_words(handoff::out_array(words, count), true);
    CHECK(count == -1);
    CHECK(words.empty());
    CHECK(state().live_count == 0);
}

namespace {
// Two arrays of strings, as a C API returning keys and values would write
// them: four strings, then one.
int two_lists(char*** first, std::size_t* first_count, char*** second, std::size_t* second_count) {
    auto four = string_array::try_zeroed(4);
    auto one = string_array::try_zeroed(1);
    if (!four || !one) return -1;
    for (char*& s : *four) s = (*handoff::try_c_strdup<tracked>("first")).release();
    (*one)[0] = (*handoff::try_c_strdup<tracked>("second")).release();
    *first = std::move(*four).release();
    *first_count = 4;
    *second = std::move(*one).release();
    *second_count = 1;
    return 0;
}
}  // namespace

TEST_CASE("two out_array on one array in one call: one result is kept, the other freed") {
    handoff_test::reset_state();
    string_array words;
    std::size_t n1 = 0;
    std::size_t n2 = 0;
    REQUIRE(two_lists(handoff::out_array(words, n1), &n1, handoff::out_array(words, n2), &n2) == 0);
    // Which adapter is destroyed last is the compiler's choice (the order of
    // evaluation of arguments): the array holds one of the two results whole.
    REQUIRE((words.size() == 4 || words.size() == 1));
    for (const char* s : words) CHECK(std::strcmp(s, words.size() == 4 ? "first" : "second") == 0);
    CHECK(state().live_count == 1 + words.size());
    words.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("out_array: the array read or moved within the call's full expression is empty") {
    handoff_test::reset_state();
    int_array numbers;
    std::size_t n = 0;
    const bool seen_empty = get_numbers(handoff::out_array(numbers, n), &n, 4) == 0 &&
                            numbers.data() == nullptr && numbers.empty();
    CHECK(seen_empty);
    CHECK(numbers.size() == 4);

    string_array more;
    int more_count = 0;
    string_array moved =
        // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): out_array reads the count at the end
        (more_count = list_words(handoff::out_array(more, more_count), false), std::move(more));
    // The move took the emptied array; the result arrives in `more` when the
    // adapter is destroyed, after the move.
    CHECK(moved.data() == nullptr);
    CHECK(moved.empty());
    // NOLINTNEXTLINE(bugprone-use-after-move): the move took it before out_array filled it
    CHECK(more.size() == 2);
    CHECK(state().live_count == 4);
    numbers.reset();
    more.reset();
    CHECK(state().live_count == 0);
}

TEST_CASE("out_array with scandir") {
    using entries = handoff::malloc_array<dirent*, handoff::libc, handoff::owns_pointees>;
    entries list;
    int n = 0;
    n = ::scandir(".", handoff::out_array(list, n), nullptr, ::alphasort);
    REQUIRE(n >= 2);
    CHECK(list.size() == static_cast<std::size_t>(n));
    CHECK(std::strcmp(list[0]->d_name, ".") == 0);
}
