// libFuzzer target: arbitrary message arrays and handler behaviour into the
// conversation adapter. It checks the pam_conv(3) contract after every call
// and traps on any breach; ASan/UBSan/LeakSanitizer catch the rest.
//
// Input layout (every byte optional; missing bytes read as 0):
//   [count] [flags] then per message: [style] [kind] [length] [text...]
//   then per prompt reply: [reply] [length] [answer...]
#include <handoff/pam.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::string bytes(std::size_t n) {
        std::string out;
        while (n-- > 0 && pos_ < size_) out.push_back(static_cast<char>(data_[pos_++]));
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

[[noreturn]] void breach() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace pam = handoff::pam;
    reader in(data, size);
    // -2 .. 37: around both ends of 1..PAM_MAX_NUM_MSG.
    int count = static_cast<int>(in.byte() % 40) - 2;
    std::uint8_t flags = in.byte();
    bool null_msg = (flags & 1) != 0;
    bool null_resp = (flags & 2) != 0;

    std::size_t stored = count > 0 ? static_cast<std::size_t>(count) : 0;
    std::vector<std::string> texts(stored);
    std::vector<::pam_message> messages(stored);
    std::vector<const ::pam_message*> pointers(stored);
    for (std::size_t i = 0; i < stored; ++i) {
        int style = static_cast<int>(in.byte() % 10) - 1;  // -1 .. 8
        std::uint8_t kind = in.byte();
        texts[i] = in.bytes(in.byte());
        messages[i].msg_style = style;
        messages[i].msg = (kind % 16) == 0 ? nullptr : texts[i].c_str();
        pointers[i] = (kind % 16) == 1 ? nullptr : &messages[i];
    }

    pam::conversation conv([&](const pam::message& m) -> pam::reply {
        if (!m.is_prompt()) return pam::reply::none();
        std::uint8_t choice = in.byte();
        switch (choice % 6) {
        case 0: return pam::reply::none();
        case 1: return pam::reply::refuse(pam::failure::cancelled);
        case 2: throw std::runtime_error("handler failure");
        case 3:
            return pam::reply::answer(std::string(static_cast<std::size_t>(in.byte()) * 3, 'x'));
        default: return pam::reply::answer(in.bytes(in.byte()));  // may hold NULs
        }
    });

    ::pam_response stale{};
    ::pam_response* const sentinel = &stale;  // must come back untouched on failure
    ::pam_response* resp = sentinel;
    ::pam_conv c = conv.c_conv();
    int rc = c.conv(count, null_msg ? nullptr : pointers.data(), null_resp ? nullptr : &resp,
                    c.appdata_ptr);

    if (rc != PAM_SUCCESS) {
        if (rc != PAM_CONV_ERR && rc != PAM_BUF_ERR) breach();
        if (resp != sentinel) breach();  // *resp must not be written on failure
        if (conv.last_failure() == pam::failure::none) breach();
        return 0;
    }
    if (null_resp) {
        if (resp != sentinel) breach();
        return 0;
    }
    if (resp == sentinel || resp == nullptr) breach();
    for (int i = 0; i < count; ++i) {
        if (resp[i].resp_retcode != 0) breach();
        if (resp[i].resp != nullptr && std::strlen(resp[i].resp) >= PAM_MAX_RESP_SIZE) breach();
        bool prompt = pam::is_prompt_style(
            static_cast<pam::style>(pointers[static_cast<std::size_t>(i)]->msg_style));
        if (prompt && resp[i].resp == nullptr) breach();
        std::free(resp[i].resp);  // as libpam does
    }
    std::free(resp);
    return 0;
}
