// A malloc_array over a deleter-only domain (here to adopt a C array) fails
// with handoff's own message first, not with "no member named deallocate".
#include <netdb.h>
#include <handoff/handoff.hpp>
using addrinfo_domain = handoff::deleter_domain<freeaddrinfo>;
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    using results = handoff::malloc_array<addrinfo*, addrinfo_domain>;
#else
    using results = handoff::malloc_array<addrinfo*, handoff::libc>;
#endif
    results a = results::adopt(nullptr, 0);
    return a.empty() ? 0 : 1;
}
