// A consumer of the core header: builds a reply array the C way and frees it.
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstring>

int main() {
    auto words = handoff::c_string_list<>::from({"vendored", "or", "installed"});
    auto copy = handoff::c_strdup("works");
    std::printf("handoff %s: %s %zu\n", HANDOFF_VERSION, copy.get(), words.size());
    return words.size() == 3 && std::strcmp(copy.get(), "works") == 0 ? 0 : 1;
}
