// The README's event-loop example, compiled as the README shows it and run
// against pam_matrix under pam_wrapper: the right password logs in, the wrong
// one is PAM_AUTH_ERR, and the loop serves its other descriptor meanwhile.
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <unistd.h>

namespace {
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): the README's free functions
// (ask, show, serve_other) take no context, so what they use and count lives here
const char* password = "secret";
int prompts = 0, shown = 0, other_served = 0;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

handoff::secret_string ask(std::string_view, bool secret) {
    ++prompts;
    handoff::result<handoff::secret_string> made =
        handoff::secret_string::try_from(secret ? password : "?");
    if (!made) std::abort();
    return std::move(*made);
}
void show(std::string_view) { ++shown; }
void serve_other(int fd) {
    char byte = 0;
    if (::read(fd, &byte, 1) == 1) ++other_served;
}
}  // namespace

#include "readme_async_example.hpp"

int main() {
    int other[2];
    if (::pipe(other) != 0) return 2;
    (void)!::write(other[1], "x", 1);  // work for the loop's other descriptor
    pam::status right = log_in("matrix", "alice", other[0]);
    password = "not-it";
    pam::status wrong = log_in("matrix", "alice", other[0]);
    std::printf("right: %s; wrong: %s; prompts %d, other descriptor served %d\n", right.message(),
                wrong.message(), prompts, other_served);
    ::close(other[0]);
    ::close(other[1]);
    return right.ok() && wrong.code() == PAM_AUTH_ERR && prompts == 2 && other_served == 1 ? 0 : 1;
}
