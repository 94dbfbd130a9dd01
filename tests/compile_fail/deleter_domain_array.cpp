// A malloc_array over a deleter-only domain fails with handoff's own message
// first, not with "no member named deallocate".
#include <netdb.h>
#include <handoff/handoff.hpp>
using addrinfo_domain = handoff::deleter_domain<freeaddrinfo>;
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto a = handoff::malloc_array<addrinfo, addrinfo_domain>::try_zeroed(1);
#else
    auto a = handoff::malloc_array<addrinfo, handoff::libc>::try_zeroed(1);
#endif
    return a ? 0 : 1;
}
