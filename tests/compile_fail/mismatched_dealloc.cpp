// GCC only: c_strdup_raw is paired with free(), so delete[] on it is diagnosed.
// compile-fail: codegen
#include <cstdlib>
#include <handoff/handoff.hpp>
int main() {
    char* p = handoff::c_strdup_raw("x");
#ifdef HANDOFF_EXPECT_FAIL
    delete[] p;
#else
    std::free(p);
#endif
    return 0;
}
