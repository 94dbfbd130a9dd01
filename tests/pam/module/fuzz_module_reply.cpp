// libFuzzer target: an application's conversation that replies anything at
// all to a module's try_converse. After every call the result is checked
// against a model of the documented rules (pam_module.hpp, docs/api.md) and
// a breach traps; ASan/UBSan/LeakSanitizer catch every wrong free and leak.
// The handle is real: pam_start_confdir over a service file written at start.
//
// Input layout (every byte optional; missing bytes read as 0):
//   [count] then per message: [style]
//   [return code] [array written]
//   then per slot: [flags] [length low] [length high] [fill]
#include <handoff/pam_module.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

namespace pam = handoff::pam;

class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

[[noreturn]] void breach(const char* what) {
    std::fprintf(stderr, "contract breach: %s\n", what);
    __builtin_trap();
}

struct slot {
    bool answered = false;  // resp is set
    int retcode = 0;
    std::string answer;
};

// What the application does on this call.
struct plan {
    std::size_t count = 0;
    std::vector<pam::outgoing> messages;
    int rc = PAM_SUCCESS;
    bool write_array = false;
    std::vector<slot> slots;
};

// libFuzzer's entry points and the C callback share no context but these two.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
plan* current = nullptr;

int conversation(int n, const ::pam_message** msg, ::pam_response** resp, void*) {
    const plan& p = *current;
    if (n != static_cast<int>(p.count) || msg == nullptr || resp == nullptr) breach("call");
    for (int i = 0; i < n; ++i) {
        if (msg[i] != &p.messages[static_cast<std::size_t>(i)].raw()) breach("messages");
    }
    if (p.write_array) {
        auto* r = static_cast<::pam_response*>(std::calloc(p.count, sizeof(::pam_response)));
        if (r == nullptr) return PAM_BUF_ERR;
        for (std::size_t i = 0; i < p.count; ++i) {
            r[i].resp_retcode = p.slots[i].retcode;
            if (p.slots[i].answered) {
                r[i].resp = static_cast<char*>(std::malloc(p.slots[i].answer.size() + 1));
                if (r[i].resp != nullptr) {
                    std::memcpy(r[i].resp, p.slots[i].answer.c_str(), p.slots[i].answer.size() + 1);
                }
            }
        }
        *resp = r;
    }
    return p.rc;
}

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see `current`
::pam_handle_t* pamh = nullptr;

// The documented rules, written out independently of the header.
struct expected {
    int code;
    pam::failure why;
};

expected model(const plan& p) {
    if (p.rc == PAM_BUF_ERR) return {PAM_BUF_ERR, pam::failure::out_of_memory};
    // A module never passes PAM_CONV_AGAIN up: the header makes it PAM_INCOMPLETE.
    if (p.rc == PAM_CONV_AGAIN) return {PAM_INCOMPLETE, pam::failure::conversation_error};
    if (p.rc != PAM_SUCCESS) return {PAM_CONV_ERR, pam::failure::conversation_error};
    bool any_prompt = false;
    for (const pam::outgoing& m : p.messages)
        any_prompt = any_prompt || pam::is_prompt_style(m.kind());
    if (!p.write_array) {
        return any_prompt ? expected{PAM_CONV_ERR, pam::failure::bad_reply}
                          : expected{PAM_SUCCESS, pam::failure::none};
    }
    for (std::size_t i = 0; i < p.count; ++i) {
        const slot& s = p.slots[i];
        if (s.retcode != 0) return {PAM_CONV_ERR, pam::failure::bad_reply};
        if (!pam::is_prompt_style(p.messages[i].kind())) continue;
        if (!s.answered) return {PAM_CONV_ERR, pam::failure::unanswered_prompt};
        if (s.answer.size() >= PAM_MAX_RESP_SIZE)
            return {PAM_CONV_ERR, pam::failure::answer_too_long};
    }
    return {PAM_SUCCESS, pam::failure::none};
}

const char* const texts[] = {"info", "error", "Code: ", "Login: "};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    char dir[] = "/tmp/handoff-fuzz-module-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    const std::string service = std::string(dir) + "/fuzz";
    std::FILE* f = std::fopen(service.c_str(), "w");
    if (f == nullptr) std::abort();
    std::fputs("auth required pam_permit.so\n", f);
    if (std::fclose(f) != 0) std::abort();
    ::pam_conv conv{&conversation, nullptr};
    if (::pam_start_confdir("fuzz", "alice", &conv, dir, &pamh) != PAM_SUCCESS) std::abort();
    ::unlink(service.c_str());
    ::rmdir(dir);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    reader in(data, size);
    plan p;
    p.count = 1 + in.byte() % PAM_MAX_NUM_MSG;
    for (std::size_t i = 0; i < p.count; ++i) {
        switch (in.byte() % 4) {
        case 0: p.messages.push_back(pam::outgoing::info(texts[0])); break;
        case 1: p.messages.push_back(pam::outgoing::error(texts[1])); break;
        case 2: p.messages.push_back(pam::outgoing::prompt(texts[2])); break;
        default: p.messages.push_back(pam::outgoing::prompt(texts[3], pam::echo::on)); break;
        }
    }
    const int codes[] = {PAM_SUCCESS, PAM_SUCCESS,  PAM_SUCCESS, PAM_CONV_ERR,
                         PAM_BUF_ERR, PAM_AUTH_ERR, 99,          PAM_CONV_AGAIN};
    p.rc = codes[in.byte() % 8];
    p.write_array = in.byte() % 4 != 0;
    p.slots.resize(p.count);
    for (slot& s : p.slots) {
        const std::uint8_t flags = in.byte();
        s.answered = (flags & 1) == 0;
        s.retcode = (flags & 6) == 6 ? 1 + (flags >> 3) : 0;
        const std::size_t length = (in.byte() | static_cast<std::size_t>(in.byte()) << 8) % 1100;
        const char fill = static_cast<char>(1 + in.byte() % 255);  // never a NUL
        s.answer.assign(length, fill);
    }

    current = &p;
    pam::responses r = pam::module_handle(pamh).try_converse(p.messages.data(), p.count);
    current = nullptr;

    const expected want = model(p);
    if (r.code() != want.code || r.conversation_failure() != want.why) breach("code or reason");
    if (r.ok() != (want.code == PAM_SUCCESS)) breach("ok()");
    if (!r.ok()) {
        if (r.size() != 0 || r.has_answer(0)) breach("answers after a failure");
        return 0;
    }
    if (r.size() != p.count) breach("size");
    for (std::size_t i = 0; i < p.count; ++i) {
        const bool prompt = pam::is_prompt_style(p.messages[i].kind());
        if (!prompt || !p.write_array) {
            if (r.has_answer(i)) breach("an answer where none belongs");
            continue;
        }
        if (r.text(i) != p.slots[i].answer) breach("the answer changed");
    }
    return 0;
}
