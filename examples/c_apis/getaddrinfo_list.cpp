// getaddrinfo(3) results are freed with freeaddrinfo(3): a deleter-only domain.
//
// The C it replaces:
//   struct addrinfo* res = NULL;
//   int rc = getaddrinfo("127.0.0.1", "80", &hints, &res);
//   if (rc != 0) return -1;
//   for (struct addrinfo* ai = res; ai; ai = ai->ai_next) ...;
//   freeaddrinfo(res);      /* not free(): the list owns more than one block */
#include <handoff/handoff.hpp>

#include <netdb.h>
#include <sys/socket.h>
#include <cstdio>

using addrinfo_domain = handoff::deleter_domain<::freeaddrinfo>;

int main() {
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // no DNS: loopback only
    hints.ai_socktype = SOCK_STREAM;
    handoff::c_unique_ptr<addrinfo, addrinfo_domain> results;
    int rc = ::getaddrinfo("127.0.0.1", "8080", &hints, handoff::out_ptr(results));
    if (rc != 0) {
        std::fprintf(stderr, "getaddrinfo: %s\n", ::gai_strerror(rc));
        return 1;
    }
    int count = 0;
    for (const addrinfo* ai = results.get(); ai != nullptr; ai = ai->ai_next) ++count;
    std::printf("%d address(es), first family %d\n", count, results->ai_family);
    return count >= 1 && results->ai_family == AF_INET ? 0 : 1;
}
