// The demo module driven by cwrap's libpamtest (under pam_wrapper), with
// libpamtest's own conversation (which answers info messages with a copy of
// their text: the module must free it) and, through _pamtest_conv, with a
// conversation made by handoff's application side. libpamtest 1.1.4's
// run_pamtest_conv macro does not compile, so _pamtest/_pamtest_conv are
// called directly. Exits 0 when every scenario went as expected.
#include <handoff/pam.hpp>

// libpamtest.h declares C functions without extern "C".
extern "C" {
#include <libpamtest.h>
}

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace pam = handoff::pam;

namespace {

// The program's tally: expect() counts, main() reports.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int failures = 0;

void expect(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}

pam_testcase test_case(pamtest_ops op, int expected) {
    pam_testcase c{};
    c.pam_operation = op;
    c.expected_rv = expected;
    return c;
}

void report(const char* what, pamtest_err err, std::vector<pam_testcase>& cases) {
    if (err != PAMTEST_ERR_OK) {
        const pam_testcase* bad = _pamtest_failed_case(cases.data(), cases.size());
        std::printf("  %s: %s", what, pamtest_strerror(err));
        if (bad != nullptr) {
            std::printf(" (operation %d returned %d, expected %d)",
                        static_cast<int>(bad->pam_operation), bad->op_rv, bad->expected_rv);
        }
        std::printf("\n");
    }
}

// libpamtest's conversation: two attempts in one transaction, the count in the
// second info message. Its info buffers are not NUL-terminated by it.
void builtin_conversation() {
    const char* echo_off[] = {"0000", "1234", nullptr};
    char info_storage[4][PAM_MAX_MSG_SIZE + 1] = {};
    char* info[4] = {info_storage[0], info_storage[1], info_storage[2], info_storage[3]};
    pamtest_conv_data data{};
    data.in_echo_off = echo_off;
    data.out_info = info;
    std::vector<pam_testcase> cases = {test_case(PAMTEST_AUTHENTICATE, PAM_AUTH_ERR),
                                       test_case(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
                                       test_case(PAMTEST_SETCRED, PAM_SUCCESS)};
    pamtest_err err = _pamtest("demo", "alice", &data, cases.data(), cases.size(), nullptr);
    report("libpamtest conversation", err, cases);
    expect(err == PAMTEST_ERR_OK, "libpamtest: wrong code, then the right one, then setcred");
    expect(std::strcmp(info[0], "Enter the code.") == 0, "libpamtest: first info message");
    expect(std::strcmp(info[1], "1 failed attempt so far.") == 0,
           "libpamtest: the second attempt shows the count");
}

// libpamtest's conversation with no answer left: it leaves the prompt's slot
// NULL and returns PAM_SUCCESS; the module returns PAM_CONV_ERR.
void builtin_conversation_without_answers() {
    const char* echo_off[] = {nullptr};
    pamtest_conv_data data{};
    data.in_echo_off = echo_off;
    std::vector<pam_testcase> cases = {test_case(PAMTEST_AUTHENTICATE, PAM_CONV_ERR)};
    pamtest_err err = _pamtest("demo", "alice", &data, cases.data(), cases.size(), nullptr);
    report("no answers", err, cases);
    expect(err == PAMTEST_ERR_OK, "libpamtest: an unanswered prompt is PAM_CONV_ERR");
}

// _pamtest_conv with a conversation from handoff's application side.
void handoff_conversation() {
    pam::conversation<pam::scripted> conv(pam::scripted({"4321", "1234"}));
    ::pam_conv c = conv.c_conv();
    std::vector<pam_testcase> cases = {test_case(PAMTEST_AUTHENTICATE, PAM_AUTH_ERR),
                                       test_case(PAMTEST_AUTHENTICATE, PAM_SUCCESS)};
    pamtest_err err =
        _pamtest_conv("demo", "alice", c.conv, c.appdata_ptr, cases.data(), cases.size(), nullptr);
    report("handoff conversation", err, cases);
    expect(err == PAMTEST_ERR_OK, "_pamtest_conv with pam::conversation: wrong, then right");
    const std::vector<std::string>& seen = conv.handler().transcript();
    expect(seen.size() == 2 && seen[1] == "1 failed attempt so far.",
           "_pamtest_conv: the count reached handoff's conversation");
}

void missing_argument() {
    const char* echo_off[] = {"1234", nullptr};
    pamtest_conv_data data{};
    data.in_echo_off = echo_off;
    std::vector<pam_testcase> cases = {test_case(PAMTEST_AUTHENTICATE, PAM_SERVICE_ERR)};
    pamtest_err err = _pamtest("demo_noarg", "alice", &data, cases.data(), cases.size(), nullptr);
    report("missing argument", err, cases);
    expect(err == PAMTEST_ERR_OK, "libpamtest: no code= is PAM_SERVICE_ERR");
}

}  // namespace

int main() {
    builtin_conversation();
    builtin_conversation_without_answers();
    handoff_conversation();
    missing_argument();
    std::printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
