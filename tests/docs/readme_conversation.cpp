// Completes README.md's pam::conversation block and calls the C function
// libpam would call, with one prompt and one info message.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <handoff/pam.hpp>

namespace {

namespace pam = handoff::pam;

void show(std::string_view text) {
    std::printf("shown: %.*s\n", static_cast<int>(text.size()), text.data());
}
std::string ask(std::string_view prompt, bool echo) {
    std::printf("asked: %.*s (echo %s)\n", static_cast<int>(prompt.size()), prompt.data(),
                echo ? "on" : "off");
    return "secret";
}

}  // namespace

int main() {
#include DOC_BLOCK
    ::pam_message info{PAM_TEXT_INFO, "hello"};
    ::pam_message prompt{PAM_PROMPT_ECHO_OFF, "Password: "};
    const ::pam_message* msgs[] = {&info, &prompt};
    ::pam_response* resp = nullptr;
    if (c.conv(2, msgs, &resp, c.appdata_ptr) != PAM_SUCCESS) return 1;
    std::printf("answer: %s\n", resp[1].resp);
    std::free(resp[1].resp);
    std::free(resp);
    return 0;
}
