// asprintf(3) with out_ptr: the formatted string is owned at once.
//
// The C it replaces:
//   char* msg = NULL;
//   if (asprintf(&msg, "%s has %d items", name, n) < 0) return -1;  /* msg undefined */
//   ...; free(msg);
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstring>

int main() {
    handoff::c_unique_ptr<char> message;
    // The owner is set when the full expression ends: keep the result in a
    // variable and test it afterwards (docs/caveats.md).
    int n = ::asprintf(handoff::out_ptr(message), "%s has %d items", "cart", 3);
    if (n < 0 || !message) return 1;
    std::printf("%s\n", message.get());
    return std::strcmp(message.get(), "cart has 3 items") == 0 ? 0 : 1;
}
