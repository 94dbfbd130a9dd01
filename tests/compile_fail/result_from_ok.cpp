// A result<T> is a success only when it holds a value: `return errc::ok;` is
// refused at compile time (Clang; other compilers refuse it at run time with
// errc::no_value, tests/test_result.cpp).
#include <handoff/handoff.hpp>
handoff::result<handoff::c_unique_ptr<char>> make() {
#ifdef HANDOFF_EXPECT_FAIL
    return handoff::errc::ok;
#else
    return handoff::errc::out_of_memory;
#endif
}
int main() { return make() ? 1 : 0; }
