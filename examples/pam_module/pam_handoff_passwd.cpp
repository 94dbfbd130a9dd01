// pam_handoff_passwd.so: passwords kept in a file of the module's own, checked
// and changed as pam_unix checks and changes /etc/shadow. An example of the
// module side's helpers: pam_get_authtok's options, the noverify/verify pair,
// printf-style messages under PAM_SILENT, the fail delay, warn_unknown.
//
//   auth     required pam_handoff_passwd.so file=<path> [use_first_pass|try_first_pass]
//   password required pam_handoff_passwd.so file=<path> [use_authtok] [use_first_pass|
//                                           try_first_pass] [authtok_type=X] [minlen=N]
//   (and `nodelay` on either line: no fail delay after a wrong password)
//
// The file holds one "user:password" line per user (the password is the rest
// of the line; a plain-text demo format, not a way to store real passwords).
//
// authenticate: the user's password (libpam's prompt, or the token a module
// before set: try_first_pass / use_first_pass) against the file.
//   PAM_SUCCESS          it matches
//   PAM_AUTH_ERR         it does not (after a 2 s fail delay unless nodelay,
//                        asked for before the file is read, unknown users
//                        too), the stored one is empty under
//                        PAM_DISALLOW_NULL_AUTHTOK,
//                        or use_first_pass and no token was set
//   PAM_USER_UNKNOWN     the user has no line in the file
//   PAM_AUTHINFO_UNAVAIL the file cannot be read
//   PAM_SERVICE_ERR      no file= argument, or minlen= is not a number
//   otherwise libpam's code for the prompt (PAM_AUTHTOK_ERR: no answer)
//
// chauthtok, as pam_unix's password step:
//   PAM_PRELIM_CHECK     the user exists and the old password (asked for, or
//                        set before) matches; libpam keeps it (PAM_OLDAUTHTOK)
//   PAM_UPDATE_AUTHTOK   the old password is checked again, the new one is
//                        asked for once, judged (not empty, not the old one,
//                        at least minlen= bytes, default 6, at most
//                        PAM_MAX_RESP_SIZE, no line break),
//                        asked for again and compared, and written: the file
//                        is replaced whole (a temporary file in the same
//                        directory, synced, then renamed over it, mode 0600;
//                        file= a symbolic link is refused, PAM_AUTHTOK_ERR).
//                        With use_authtok the new password is the one a
//                        module before set (PAM_AUTHTOK_ERR if none), and it
//                        is not asked for again.
//   PAM_AUTH_ERR         the old password does not match (after the delay)
//   PAM_AUTHTOK_ERR      the new one is refused, no answer, or the file
//                        cannot be written (the old file is then unchanged)
//   PAM_TRY_AGAIN        the two answers differ
// Concurrent changes by two processes are not serialised (no lock file):
// the last rename wins whole, the file is never half written.
#include <handoff/pam_module.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pam = handoff::pam;

namespace {

constexpr std::chrono::seconds wrong_password_delay{2};
constexpr std::size_t default_minlen = 6;
// Larger files are refused (a password file of users, not a database).
constexpr long max_file_size = 1L << 20;

// A std::string whose bytes are wiped when it goes. Its capacity is reserved
// up front and never exceeded, so no reallocation leaves an unwiped copy.
class wiped_string {
public:
    wiped_string() = default;
    wiped_string(const wiped_string&) = delete;
    wiped_string& operator=(const wiped_string&) = delete;
    ~wiped_string() { handoff::secure_wipe(&text[0], text.capacity()); }
    std::string text;
};

// Reads the whole file into out (false on error, errno says why).
bool read_file(const char* path, wiped_string& out) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0;
    if (ok && (st.st_size < 0 || st.st_size > max_file_size)) {
        errno = EFBIG;
        ok = false;
    }
    if (ok) out.text.reserve(static_cast<std::size_t>(st.st_size));
    char buf[256];
    while (ok) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        if (out.text.size() + static_cast<std::size_t>(n) > out.text.capacity()) {
            errno = EAGAIN;  // it grew while being read
            ok = false;
            break;
        }
        out.text.append(buf, static_cast<std::size_t>(n));
    }
    handoff::secure_wipe(buf, sizeof buf);
    const int saved = errno;
    (void)::close(fd);
    errno = saved;
    return ok;
}

// The password on user's line, as a view into text; nullopt when there is
// no such line.
std::optional<std::string_view> password_of(std::string_view text, std::string_view user) {
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && line.substr(0, colon) == user) {
            return line.substr(colon + 1);
        }
    }
    return std::nullopt;
}

struct options {
    const char* file = nullptr;  // into libpam's argv: NUL-terminated
    bool delay = true;
    std::size_t minlen = default_minlen;
};

// Reads the arguments; logs unknown ones. nullopt: the service file is wrong.
std::optional<options> read_options(pam::module_handle h, const pam::module_arguments& args) {
    (void)args.warn_unknown(h, {"file=", "nodelay", "minlen=", "use_first_pass", "try_first_pass",
                                "use_authtok", "authtok_type="});
    options o;
    // The value is the end of an argv string, so it is NUL-terminated.
    const std::optional<std::string_view> file = args.value("file");
    if (file && !file->empty()) o.file = file->data();
    if (o.file == nullptr) {
        h.log(LOG_ERR, "no file= argument in the service file");
        return std::nullopt;
    }
    o.delay = !args.has("nodelay");
    if (std::optional<std::string_view> m = args.value("minlen")) {
        const std::string digits(*m);
        char* end = nullptr;
        errno = 0;
        const unsigned long v = std::strtoul(digits.c_str(), &end, 10);
        if (digits.empty() || *end != '\0' || errno != 0 || digits[0] == '-') {
            h.log(LOG_ERR, "minlen= is not a number");
            return std::nullopt;
        }
        o.minlen = v;
    }
    return o;
}

// A user name the file format can hold.
bool storable_user(std::string_view user) {
    return !user.empty() && user.find_first_of(":\n") == std::string_view::npos;
}

// Checks `given` against the user's line. PAM_SUCCESS, PAM_AUTH_ERR (after
// the fail delay), PAM_USER_UNKNOWN or `unreadable` when the file cannot be read.
int check_password(pam::module_handle h, pam::module_flags flags, const options& o,
                   std::string_view user, std::string_view given, int unreadable) {
    // Asked for before anything is looked at, so that an unknown user is not
    // told apart by the time (libpam waits only when the stack fails).
    if (o.delay) (void)h.try_fail_delay(wrong_password_delay);
    wiped_string file;
    if (!read_file(o.file, file)) {
        h.log(LOG_ERR, "cannot read %s: %s", o.file, std::strerror(errno));
        return unreadable;
    }
    const std::optional<std::string_view> expected = password_of(file.text, user);
    if (!expected) return PAM_USER_UNKNOWN;
    // An empty stored password opens only without PAM_DISALLOW_NULL_AUTHTOK.
    if (expected->empty() && flags.disallow_null_authtok()) return PAM_AUTH_ERR;
    if (pam::constant_time_equal(given, *expected)) return PAM_SUCCESS;
    return PAM_AUTH_ERR;
}

// Writes the file anew with user's password replaced: a temporary file beside
// it, synced, renamed over it. false (and the old file untouched) on error.
bool write_password(pam::module_handle h, const options& o, std::string_view user,
                    std::string_view password) {
    wiped_string old;
    if (!read_file(o.file, old)) {
        h.log(LOG_ERR, "cannot read %s: %s", o.file, std::strerror(errno));
        return false;
    }
    // Every line of the user is replaced (duplicates too): reserved for all
    // of them up front, so that no reallocation leaves an unwiped copy.
    std::size_t lines_of_user = 1;
    for (std::string_view rest = old.text; !rest.empty();) {
        const std::size_t end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        if (line.substr(0, line.find(':')) == user) ++lines_of_user;
    }
    wiped_string updated;
    updated.text.reserve(old.text.size() + lines_of_user * (user.size() + password.size() + 3));
    std::string_view rest = old.text;
    while (!rest.empty()) {
        const std::size_t end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && line.substr(0, colon) == user) {
            updated.text.append(user).append(1, ':').append(password);
        } else {
            updated.text.append(line);
        }
        updated.text.append(1, '\n');
    }
    // The file is replaced by rename: a symbolic link would be replaced by a
    // regular file and its target left with the old password. Refused.
    struct stat st {};
    if (::lstat(o.file, &st) != 0 || !S_ISREG(st.st_mode)) {
        h.log(LOG_ERR, "%s is not a regular file (a symbolic link?): not written", o.file);
        return false;
    }
    std::string temp = std::string(o.file) + ".XXXXXX";
    const int fd = ::mkostemp(&temp[0], O_CLOEXEC);
    if (fd < 0) {
        h.log(LOG_ERR, "cannot create a file beside %s: %s", o.file, std::strerror(errno));
        return false;
    }
    bool ok = ::fchmod(fd, S_IRUSR | S_IWUSR) == 0;
    const char* p = updated.text.data();
    std::size_t left = updated.text.size();
    while (ok && left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) {
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }
    ok = ok && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    ok = ok && ::rename(temp.c_str(), o.file) == 0;
    if (!ok) {
        h.log(LOG_ERR, "cannot write %s: %s", o.file, std::strerror(errno));
        (void)::unlink(temp.c_str());
    }
    return ok;
}

// Why a new password is refused: the message is shown, unless PAM_SILENT.
// true when it will do.
bool acceptable(pam::module_handle h, pam::module_flags flags, std::string_view fresh,
                std::string_view old, std::size_t minlen) {
    if (fresh.empty()) {
        (void)h.try_errorf(flags, "%s", "No password has been supplied.");
    } else if (fresh == old) {
        (void)h.try_errorf(flags, "%s", "The password is the same as the old one.");
    } else if (fresh.find_first_of("\r\n") != std::string_view::npos) {
        (void)h.try_errorf(flags, "%s", "The password holds a line break.");
    } else if (fresh.size() > PAM_MAX_RESP_SIZE) {
        (void)h.try_errorf(flags, "The password is longer than %d characters.", PAM_MAX_RESP_SIZE);
    } else if (fresh.size() < minlen) {
        (void)h.try_errorf(flags, "The password is shorter than %zu characters.", minlen);
    } else {
        return true;
    }
    return false;
}

// PAM_USER (asked for when unset), copied into `user`: libpam's string goes
// if a later conversation sets PAM_USER. PAM_SUCCESS, the code of the failed
// ask, or PAM_USER_UNKNOWN for a name the file cannot hold.
int copy_user(pam::module_handle h, std::string& user) {
    {
        const pam::libpam_string lent = h.try_user();
        if (!lent) return lent.code();
        user = lent.view();
    }
    return storable_user(user) ? PAM_SUCCESS : PAM_USER_UNKNOWN;
}

}  // namespace

HANDOFF_PAM_AUTHENTICATE(h, flags, args) {
    const std::optional<options> o = read_options(h, args);
    if (!o) return PAM_SERVICE_ERR;
    std::string user;
    if (const int rc = copy_user(h, user); rc != PAM_SUCCESS) return rc;
    const pam::libpam_string token = h.try_authtok();
    if (!token) return token.code();
    return check_password(h, flags, *o, user, token.view(), PAM_AUTHINFO_UNAVAIL);
}

HANDOFF_PAM_SETCRED(h, flags, args) { return PAM_SUCCESS; }

HANDOFF_PAM_CHAUTHTOK(h, flags, args) {
    const std::optional<options> o = read_options(h, args);
    if (!o) return PAM_SERVICE_ERR;
    // Copies of what libpam lends (the old password wiped): a conversation
    // may set PAM_USER or PAM_OLDAUTHTOK, and libpam's strings go then.
    std::string user;
    if (const int rc = copy_user(h, user); rc != PAM_SUCCESS) return rc;

    // Both passes check the old password: the file may have changed between them.
    wiped_string old;
    {
        const pam::libpam_string lent = h.try_old_authtok("Current password: ");
        if (!lent) return lent.code();
        old.text.reserve(lent.view().size());
        old.text.assign(lent.view().data(), lent.view().size());
    }
    const int checked = check_password(h, flags, *o, user, old.text, PAM_AUTHTOK_ERR);
    if (checked != PAM_SUCCESS || flags.prelim_check()) return checked;
    if (!flags.update_authtok()) return PAM_SERVICE_ERR;  // libpam sets one of the two

    const bool given_before = h.get_item(pam::module_item::authtok).has_value();
    const pam::libpam_string first = h.try_authtok_noverify();
    if (!first) return first.code();
    if (!acceptable(h, flags, first.view(), old.text, o->minlen)) {
        // Asked for here: forget it, so that a retry asks again.
        if (!given_before) (void)h.try_clear_item(pam::module_item::authtok);
        return PAM_AUTHTOK_ERR;
    }
    pam::libpam_string fresh = given_before ? first : h.try_authtok_verify(first);
    if (!fresh) return fresh.code();
    if (!write_password(h, *o, user, fresh.view())) return PAM_AUTHTOK_ERR;
    (void)h.try_infof(flags, "Password changed for %s.", user.c_str());
    return PAM_SUCCESS;
}
