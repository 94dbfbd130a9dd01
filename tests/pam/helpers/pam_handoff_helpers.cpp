// A test module for the module-side helpers of pam_module.hpp (the
// authentication-token pair, PAM_SILENT, the fail delay), driven by
// test_module_helpers.cpp through the real libpam.
//
// Arguments: `set_authtok=X` makes the module only set PAM_AUTHTOK to X and
// succeed (a module earlier in the stack, for use_first_pass and
// use_authtok); `set_oldauthtok=X` the same for PAM_OLDAUTHTOK. Otherwise
// the application picks what the module does by setting PAM_RUSER to a mode
// (see authenticate and chauthtok), and reads what the module saw from the PAM
// environment: HELPERS_CODE (the helper's PAM code) and HELPERS_TOKEN (the
// token, when there is one).
#include <handoff/pam_module.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>

namespace pam = handoff::pam;

namespace {

// What a helper returned, for the application to read.
int report(pam::module_handle h, const pam::libpam_string& token) {
    char code[16];
    (void)std::snprintf(code, sizeof code, "%d", token.code());
    (void)h.try_setenv("HELPERS_CODE", code);
    if (token) (void)h.try_setenv("HELPERS_TOKEN", token.view());
    return PAM_SUCCESS;
}

// The set_authtok= / set_oldauthtok= stage, if this instance is one.
std::optional<int> preset(pam::module_handle h, const pam::module_arguments& args) {
    if (std::optional<std::string_view> t = args.value("set_authtok")) {
        return h.try_set_item(pam::module_item::authtok, *t).code();
    }
    if (std::optional<std::string_view> t = args.value("set_oldauthtok")) {
        return h.try_set_item(pam::module_item::oldauthtok, *t).code();
    }
    return std::nullopt;
}

}  // namespace

HANDOFF_PAM_AUTHENTICATE(h, flags, args) {
    if (std::optional<int> rc = preset(h, args)) return *rc;
    const std::optional<std::string_view> mode = h.get_item(pam::item::ruser);
    if (!mode) return PAM_SERVICE_ERR;
    // pam_get_authtok with this instance's arguments (use_first_pass, ...).
    if (*mode == "authtok") return report(h, h.try_authtok("Token: "));
    if (*mode == "old_authtok") return report(h, h.try_old_authtok("Old token: "));
    // The password-change pair outside pam_sm_chauthtok.
    if (*mode == "verify_outside") {
        pam::libpam_string first = h.try_authtok_noverify("New token: ");
        if (!first) return report(h, first);
        return report(h, h.try_authtok_verify(first, "new token: "));
    }
    // Messages: the flags of this call decide (PAM_SILENT).
    if (*mode == "infof") {
        pam::status s = h.try_infof(flags, "%s has %d new %s", "alice", 3, "messages");
        if (!s) return s.code();
        return h.try_errorf(flags, "%s", "and one error").code();
    }
    if (*mode == "fail_delay") {
        if (!h.try_fail_delay(std::chrono::milliseconds(20))) return PAM_SERVICE_ERR;
        return PAM_AUTH_ERR;
    }
    if (*mode == "args") {
        char count[16];
        (void)std::snprintf(count, sizeof count, "%zu",
                            args.warn_unknown(h, {"debug", "file=", "use_first_pass"}));
        return h.try_setenv("HELPERS_UNKNOWN", count).code();
    }
#if HANDOFF_HAS_EXCEPTIONS
    // The throwing forms: pam::error carries libpam's code out of the body.
    if (*mode == "throw:noverify") {
        const std::string_view first = h.authtok_noverify("New token: ");
        (void)h.try_setenv("HELPERS_TOKEN", first);
        return PAM_SUCCESS;
    }
    if (*mode == "throw:verify") {
        (void)h.authtok_verify(pam::libpam_string(), "New token: ");
        return PAM_SUCCESS;
    }
    if (*mode == "throw:env") {
        h.setenv("HELPERS_A", "1");
        h.putenv("HELPERS_B=2");
        h.unsetenv("HELPERS_A");
        h.unsetenv("HELPERS_A");  // not set any more: PAM_BAD_ITEM
        return PAM_SUCCESS;
    }
#endif
    return PAM_SERVICE_ERR;
}

HANDOFF_PAM_SETCRED(h, flags, args) { return PAM_SUCCESS; }

// Runs twice per pam_chauthtok: PAM_PRELIM_CHECK, then PAM_UPDATE_AUTHTOK.
// Each mode acts in the update pass and reports there.
HANDOFF_PAM_CHAUTHTOK(h, flags, args) {
    if (std::optional<int> rc = preset(h, args)) return *rc;
    if (!flags.update_authtok()) return PAM_SUCCESS;
    const std::optional<std::string_view> mode = h.get_item(pam::item::ruser);
    if (!mode) return PAM_SERVICE_ERR;
    // libpam asks twice and compares (or takes the token set already).
    if (*mode == "new") return report(h, h.try_authtok("New token: "));
    if (*mode == "pair") {
        const bool was_set = h.get_item(pam::module_item::authtok).has_value();
        pam::libpam_string first = h.try_authtok_noverify("New token: ");
        if (!first || was_set) return report(h, first);
        // Judged between the two prompts, as pam_pwquality does.
        if (first.view().size() < 4) {
            (void)h.try_errorf(flags, "%s", "too short");
            return report(h, pam::libpam_string(nullptr, pam::status(PAM_AUTHTOK_ERR, "short")));
        }
        return report(h, h.try_authtok_verify(first, "New token: "));
    }
    if (*mode == "new_default") return report(h, h.try_authtok());
    // A first token without a string: refused before libpam reads through it.
    if (*mode == "verify_nothing") return report(h, h.try_authtok_verify(pam::libpam_string()));
#if HANDOFF_HAS_EXCEPTIONS
    if (*mode == "throw:pair") {
        const pam::libpam_string first = h.try_authtok_noverify("New token: ");
        const std::string_view fresh = h.authtok_verify(first, "New token: ");
        return h.try_setenv("HELPERS_TOKEN", fresh).code();
    }
#endif
    if (*mode == "pair_default_prompts") {
        pam::libpam_string first = h.try_authtok_noverify();
        return report(h, h.try_authtok_verify(first));
    }
    return PAM_SERVICE_ERR;
}
