// malloc does not guarantee more than max_align_t: over-aligned types are refused.
#include <handoff/handoff.hpp>
struct alignas(256) page_aligned {
    char bytes[256];
};
struct ordinary {
    char bytes[256];
};
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto a = handoff::malloc_array<page_aligned>::try_zeroed(1);
#else
    auto a = handoff::malloc_array<ordinary>::try_zeroed(1);
#endif
    return a ? 0 : 1;
}
