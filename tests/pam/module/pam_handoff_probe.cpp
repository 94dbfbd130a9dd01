// A test module built on pam_module.hpp, driven by test_pam_module.cpp through
// the real libpam. It is built twice (the second time as pam_handoff_twin.so
// with HANDOFF_PROBE_TWIN), with default symbol visibility, so the "twin" mode
// can show that module data is typed per module. The application picks what pam_sm_authenticate
// does by setting PAM_RUSER to a mode before the call (see the list in authenticate). Destructors
// and deleters report to the application as lines written to the file descriptor in
// HANDOFF_PROBE_FD ("destroyed A"), so the test can see what ran, when, and how often, even after
// pam_end.
//
// The body returns PAM_SUCCESS when what it checked held, PAM_AUTH_ERR
// otherwise; the throw: modes use the throwing forms, and what they throw the
// barrier answers for.
#include <handoff/pam_module.hpp>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include <pthread.h>
#include <unistd.h>

#if HANDOFF_HAS_EXCEPTIONS
#include <new>
#include <stdexcept>
#include <system_error>
#endif

namespace pam = handoff::pam;

namespace {

void report(const char* event, const char* name = "") noexcept {
    const char* fd_text = std::getenv("HANDOFF_PROBE_FD");
    if (fd_text == nullptr) return;
    char* end = nullptr;
    const long fd = std::strtol(fd_text, &end, 10);
    if (end == fd_text || *end != '\0' || fd < 0 || fd > INT_MAX) return;
    char line[128];
    const int n = std::snprintf(line, sizeof line, "%s%s%s\n", event, *name ? " " : "", name);
    if (n > 0 && static_cast<std::size_t>(n) < sizeof line) {
        (void)!::write(static_cast<int>(fd), line, static_cast<std::size_t>(n));
    }
}

// An object whose destruction is reported with its name.
struct counted {
    explicit counted(const char* n) noexcept : name(n) {}
    counted(const counted&) = delete;
    counted& operator=(const counted&) = delete;
    ~counted() { report("destroyed", name); }
    const char* name;
};

struct other_type {
    int value = 0;
};

// A deleter with state: the name it reports comes from the deleter, not the object.
struct naming_deleter {
    const char* name;
    void operator()(counted* p) const noexcept {
        report("deleter", name);
        delete p;
    }
};

// A deleter that sees the cleanup's status, as a C cleanup function does.
struct status_deleter {
    void operator()(counted* p) const noexcept {
        report("deleter without status");
        delete p;
    }
    void operator()(counted* p, pam::data_cleanup c) const noexcept {
        char line[96];
        (void)std::snprintf(line, sizeof line, "replaced=%d silent=%d status=%d",
                            c.replaced() ? 1 : 0, c.silent() ? 1 : 0, c.status());
        report("cleanup", line);
        delete p;
    }
};

// A C object released by a function of its own (a deleter-only domain).
struct c_object {
    int id;
};
void c_object_free(c_object* p) {
    report("c_object_free");
    std::free(p);
}
using c_object_domain = handoff::deleter_domain<c_object_free>;

}  // namespace

// A type with external linkage, so both copies of the probe (this one and the
// twin, built with HANDOFF_PROBE_TWIN) have a type of the same name.
namespace probe_types {
struct shared {
    int value = 0;
};
}  // namespace probe_types

namespace {

constexpr pam::data_key<probe_types::shared> twin_key{"probe.twin"};
constexpr pam::data_key<counted> counted_key{"probe.counted"};
// An object whose deleter closes a file descriptor (a cancellation point).
struct closing_deleter {
    void operator()(int* fd) const noexcept {
        (void)::close(*fd);
        delete fd;
    }
};
constexpr pam::data_key<int> closing_key{"probe.closing"};
constexpr pam::data_key<other_type> same_name_other_type{"probe.counted"};
constexpr pam::data_key<int> c_int_key{"probe.c_int"};
constexpr pam::data_key<c_object> c_object_key{"probe.c_object"};
constexpr pam::data_key<counted> foreign_key{"probe.foreign"};

int verdict(bool ok) { return ok ? PAM_SUCCESS : PAM_AUTH_ERR; }

void free_byte(pam_handle_t*, void* data, int) { std::free(data); }

void free_foreign(pam_handle_t*, void* data, int) {
    report("foreign cleanup");
    std::free(data);
}

#if HANDOFF_HAS_EXCEPTIONS
int throw_for(std::string_view what, pam::module_handle h) {
    if (what == "bad_alloc") throw std::bad_alloc();
    if (what == "pam_error") {
        throw pam::error(pam::status(PAM_CRED_INSUFFICIENT, "probe: insufficient"));
    }
    if (what == "pam_error_success") throw pam::error(pam::status(PAM_SUCCESS, "probe: success?"));
    if (what == "pam_error_ignore") throw pam::error(pam::status(PAM_IGNORE, "probe: ignore?"));
    if (what == "system_error") {
        throw std::system_error(std::make_error_code(std::errc::io_error), "probe: disk");
    }
    if (what == "runtime_error") throw std::runtime_error("probe: runtime error");
    if (what == "int") throw 42;
    if (what == "after_set_data") {
        h.set_data(counted_key, std::make_unique<counted>("T"));
        throw std::runtime_error("probe: thrown after set_data");
    }
    if (what == "conversation") {
        // A throwing form: the application's conversation fails, pam::error
        // carries PAM_CONV_ERR out of the body.
        (void)h.prompt("Code: ");
        return PAM_SUCCESS;
    }
    if (what == "user") {
        (void)h.user();
        return PAM_SUCCESS;
    }
    // The throwing forms of the token calls: the token the application typed
    // must come back, or pam::error carries libpam's code out of the body.
    if (what == "authtok") return verdict(h.authtok("Token: ") == "typed-token");
    if (what == "old_authtok") return verdict(h.old_authtok("Old token: ") == "typed-token");
    if (what == "set_items") {
        h.set_item(pam::module_item::oldauthtok, "old-one");
        h.set_item(pam::module_item::authtok, "new-one");
        const bool read_back = h.old_authtok() == "old-one" && h.authtok() == "new-one";
        h.clear_item(pam::module_item::authtok);
        h.set_item(pam::item::tty, "pts/9");
        const bool tty_set = h.get_item(pam::item::tty) == std::optional<std::string_view>("pts/9");
        h.clear_item(pam::item::tty);
        return verdict(read_back && tty_set && !h.get_item(pam::module_item::authtok) &&
                       !h.get_item(pam::item::tty));
    }
    return PAM_SERVICE_ERR;
}
#endif

}  // namespace

HANDOFF_PAM_AUTHENTICATE(h, flags, args) {
    const std::optional<std::string_view> mode = h.get_item(pam::item::ruser);
    if (!mode) return PAM_SERVICE_ERR;
    const std::string_view m = *mode;

    // --- noexcept members that reach a cancellation point (the application
    // leaves a cancellation pending: test_pam_cancel.cpp) ---
    if (m == "log_pending") {
        h.log(LOG_NOTICE, "probe: a line logged with a cancellation pending");
        (void)h.try_putenv("=refused");  // libpam logs it
        (void)args.warn_unknown(h, {});  // every argument is unknown
        return PAM_SUCCESS;
    }
    if (m == "store_closing") {
        // Its deleter calls close, a cancellation point, at pam_end.
        return verdict(
            h.try_set_data(closing_key, std::unique_ptr<int, closing_deleter>(new int(-1))).ok());
    }

    // --- module data ---
    if (m == "store") {
        return verdict(h.try_set_data(counted_key, std::make_unique<counted>("A")).ok());
    }
    if (m == "store_then_read") {
        if (!h.try_set_data(counted_key, std::make_unique<counted>("A"))) return PAM_AUTH_ERR;
        counted* back = h.get_data(counted_key);
        return verdict(back != nullptr && std::strcmp(back->name, "A") == 0);
    }
    if (m == "replace") {
        if (!h.try_set_data(counted_key, std::make_unique<counted>("A"))) return PAM_AUTH_ERR;
        report("replacing");
        if (!h.try_set_data(counted_key, std::make_unique<counted>("B"))) return PAM_AUTH_ERR;
        report("replaced");
        counted* back = h.get_data(counted_key);
        return verdict(back != nullptr && std::strcmp(back->name, "B") == 0);
    }
    if (m == "read_A") {
        counted* back = h.get_data(counted_key);
        return verdict(back != nullptr && std::strcmp(back->name, "A") == 0);
    }
    if (m == "key_without_nul") {
        // Names in char arrays that hold no NUL: refused, never read past.
        // NOLINTNEXTLINE(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays): the case
        char full[8];
        std::memcpy(full, "probe.xx", sizeof full);
        // The array of 16 bytes sits before more text: strlen would run on.
        struct {
            char name[16];   // NOLINT(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
            char more[300];  // NOLINT(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
        } longer{};
        std::memset(&longer, 'k', sizeof longer);
        longer.more[sizeof longer.more - 1] = '\0';
        const pam::data_key<counted> full_key(full);
        const pam::data_key<counted> longer_key(longer.name);
        bool ok = !full_key.valid() && full_key.size() == 8 && !longer_key.valid() &&
                  longer_key.size() == 16;
        for (const auto* k : {&full_key, &longer_key}) {
            const pam::status s = h.try_set_data(*k, std::make_unique<counted>("K"));
            ok = ok && s.code() == PAM_SYSTEM_ERR &&
                 std::strcmp(s.message(), "handoff: a data_key name holds no NUL") == 0;
            ok = ok && h.get_data(*k) == nullptr && h.try_remove_data(*k).code() == PAM_SYSTEM_ERR;
        }
        return verdict(ok);
    }
    if (m == "read_nothing") return verdict(h.get_data(counted_key) == nullptr);
    if (m == "wrong_type") {
        if (!h.try_set_data(counted_key, std::make_unique<counted>("A"))) return PAM_AUTH_ERR;
        return verdict(h.get_data(same_name_other_type) == nullptr &&
                       h.get_data(counted_key) != nullptr);
    }
    if (m == "foreign") {
        // Data stored through the C API under a name a key uses: not a counted.
        void* raw = std::calloc(1, 64);
        if (raw == nullptr) return PAM_BUF_ERR;
        if (pam_set_data(h.native_handle(), foreign_key.name(), raw, free_foreign) != PAM_SUCCESS) {
            std::free(raw);
            return PAM_AUTH_ERR;
        }
        return verdict(h.get_data(foreign_key) == nullptr);
    }
    // What C modules store under a name a key uses (an old pam_unix idiom:
    // a small integer as the pointer, no cleanup; or one byte of data): not
    // read by get_data, here or in the demo module further down the stack.
    if (m == "plant_tiny" || m == "plant_byte") {
        const bool tiny = m == "plant_tiny";
        for (const char* name : {counted_key.name(), "pam_handoff_demo.attempts"}) {
            // The integer as a pointer is the C idiom under test.
            // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
            void* data = tiny ? reinterpret_cast<void*>(std::uintptr_t{1}) : std::malloc(1);
            if (data == nullptr) return PAM_BUF_ERR;
            if (!tiny) *static_cast<char*>(data) = 'x';
            if (pam_set_data(h.native_handle(), name, data, tiny ? nullptr : free_byte) !=
                PAM_SUCCESS) {
                if (!tiny) std::free(data);
                return PAM_AUTH_ERR;
            }
        }
        return verdict(h.get_data(counted_key) == nullptr);
    }
    if (m == "remove") {
        if (!h.try_set_data(counted_key, std::make_unique<counted>("A"))) return PAM_AUTH_ERR;
        report("removing");
        if (!h.try_remove_data(counted_key)) return PAM_AUTH_ERR;
        report("removed");
        return verdict(h.get_data(counted_key) == nullptr);
    }
    if (m == "empty_owner") {
        if (!h.try_set_data(counted_key, std::make_unique<counted>("A"))) return PAM_AUTH_ERR;
        report("emptying");
        if (!h.try_set_data(counted_key, std::unique_ptr<counted>())) return PAM_AUTH_ERR;
        report("emptied");
        return verdict(h.get_data(counted_key) == nullptr);
    }
    if (m == "c_unique") {
        // malloc'ed: freed with free(3) at pam_end (a sanitizer sees a wrong free).
        handoff::result<handoff::c_unique_ptr<int>> made = handoff::try_make_c_unique<int>(7);
        if (!made) return PAM_BUF_ERR;
        if (!h.try_set_data(c_int_key, std::move(*made))) return PAM_AUTH_ERR;
        int* back = h.get_data(c_int_key);
        return verdict(back != nullptr && *back == 7);
    }
    if (m == "deleter_domain") {
        auto* raw = static_cast<c_object*>(std::malloc(sizeof(c_object)));
        if (raw == nullptr) return PAM_BUF_ERR;
        raw->id = 11;
        handoff::c_unique_ptr<c_object, c_object_domain> owner =
            handoff::adopt<c_object_domain>(raw);
        if (!h.try_set_data(c_object_key, std::move(owner))) return PAM_AUTH_ERR;
        c_object* back = h.get_data(c_object_key);
        return verdict(back != nullptr && back->id == 11);
    }
    if (m == "status_deleter") {
        std::unique_ptr<counted, status_deleter> owner(new counted("S"));
        return verdict(h.try_set_data(counted_key, std::move(owner)).ok());
    }
    if (m == "status_deleter_replaced") {
        std::unique_ptr<counted, status_deleter> owner(new counted("S"));
        if (!h.try_set_data(counted_key, std::move(owner))) return PAM_AUTH_ERR;
        return verdict(h.try_remove_data(counted_key).ok());
    }
    if (m == "stateful_deleter") {
        std::unique_ptr<counted, naming_deleter> owner(new counted("S"), naming_deleter{"S"});
        return verdict(h.try_set_data(counted_key, std::move(owner)).ok());
    }

    // --- the same type stored by another module: that module's data, not ours ---
    if (m == "twin") {
#ifdef HANDOFF_PROBE_TWIN
        return verdict(h.get_data(twin_key) == nullptr);
#else
        if (!h.try_set_data(twin_key, std::make_unique<probe_types::shared>())) return PAM_AUTH_ERR;
        return verdict(h.get_data(twin_key) != nullptr);
#endif
    }

    // --- arguments (the service file passes them) ---
    if (m == "args") {
        return verdict(args.size() == 6 && args.has("flag") && !args.has("fla") &&
                       args.value("key") == std::optional<std::string_view>("value") &&
                       args.value("dup") == std::optional<std::string_view>("1") &&
                       args.value("empty") == std::optional<std::string_view>("") &&
                       !args.value("flag") && !args.value("ke") && !args.value("missing") &&
                       args[5] == "spaced arg=x y");
    }

    // --- items, user, authentication token ---
    if (m == "user_code") {  // try_user's code, returned as it is
        pam::libpam_string user = h.try_user();
        if (!user) return user.code();
        return verdict(user.view() == "alice");
    }
    if (m == "items") {
        pam::libpam_string user = h.try_user();
        if (!user || user.view() != "alice") return PAM_AUTH_ERR;
        if (h.get_item(pam::item::service) != std::optional<std::string_view>("probe")) {
            return PAM_AUTH_ERR;
        }
        if (!h.try_set_item(pam::module_item::authtok, "from-the-probe")) return PAM_AUTH_ERR;
        pam::libpam_string token = h.try_authtok();  // set already: no prompt
        if (!token || token.view() != "from-the-probe") return PAM_AUTH_ERR;
        using namespace std::string_view_literals;
        if (h.try_set_item(pam::item::tty, "nul\0inside"sv).code() != PAM_BAD_ITEM) {
            return PAM_AUTH_ERR;
        }
        if (!h.try_clear_item(pam::module_item::authtok)) return PAM_AUTH_ERR;
        return verdict(!h.get_item(pam::module_item::authtok).has_value());
    }
    if (m == "authtok_prompt") {
        // Asked through libpam's own prompt: the application answers.
        pam::libpam_string token = h.try_authtok("Token: ");
        return verdict(token && token.view() == "typed-token");
    }
    if (m == "authtok_refused") {
        // libpam could not get a token: no string, libpam's code.
        pam::libpam_string token = h.try_authtok("Token: ");
        pam::libpam_string old = h.try_old_authtok("Old token: ");
        if (token || old || token.c_str() != nullptr || !old.view().empty()) return PAM_SERVICE_ERR;
        return token.code() == old.status().code() ? token.code() : PAM_SERVICE_ERR;
    }
    if (m == "log") {
        h.log(LOG_ERR, "probe says %s %d", "hello", 42);
        return PAM_SUCCESS;
    }

    // --- conversation ---
    if (m == "converse") {
        pam::responses r = h.try_converse(
            {pam::outgoing::info("one"), pam::outgoing::prompt("echo on: ", pam::echo::on),
             pam::outgoing::error("two"), pam::outgoing::prompt("echo off: ")});
        if (!r) return r.code();
        return verdict(r.size() == 4 && !r.has_answer(0) && r.text(1) == "first" &&
                       !r.has_answer(2) && r.text(3) == "second" && !r.has_answer(9));
    }
    if (m == "converse_code") {
        // Returns what the conversation gave: the application checks the code.
        pam::responses r = h.try_prompt("Code: ");
        return r ? PAM_SUCCESS : r.code();
    }
    if (m == "send_info") return h.try_send_info("just so you know").code();
    // pam_info/pam_error with the silent check: nothing reaches the
    // application under PAM_SILENT.
    if (m == "send_with_flags") {
        const int info = h.try_send_info(flags, "info unless silent").code();
        return info != PAM_SUCCESS ? info : h.try_send_error(flags, "error unless silent").code();
    }
#if HANDOFF_HAS_EXCEPTIONS
    if (m == "send_with_flags_throwing") {
        h.send_info(flags, "info unless silent");
        h.send_error(flags, "error unless silent");
        return PAM_SUCCESS;
    }
#endif

    // --- flags: what the application passed, named ---
    if (m == "flags") {
        report(flags.silent() ? "silent" : "not silent");
        report(flags.disallow_null_authtok() ? "disallow null" : "null allowed");
        // A body written for the former `int flags` still compiles and agrees.
        const unsigned legacy = static_cast<unsigned>(flags) & PAM_SILENT;
        return verdict((legacy != 0U) == flags.silent());
    }

    // --- thread cancellation: must pass through the barrier ---
    if (m == "pthread_exit") ::pthread_exit(nullptr);

#if HANDOFF_HAS_EXCEPTIONS
    if (m.substr(0, 6) == "throw:") return throw_for(m.substr(6), h);
#endif
    return PAM_SERVICE_ERR;
}

HANDOFF_PAM_SETCRED(h, flags, args) { return PAM_SUCCESS; }
