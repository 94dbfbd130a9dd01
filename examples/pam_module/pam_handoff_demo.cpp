// pam_handoff_demo.so: a PAM module written with handoff::pam's module side.
//
//   auth  required  pam_handoff_demo.so code=<string>
//
// authenticate: in one conversation call, an info message and the echo-off
// prompt "Code: "; the answer is compared with code= in constant time.
//   PAM_SUCCESS      the answer is the code
//   PAM_AUTH_ERR     it is not (the failure is counted)
//   PAM_CONV_ERR     the conversation failed (whatever code it returned) or
//                    its reply was invalid (see pam::responses)
//   PAM_SERVICE_ERR  code= is missing or empty
//   PAM_BUF_ERR      no memory for the attempt counter
// Failed attempts are counted in an object kept with pam_set_data; the info
// message of the next attempt in the same transaction says how many there
// were ("1 failed attempt so far."), the first one says "Enter the code.".
// setcred returns PAM_SUCCESS; no other entry point is provided.
#include <handoff/pam_module.hpp>

#include <cstdio>

namespace pam = handoff::pam;

namespace {

struct attempts {
    unsigned failed = 0;
};

constexpr pam::data_key<attempts> attempts_key{"pam_handoff_demo.attempts"};

}  // namespace

HANDOFF_PAM_AUTHENTICATE(h, flags, args) {
    std::optional<std::string_view> code = args.value("code");
    if (!code || code->empty()) {
        h.log(LOG_ERR, "no code= argument in the service file");
        return PAM_SERVICE_ERR;
    }

    attempts* seen = h.get_data(attempts_key);
    char info[64] = "Enter the code.";
    if (seen != nullptr && seen->failed > 0) {
        // At most 35 bytes: it fits, so the count snprintf returns tells nothing.
        (void)std::snprintf(info, sizeof info, "%u failed attempt%s so far.", seen->failed,
                            seen->failed == 1 ? "" : "s");
    }

    // One call, two messages; the reply is validated, wiped and freed.
    pam::responses reply =
        h.try_converse({pam::outgoing::info(info), pam::outgoing::prompt("Code: ")});
    if (!reply) return PAM_CONV_ERR;
    if (pam::constant_time_equal(reply.text(1), *code)) return PAM_SUCCESS;

    if (seen == nullptr) {
        handoff::result<handoff::c_unique_ptr<attempts>> made =
            handoff::try_make_c_unique<attempts>();
        if (!made) return PAM_BUF_ERR;
        seen = made->get();
        // On failure the object is freed before this returns; libpam took nothing.
        pam::status kept = h.try_set_data(attempts_key, std::move(*made));
        if (!kept) return kept.code();
    }
    ++seen->failed;
    return PAM_AUTH_ERR;
}

HANDOFF_PAM_SETCRED(h, flags, args) { return PAM_SUCCESS; }
