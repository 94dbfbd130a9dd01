// zeroed() and resize() fill with zero bytes, but a null data-member pointer
// is not zero bytes on the Itanium ABI (it is -1): such elements are refused.
#include <handoff/handoff.hpp>
struct record {
    int field;
};
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto a = handoff::malloc_array<int record::*>::try_zeroed(2);
#else
    auto a = handoff::malloc_array<record*>::try_zeroed(2);
#endif
    return a ? 0 : 1;
}
