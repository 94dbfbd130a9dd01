// Assigning an array of one domain to an array of another must not compile.
#include <handoff/handoff.hpp>
struct other_domain : handoff::libc {};
int main() {
    handoff::malloc_array<int, other_domain> theirs;
#ifdef HANDOFF_EXPECT_FAIL
    handoff::malloc_array<int> mine;
#else
    handoff::malloc_array<int, other_domain> mine;
#endif
    mine = std::move(theirs);
    return mine.empty() ? 0 : 1;
}
