// A deleter-only domain can release C results but cannot allocate.
#include <netdb.h>
#include <handoff/handoff.hpp>
using addrinfo_domain = handoff::deleter_domain<freeaddrinfo>;
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto p = handoff::try_make_c_unique<addrinfo, addrinfo_domain>();
#else
    auto p = handoff::try_make_c_unique<addrinfo, handoff::libc>();
#endif
    return p ? 0 : 1;
}
