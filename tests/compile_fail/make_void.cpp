// c_unique_ptr<void> owns C blocks, but there is no void object to make.
#include <handoff/handoff.hpp>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto p = handoff::try_make_c_unique<void>();
#else
    auto p = handoff::adopt<handoff::libc>(static_cast<void*>(nullptr));
#endif
    return p ? 1 : 0;
}
