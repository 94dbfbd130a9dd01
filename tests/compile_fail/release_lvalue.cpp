// Giving an array away must read as giving it away: release() is &&-qualified.
#include <cstdlib>
#include <handoff/handoff.hpp>
int main() {
    auto a = handoff::malloc_array<int>::try_zeroed(4);
#ifdef HANDOFF_EXPECT_FAIL
    int* raw = a->release();
#else
    int* raw = std::move(*a).release();
#endif
    std::free(raw);
    return 0;
}
