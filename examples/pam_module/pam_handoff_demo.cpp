// pam_handoff_demo.so: a PAM module written with handoff::pam's module side.
//
//   auth  required  pam_handoff_demo.so code=<string> [delay=<ms>] [nodelay]
//
// authenticate: in one conversation call, an info message and the echo-off
// prompt "Code: " (the prompt alone under PAM_SILENT); the answer is compared
// with code= in constant time.
//   PAM_SUCCESS      the answer is the code
//   PAM_AUTH_ERR     it is not (the failure is counted, and libpam is asked
//                    for a fail delay of delay= milliseconds, 2000 by
//                    default, none with nodelay, as pam_unix does)
//   PAM_CONV_ERR     the conversation failed (whatever code it returned but
//                    PAM_CONV_AGAIN) or its reply was invalid (see pam::responses)
//   PAM_INCOMPLETE   the conversation returned PAM_CONV_AGAIN: call again
//   PAM_SERVICE_ERR  code= is missing, empty, or PAM_MAX_RESP_SIZE bytes or
//                    longer (no answer could match it; its value is never
//                    logged), or delay= is not a number
//   PAM_BUF_ERR      no memory for the attempt counter
// Failed attempts are counted in an object kept with pam_set_data, per line
// of the stack (a module listed twice counts each line's failures apart); the
// info message of the next attempt in the same transaction says how many there
// were ("1 failed attempt so far."), the first one says "Enter the code.".
// setcred returns PAM_SUCCESS; no other entry point is provided.
#include <handoff/pam_module.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>

namespace pam = handoff::pam;

namespace {

// Failures per line of the stack. A line is known by where libpam keeps its
// code= argument: libpam holds each line's arguments until pam_end.
struct attempts {
    struct line {
        const void* id = nullptr;
        unsigned failed = 0;
    };
    line lines[8];

    // The line's entry; nullptr when all are taken by other lines.
    line* find(const void* id) noexcept {
        for (line& l : lines) {
            if (l.id == id || l.id == nullptr) {
                l.id = id;
                return &l;
            }
        }
        return nullptr;
    }
};

constexpr pam::data_key<attempts> attempts_key{"pam_handoff_demo.attempts"};

// The count this line has so far (0 when nothing is stored yet).
unsigned failures_so_far(pam::module_handle h, const void* line) {
    attempts* seen = h.get_data(attempts_key);
    if (seen == nullptr) return 0;
    const attempts::line* l = seen->find(line);
    return l == nullptr ? 0 : l->failed;
}

// Counts one failure of this line. The object is looked up again here, after
// the conversation: the application's conversation may have replaced it
// (libpam lets it call pam_set_data), so no pointer is kept across it.
int count_failure(pam::module_handle h, const void* line) {
    attempts* seen = h.get_data(attempts_key);
    if (seen == nullptr) {
        handoff::result<handoff::c_unique_ptr<attempts>> made =
            handoff::try_make_c_unique<attempts>();
        if (!made) return PAM_BUF_ERR;
        // On failure the object is freed before this returns; libpam took nothing.
        pam::status kept = h.try_set_data(attempts_key, std::move(*made));
        if (!kept) return kept.code();
        seen = h.get_data(attempts_key);             // what libpam now owns
        if (seen == nullptr) return PAM_SYSTEM_ERR;  // LCOV_EXCL_LINE: just stored
    }
    if (attempts::line* l = seen->find(line)) ++l->failed;
    return PAM_AUTH_ERR;
}

}  // namespace

HANDOFF_PAM_AUTHENTICATE(h, flags, args) {
    std::optional<std::string_view> code = args.value("code");
    if (!code || code->empty()) {
        h.log(LOG_ERR, "no code= argument in the service file");
        return PAM_SERVICE_ERR;
    }
    if (code->size() >= PAM_MAX_RESP_SIZE) {
        // No answer can be that long (try_converse refuses it): the line is
        // wrong. Its value is a secret, so only its length is logged.
        h.log(LOG_ERR, "code= has %zu bytes; at most %d fit in an answer", code->size(),
              PAM_MAX_RESP_SIZE - 1);
        return PAM_SERVICE_ERR;
    }
    unsigned delay_ms = 2000;
    if (std::optional<std::string_view> d = args.value("delay")) {
        const char* end = d->data() + d->size();
        if (d->empty() || std::from_chars(d->data(), end, delay_ms).ptr != end) {
            h.log(LOG_ERR, "delay= is not a number of milliseconds");
            return PAM_SERVICE_ERR;
        }
    }
    if (args.has("nodelay")) delay_ms = 0;
    const void* line = code->data();

    char info[64] = "Enter the code.";
    if (const unsigned failed = failures_so_far(h, line); failed > 0) {
        // At most 35 bytes: it fits, so the count snprintf returns tells nothing.
        (void)std::snprintf(info, sizeof info, "%u failed attempt%s so far.", failed,
                            failed == 1 ? "" : "s");
    }

    // One call; the reply is validated, wiped and freed. Under PAM_SILENT the
    // info message is left out and the prompt goes alone.
    const pam::outgoing prompt = pam::outgoing::prompt("Code: ");
    const pam::outgoing both[] = {pam::outgoing::info(info), prompt};
    pam::responses reply = flags.silent() ? h.try_converse(&prompt, 1) : h.try_converse(both, 2);
    // PAM_INCOMPLETE when the application said PAM_CONV_AGAIN (never pass
    // that code up: libpam calls the module again); any other failure is
    // PAM_CONV_ERR.
    if (!reply) return reply.code() == PAM_INCOMPLETE ? PAM_INCOMPLETE : PAM_CONV_ERR;
    const std::size_t answer = reply.size() - 1;
    // Asked for before the comparison, as pam_unix does: a failure then waits.
    if (delay_ms > 0) (void)h.try_fail_delay(std::chrono::milliseconds(delay_ms));
    if (pam::constant_time_equal(reply.text(answer), *code)) return PAM_SUCCESS;
    return count_failure(h, line);
}

HANDOFF_PAM_SETCRED(h, flags, args) { return PAM_SUCCESS; }
