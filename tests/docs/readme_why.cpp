// Completes README.md's "Why" block: the answers, their count and a C API
// that takes the array and frees it the C way.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <handoff/handoff.hpp>

namespace {

void give_to_c(char** replies) {
    for (int i = 0; i < 2; ++i) {
        std::printf("%s\n", replies[i]);
        std::free(replies[i]);
    }
    std::free(replies);
}

void example(const std::vector<std::string>& answers) {
    std::size_t n = answers.size();
#include DOC_BLOCK
}

}  // namespace

int main() { example({"first", "second"}); }
