// realpath(3) with a NULL buffer returns malloc'ed memory: adopt it.
//
// The C it replaces:
//   char* p = realpath(".", NULL);
//   if (!p) return -1;
//   ...; free(p);
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstdlib>

int main() {
    handoff::c_unique_ptr<char> here = handoff::adopt(::realpath(".", nullptr));
    if (!here) return 1;
    handoff::c_unique_ptr<char> missing = handoff::adopt(::realpath("/no/such/dir/x", nullptr));
    std::printf("%s\n", here.get());
    return here.get()[0] == '/' && !missing ? 0 : 1;
}
