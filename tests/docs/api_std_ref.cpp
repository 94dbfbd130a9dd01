// Completes docs/api.md's std::ref block: the "login" service the test sets
// up under pam_wrapper takes alice's password "secret".
#include <cstdio>
#include <functional>
#include <string>

#include <handoff/pam.hpp>

namespace {

namespace pam = handoff::pam;

void show(const std::string& line) { std::printf("transcript: %s\n", line.c_str()); }

void example() {
#include DOC_BLOCK
}

}  // namespace

int main() { example(); }
