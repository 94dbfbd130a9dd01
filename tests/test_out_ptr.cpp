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
    *out = handoff::try_c_strdup<tracked>("hello")->release();
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
    *inout = handoff::try_c_strdup<tracked>(grown)->release();
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
