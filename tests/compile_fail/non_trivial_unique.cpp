// C frees memory without running destructors: non-trivially-destructible types
// must not be owned by a C allocator domain.
#include <handoff/handoff.hpp>
#include <string>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    handoff::c_unique_ptr<std::string> p;
#else
    handoff::c_unique_ptr<int> p;
#endif
    return p ? 1 : 0;
}
