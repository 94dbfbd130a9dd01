// Completes docs/caveats.md's out_ptr block (asprintf is a GNU extension).
#include <cstdio>  // std::puts in the block

#include <handoff/handoff.hpp>

namespace {

int example() {
#include DOC_BLOCK
    std::printf("%s\n", s.get());
    return 0;
}

}  // namespace

int main() { return example(); }
