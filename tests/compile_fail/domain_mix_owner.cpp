// Moving an owner of one domain into an owner of another must not compile.
#include <handoff/handoff.hpp>
struct other_domain : handoff::libc {};
int main() {
    handoff::c_unique_ptr<char, other_domain> theirs;
#ifdef HANDOFF_EXPECT_FAIL
    handoff::c_unique_ptr<char> mine = std::move(theirs);
#else
    handoff::c_unique_ptr<char, other_domain> mine = std::move(theirs);
#endif
    return mine ? 1 : 0;
}
