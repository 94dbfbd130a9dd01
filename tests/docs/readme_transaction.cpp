// Completes README.md's pam::transaction block: the user, and a terminal of
// sorts (ask() answers alice's password of the "login" service the test sets
// up under pam_wrapper).
#include <cstdio>
#include <string>
#include <string_view>

#include <handoff/pam.hpp>

namespace {

void show(std::string_view text) {
    std::printf("shown: %.*s\n", static_cast<int>(text.size()), text.data());
}
std::string ask(std::string_view prompt, bool echo) {
    std::printf("asked: %.*s (echo %s)\n", static_cast<int>(prompt.size()), prompt.data(),
                echo ? "on" : "off");
    return "secret";
}
void explain(const char* message, const char* why) { std::printf("%s (%s)\n", message, why); }

int example(const char* user) {
#include DOC_BLOCK
    return s ? 0 : 1;
}

}  // namespace

int main() { return example("alice"); }
