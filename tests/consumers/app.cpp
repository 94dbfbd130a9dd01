// A consumer of the core header (handoff::handoff, handoff.pc, dependency
// 'handoff', or handoff.hpp vendored alone): builds C strings the C way.
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstring>

// An exception (a failed allocation) ends the program and fails the consumer test, as it should.
int main() {  // NOLINT(bugprone-exception-escape): see above
    auto words = handoff::c_string_list<>::from({"vendored", "or", "installed"});
    auto copy = handoff::c_strdup("works");
    // run.py compares the version with the one of the source it built from.
    std::printf("handoff %s: %s %zu\n", HANDOFF_VERSION, copy.get(), words.size());
    return words.size() == 3 && std::strcmp(copy.get(), "works") == 0 ? 0 : 1;
}
