// Owners are move-only: a copy would free the same memory twice.
#include <handoff/handoff.hpp>
int main() {
    handoff::malloc_array<int> a;
#ifdef HANDOFF_EXPECT_FAIL
    handoff::malloc_array<int> b = a;
#else
    handoff::malloc_array<int> b = std::move(a);
#endif
    return b.empty() ? 0 : 1;
}
