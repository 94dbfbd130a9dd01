// handoff::pam, module side: C++ PAM modules that converse, keep data and
// never throw into libpam.
// SPDX-License-Identifier: MIT
//
// Needs Linux-PAM's <security/pam_modules.h> and <security/pam_ext.h>; link
// with -lpam (Meson: dependency 'handoff-pam'; pkg-config: handoff-pam; CMake:
// handoff::pam). Shares its types with the application side through
// pam_types.hpp and does not include pam.hpp.
//
// Sections, in the order a module author needs them:
//   1. entry points       HANDOFF_PAM_AUTHENTICATE & co., guarded(): exceptions
//                         become PAM codes and a pam_syslog line; module_flags
//   2. arguments          module_arguments: argv as string_views, key=value
//   3. conversing         outgoing, responses, module_handle::try_converse:
//                         the application's reply validated, wiped and freed
//   4. strings libpam owns  libpam_string, module_item: user, authtok, items
//   5. module data        data_key<T>, set_data/get_data: owners handed to
//                         libpam under private names, typed retrieval;
//                         data_cleanup for deleters that want the status
//   6. module_handle      the view of pam_handle_t* that holds all of it
//                         (also send_info/error honouring PAM_SILENT,
//                         fail_delay, log), with password changes
//                         (try_authtok_noverify, try_authtok_verify), the PAM
//                         environment (getenv, try_putenv, try_setenv,
//                         try_unsetenv), printf-style messages honouring
//                         PAM_SILENT (try_infof, try_errorf)
//   7. secrets            constant_time_equal
//   8. checking arguments module_arguments::warn_unknown: unknown options
//                         logged once by name, never with their values
// Threads: the conversing calls let a thread's cancellation through
// (HANDOFF_PAM_CANCELLABLE, pam_types.hpp). Symbols: everything here is
// hidden but the pam_sm_* functions (HANDOFF_HIDDEN_VISIBILITY).
#ifndef HANDOFF_PAM_MODULE_HPP
#define HANDOFF_PAM_MODULE_HPP

// A module exports its pam_sm_* functions and nothing else: handoff's own
// symbols are hidden (handoff.hpp, HANDOFF_HIDDEN_VISIBILITY), as long as this
// header is the first of handoff's a module includes; this header's are
// hidden whatever the order. Define HANDOFF_HIDDEN_VISIBILITY to 0 to opt out.
#ifndef HANDOFF_HIDDEN_VISIBILITY
#define HANDOFF_HIDDEN_VISIBILITY 1
#endif

#include <handoff/pam_types.hpp>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <pthread.h>

#include <string.h>  // NOLINT(modernize-deprecated-headers): strnlen is POSIX, not in <cstring>
#include <syslog.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#if HANDOFF_HAS_EXCEPTIONS
#include <exception>
#include <system_error>
#endif
// HANDOFF_PAM_FORCED_UNWIND, HANDOFF_PAM_CANCELLABLE: see pam_types.hpp.

// pam_sm_* must stay visible when a module is built with -fvisibility=hidden;
// handoff's own type tags must stay private to each module (section 5).
#if defined(__GNUC__)
#define HANDOFF_PAM_EXPORT __attribute__((visibility("default")))
#define HANDOFF_PAM_MODULE_LOCAL __attribute__((visibility("hidden")))
#define HANDOFF_PAM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HANDOFF_PAM_EXPORT
#define HANDOFF_PAM_MODULE_LOCAL
#define HANDOFF_PAM_PRINTF(fmt, args)
#endif

#if defined(__GNUC__) && HANDOFF_HIDDEN_VISIBILITY
#pragma GCC visibility push(hidden)
#define HANDOFF_PAM_MODULE_POP_VISIBILITY 1
#endif

namespace handoff::pam {

class module_handle;
class module_arguments;

// ===========================================================================
// 1. Entry points
// ===========================================================================
//
// A pam_sm_* function is called by libpam, which is C: nothing may unwind out
// of it. guarded() runs a body and turns what it throws into a PAM code, and
// says so in the system log through pam_syslog:
//
//   thrown                              returned           logged at
//   std::bad_alloc                      PAM_BUF_ERR        LOG_CRIT
//   handoff::pam::error                 its code()         LOG_ERR
//     (a code of PAM_SUCCESS or PAM_IGNORE: PAM_SERVICE_ERR, an exception
//      never means success or "skip me")
//   std::system_error                   PAM_SYSTEM_ERR     LOG_ERR
//   any other std::exception            PAM_SERVICE_ERR    LOG_ERR
//   anything else                       PAM_SERVICE_ERR    LOG_ERR
//
// The log line is "<entry>: <what()>". A thread's cancellation
// (abi::__forced_unwind, from pthread_cancel or pthread_exit) is not an error:
// it is rethrown, since swallowing it aborts the process.
//
// With -fno-exceptions guarded() is a plain call: bodies use the try_ forms,
// which never throw, and an allocation failure inside operator new ends the
// process as it does everywhere in such a build.

namespace detail {
// While alive, a cancellation of this thread waits (pthread_setcancelstate);
// a pending one acts at the next cancellation point after it. Around what may
// reach a cancellation point where nothing may unwind: pam_syslog and
// pam_vsyslog, libpam calls that log (pam_putenv), a data deleter run by
// libpam. glibc does the same in its own cleanup.
class cancellation_deferred {
public:
    cancellation_deferred() noexcept { ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
    cancellation_deferred(const cancellation_deferred&) = delete;
    cancellation_deferred& operator=(const cancellation_deferred&) = delete;
    ~cancellation_deferred() { ::pthread_setcancelstate(old_, nullptr); }

private:
    int old_ = PTHREAD_CANCEL_ENABLE;
};

#if HANDOFF_HAS_EXCEPTIONS
inline int code_of_pam_error(int code) noexcept {
    return code == PAM_SUCCESS || code == PAM_IGNORE ? PAM_SERVICE_ERR : code;
}
#endif
}  // namespace detail

// Runs body() (which returns a PAM code) and returns its code, or the code of
// what it threw (see the table above). entry names the caller in the log.
template <class Body>
HANDOFF_PAM_FORCED_UNWIND_HANDLER int guarded(::pam_handle_t* pamh, const char* entry,
                                              Body&& body) {
    static_assert(std::is_convertible_v<std::invoke_result_t<Body&>, int>,
                  "handoff: a module body returns a PAM code (int)");
#if HANDOFF_HAS_EXCEPTIONS
    if (entry == nullptr) entry = "pam module";
    try {
        return body();
#if HANDOFF_PAM_FORCED_UNWIND
    } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation must run to its end
#endif
    } catch (const std::bad_alloc& e) {
        const detail::cancellation_deferred held;
        ::pam_syslog(pamh, LOG_CRIT, "%s: %s", entry, e.what());
        return PAM_BUF_ERR;
    } catch (const error& e) {
        const detail::cancellation_deferred held;
        ::pam_syslog(pamh, LOG_ERR, "%s: %s", entry, e.what());
        return detail::code_of_pam_error(e.code());
    } catch (const std::system_error& e) {
        const detail::cancellation_deferred held;
        ::pam_syslog(pamh, LOG_ERR, "%s: %s", entry, e.what());
        return PAM_SYSTEM_ERR;
    } catch (const std::exception& e) {
        const detail::cancellation_deferred held;
        ::pam_syslog(pamh, LOG_ERR, "%s: %s", entry, e.what());
        return PAM_SERVICE_ERR;
    } catch (...) {
        const detail::cancellation_deferred held;
        ::pam_syslog(pamh, LOG_ERR, "%s: an exception that is not a std::exception", entry);
        return PAM_SERVICE_ERR;
    }
#else
    (void)pamh;
    (void)entry;
    return body();
#endif
}

// The flags libpam passes to a pam_sm_* function, named. Which bits can be
// set depends on the entry point (pam_sm_setcred(3), pam_sm_chauthtok(3)):
//   every entry point   silent()                  PAM_SILENT
//   authenticate,
//   acct_mgmt           disallow_null_authtok()   PAM_DISALLOW_NULL_AUTHTOK
//   setcred             establish_cred(), delete_cred(), reinitialize_cred(),
//                       refresh_cred()            PAM_ESTABLISH_CRED & co.
//   chauthtok           prelim_check(), update_authtok(),
//                       change_expired_authtok()  PAM_PRELIM_CHECK & co.
// It converts to int, so a body written against the former `int flags`
// (`flags & PAM_SILENT`) still compiles.
class module_flags {
public:
    constexpr module_flags() noexcept = default;
    constexpr explicit module_flags(int bits) noexcept : bits_(bits) {}

    constexpr int bits() const noexcept { return bits_; }
    // NOLINTNEXTLINE(google-explicit-constructor,hicpp-explicit-conversions): source compatibility
    constexpr operator int() const noexcept { return bits_; }
    // True when every bit of flag is set.
    constexpr bool has(int flag) const noexcept { return flag != 0 && (bits_ & flag) == flag; }

    constexpr bool silent() const noexcept { return has(PAM_SILENT); }
    constexpr bool disallow_null_authtok() const noexcept { return has(PAM_DISALLOW_NULL_AUTHTOK); }
    constexpr bool establish_cred() const noexcept { return has(PAM_ESTABLISH_CRED); }
    constexpr bool delete_cred() const noexcept { return has(PAM_DELETE_CRED); }
    constexpr bool reinitialize_cred() const noexcept { return has(PAM_REINITIALIZE_CRED); }
    constexpr bool refresh_cred() const noexcept { return has(PAM_REFRESH_CRED); }
    constexpr bool prelim_check() const noexcept { return has(PAM_PRELIM_CHECK); }
    constexpr bool update_authtok() const noexcept { return has(PAM_UPDATE_AUTHTOK); }
    constexpr bool change_expired_authtok() const noexcept {
        return has(PAM_CHANGE_EXPIRED_AUTHTOK);
    }

private:
    int bits_ = 0;
};

namespace detail {
using module_body = int (*)(module_handle, module_flags, const module_arguments&);
inline int run_entry(::pam_handle_t* pamh, const char* entry, int flags, int argc,
                     const char** argv, module_body body);
}  // namespace detail

// Defines pam_sm_<fn> (extern "C", exported even under -fvisibility=hidden)
// and opens the C++ body that it runs through guarded(). The body sees a
// module_handle, the module_flags and the module_arguments, and returns a
// PAM code:
//
//   HANDOFF_PAM_AUTHENTICATE(h, flags, args) { ... return PAM_SUCCESS; }
//
// A NULL pam_handle_t gives PAM_SYSTEM_ERR without running the body.
// NOLINTBEGIN(bugprone-macro-parentheses): handle, flags and args name parameters
#define HANDOFF_PAM_ENTRY(fn, handle, flags, args)                                                \
    static int handoff_pam_body_##fn(::handoff::pam::module_handle, ::handoff::pam::module_flags, \
                                     const ::handoff::pam::module_arguments&);                    \
    extern "C" HANDOFF_PAM_EXPORT int pam_sm_##fn(::pam_handle_t* pamh, int flags_, int argc,     \
                                                  const char** argv) {                            \
        return ::handoff::pam::detail::run_entry(pamh, "pam_sm_" #fn, flags_, argc, argv,         \
                                                 &handoff_pam_body_##fn);                         \
    }                                                                                             \
    static int handoff_pam_body_##fn(                                                             \
        [[maybe_unused]] ::handoff::pam::module_handle handle,                                    \
        [[maybe_unused]] ::handoff::pam::module_flags flags,                                      \
        [[maybe_unused]] const ::handoff::pam::module_arguments& args)
// NOLINTEND(bugprone-macro-parentheses)

#define HANDOFF_PAM_AUTHENTICATE(handle, flags, args) \
    HANDOFF_PAM_ENTRY(authenticate, handle, flags, args)
#define HANDOFF_PAM_SETCRED(handle, flags, args) HANDOFF_PAM_ENTRY(setcred, handle, flags, args)
#define HANDOFF_PAM_ACCT_MGMT(handle, flags, args) HANDOFF_PAM_ENTRY(acct_mgmt, handle, flags, args)
#define HANDOFF_PAM_OPEN_SESSION(handle, flags, args) \
    HANDOFF_PAM_ENTRY(open_session, handle, flags, args)
#define HANDOFF_PAM_CLOSE_SESSION(handle, flags, args) \
    HANDOFF_PAM_ENTRY(close_session, handle, flags, args)
#define HANDOFF_PAM_CHAUTHTOK(handle, flags, args) HANDOFF_PAM_ENTRY(chauthtok, handle, flags, args)

// ===========================================================================
// 2. Module arguments
// ===========================================================================

// The arguments after the module's path in the service file, as views into
// libpam's argv: valid during the pam_sm_* call only.
class module_arguments {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = std::string_view;
        iterator(const module_arguments* a, std::size_t i) noexcept : args_(a), i_(i) {}
        std::string_view operator*() const noexcept { return (*args_)[i_]; }
        iterator& operator++() noexcept {
            ++i_;
            return *this;
        }
        friend bool operator==(iterator a, iterator b) noexcept { return a.i_ == b.i_; }
        friend bool operator!=(iterator a, iterator b) noexcept { return a.i_ != b.i_; }

    private:
        const module_arguments* args_;
        std::size_t i_;
    };

    module_arguments() noexcept = default;
    // A negative argc or a NULL argv is an empty list; NULL entries read as "".
    module_arguments(int argc, const char** argv) noexcept
        : argv_(argc > 0 ? argv : nullptr),
          size_(argc > 0 && argv != nullptr ? static_cast<std::size_t>(argc) : 0) {}

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view operator[](std::size_t i) const noexcept {
        return argv_[i] == nullptr ? std::string_view() : std::string_view(argv_[i]);
    }
    iterator begin() const noexcept { return iterator(this, 0); }
    iterator end() const noexcept { return iterator(this, size_); }

    // True when one argument is exactly `word` (a flag such as "debug").
    bool has(std::string_view word) const noexcept {
        for (std::string_view a : *this) {
            if (a == word) return true;
        }
        return false;
    }

    // The value of the first "key=value" argument: "" for "key=", nullopt
    // when there is none (a bare "key" is a flag, not a value). The first
    // occurrence wins, as in Linux-PAM's own option parsing.
    std::optional<std::string_view> value(std::string_view key) const noexcept {
        for (std::string_view a : *this) {
            if (a.size() > key.size() && a[key.size()] == '=' && a.substr(0, key.size()) == key) {
                return a.substr(key.size() + 1);
            }
        }
        return std::nullopt;
    }

    // Logs each argument that is none of `known` once, through pam_syslog
    // (LOG_ERR, "unknown option ..."), as Linux-PAM's modules do, and returns
    // how many distinct names it logged. In `known`, "name" is a flag and
    // "name=" a key that takes a value. Only names reach the log, never a
    // value (it may be a secret): "file=/x" is logged as "file=", a flag given
    // a value as "debug=", a key given without one by its name. List the
    // options libpam reads for the module as well (use_first_pass,
    // try_first_pass, use_authtok, authtok_type=) when it calls try_authtok.
    // Defined in section 8.
    std::size_t warn_unknown(module_handle h,
                             std::initializer_list<std::string_view> known) const noexcept;

private:
    const char** argv_ = nullptr;
    std::size_t size_ = 0;
};

// ===========================================================================
// 3. Conversing with the application
// ===========================================================================

enum class echo : bool { off = false, on = true };

// One message a module sends: a style and a C string. The text is not copied:
// it must stay valid until the conversation call returns (a literal, a buffer
// or a std::string the caller keeps). Layout-compatible with pam_message, so
// an array of them is also the contiguous array Solaris-style readers expect.
class outgoing {
public:
    static outgoing info(const char* text) noexcept { return outgoing(PAM_TEXT_INFO, text); }
    static outgoing error(const char* text) noexcept { return outgoing(PAM_ERROR_MSG, text); }
    static outgoing prompt(const char* text, echo e = echo::off) noexcept {
        return outgoing(e == echo::on ? PAM_PROMPT_ECHO_ON : PAM_PROMPT_ECHO_OFF, text);
    }
    static outgoing info(const std::string& text) noexcept { return info(text.c_str()); }
    static outgoing error(const std::string& text) noexcept { return error(text.c_str()); }
    static outgoing prompt(const std::string& text, echo e = echo::off) noexcept {
        return prompt(text.c_str(), e);
    }
    // A temporary string would be gone before the call: keep it in a variable.
    static outgoing info(std::string&&) = delete;
    static outgoing error(std::string&&) = delete;
    static outgoing prompt(std::string&&, echo = echo::off) = delete;

    style kind() const noexcept { return static_cast<style>(raw_.msg_style); }
    const char* text() const noexcept { return raw_.msg; }
    const ::pam_message& raw() const noexcept { return raw_; }

private:
    outgoing(int s, const char* text) noexcept : raw_{s, text} {}
    ::pam_message raw_;
};
static_assert(sizeof(outgoing) == sizeof(::pam_message) && std::is_standard_layout_v<outgoing>,
              "handoff: outgoing must be laid out like pam_message");

// The application's reply to one conversation call, validated before anyone
// reads it, and owned: every answer is wiped and freed with the array when the
// object goes (response_array, the adapter's policy). When the call failed
// the object holds no answers and says why (code(), conversation_failure()).
//
// How each reply of the application is read (see also docs/api.md):
//   conversation returned PAM_BUF_ERR     PAM_BUF_ERR     failure::out_of_memory
//   conversation returned PAM_CONV_AGAIN  PAM_INCOMPLETE  failure::conversation_error
//     (a module never passes PAM_CONV_AGAIN up: it returns PAM_INCOMPLETE,
//      keeps its state with set_data, and libpam calls it again)
//   conversation returned any other error PAM_CONV_ERR    failure::conversation_error
//     (a reply written before the error is wiped and freed all the same,
//      as Linux-PAM's pam_vprompt frees it)
//   PAM_SUCCESS, NULL array, prompts sent PAM_CONV_ERR    failure::bad_reply
//   PAM_SUCCESS, NULL array, no prompts   PAM_SUCCESS (nothing to read)
//   an array whose malloc block holds
//     fewer than n elements (glibc)       PAM_CONV_ERR    failure::bad_reply
//   a resp_retcode other than 0           PAM_CONV_ERR    failure::bad_reply
//   a NULL answer to a prompt             PAM_CONV_ERR    failure::unanswered_prompt
//   an answer with no NUL in its malloc
//     block (glibc: malloc_usable_size)   PAM_CONV_ERR    failure::bad_reply
//   an answer of PAM_MAX_RESP_SIZE bytes
//     or more (never truncated)           PAM_CONV_ERR    failure::answer_too_long
//   an answer to an info/error message    PAM_SUCCESS; the answer is wiped and
//                                         freed at once and reads as none
// The module's own mistakes are refused before the application is called:
//   no messages, more than PAM_MAX_NUM_MSG,
//   a NULL text                           PAM_CONV_ERR    failure::bad_message
//   no conversation function (PAM_CONV)   PAM_CONV_ERR    failure::no_conversation
class responses {
public:
    responses() noexcept = default;

    bool ok() const noexcept { return status_.ok(); }
    explicit operator bool() const noexcept { return ok(); }
    // The code a module returns for this call: PAM_SUCCESS, PAM_CONV_ERR,
    // PAM_BUF_ERR or PAM_INCOMPLETE (the conversation said PAM_CONV_AGAIN).
    int code() const noexcept { return status_.code(); }
    failure conversation_failure() const noexcept { return status_.conversation_failure(); }
    const pam::status& status() const noexcept { return status_; }

    // How many messages were sent (0 when the call failed).
    std::size_t size() const noexcept { return size_; }
    // Answers exist for prompts only. Out-of-range indexes read as no answer.
    bool has_answer(std::size_t i) const noexcept { return c_str(i) != nullptr; }
    const char* c_str(std::size_t i) const noexcept {
        return i < answers_.size() ? answers_[i].resp : nullptr;
    }
    std::string_view text(std::size_t i) const noexcept {
        const char* a = c_str(i);
        return a == nullptr ? std::string_view() : std::string_view(a);
    }

    // Takes answer i out (still wiped when freed); it then reads as none.
    [[nodiscard]] secure_c_string<libc> take(std::size_t i) noexcept {
        if (i >= answers_.size()) return {};
        return secure_c_string<libc>(std::exchange(answers_[i].resp, nullptr));
    }

private:
    friend class module_handle;

    responses(pam::status s, response_array answers, std::size_t n) noexcept
        : answers_(std::move(answers)), size_(n), status_(s) {}

    static responses failed(::pam_handle_t* pamh, int code, failure why) noexcept {
        return responses(pam::status(code, ::pam_strerror(pamh, code), why), response_array(), 0);
    }

    // Reads what the application's conversation returned. `answers` already
    // owns the array (if any), so every path below wipes and frees it.
    static responses validate(::pam_handle_t* pamh, int rc, response_array answers,
                              const outgoing* sent, std::size_t n, bool any_prompt) noexcept {
        if (rc != PAM_SUCCESS) {
            if (rc == PAM_BUF_ERR) return failed(pamh, PAM_BUF_ERR, failure::out_of_memory);
            return failed(pamh, rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_CONV_ERR,
                          failure::conversation_error);
        }
        if (!answers) {
            if (any_prompt) return failed(pamh, PAM_CONV_ERR, failure::bad_reply);
            return responses(pam::status(PAM_SUCCESS, ::pam_strerror(pamh, PAM_SUCCESS)),
                             response_array(), n);
        }
        for (std::size_t i = 0; i < n; ++i) {
            const ::pam_response& r = answers[i];
            if (r.resp_retcode != 0) return failed(pamh, PAM_CONV_ERR, failure::bad_reply);
            if (!is_prompt_style(sent[i].kind())) continue;
            if (r.resp == nullptr) return failed(pamh, PAM_CONV_ERR, failure::unanswered_prompt);
            // Never read past the block: an answer need not hold a NUL.
            const std::size_t block = detail::malloc_block_size(r.resp);
            const std::size_t length =
                ::strnlen(r.resp, std::min<std::size_t>(PAM_MAX_RESP_SIZE, block));
            if (length == block) return failed(pamh, PAM_CONV_ERR, failure::bad_reply);
            if (length >= PAM_MAX_RESP_SIZE) {
                return failed(pamh, PAM_CONV_ERR, failure::answer_too_long);
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (!is_prompt_style(sent[i].kind())) {
                owns_response_text::release_element<libc>(answers[i]);
            }
        }
        return responses(pam::status(PAM_SUCCESS, ::pam_strerror(pamh, PAM_SUCCESS)),
                         std::move(answers), n);
    }

    response_array answers_;
    std::size_t size_ = 0;
    pam::status status_;
};

// ===========================================================================
// 4. Strings libpam owns
// ===========================================================================

// The string items only modules use: the authentication tokens, which libpam
// refuses to the application (PAM_BAD_ITEM), and the token type that
// pam_get_authtok puts in its prompts. The items both sides use are pam::item
// (pam_types.hpp).
enum class module_item : int {
    authtok = PAM_AUTHTOK,
    oldauthtok = PAM_OLDAUTHTOK,
#ifdef PAM_AUTHTOK_TYPE
    authtok_type = PAM_AUTHTOK_TYPE,
#endif
};

// What module_handle's item calls take: a pam::item or a module_item,
// converted implicitly; never a plain int.
class string_item {
public:
    constexpr string_item(item which) noexcept : code_(static_cast<int>(which)) {}
    constexpr string_item(module_item which) noexcept : code_(static_cast<int>(which)) {}
    constexpr int code() const noexcept { return code_; }

private:
    int code_;
};

// A string libpam owns and lends to the module (the user name, an
// authentication token): never freed by the module, valid until the item is
// set again or pam_end. Empty, with the PAM code, when the call failed.
class libpam_string {
public:
    libpam_string() noexcept = default;
    libpam_string(const char* text, pam::status s) noexcept
        : text_(s.ok() ? text : nullptr), status_(s) {}

    bool ok() const noexcept { return status_.ok(); }
    explicit operator bool() const noexcept { return ok(); }
    int code() const noexcept { return status_.code(); }
    const pam::status& status() const noexcept { return status_; }

    const char* c_str() const noexcept { return text_; }
    std::string_view view() const noexcept {
        return text_ == nullptr ? std::string_view() : std::string_view(text_);
    }

private:
    const char* text_ = nullptr;
    pam::status status_;
};

// ===========================================================================
// 5. Module data
// ===========================================================================
//
// pam_set_data(3) keeps a pointer under a name until pam_end, and calls a
// cleanup function when the name is set again (PAM_DATA_REPLACE) or at
// pam_end. handoff hands libpam an owner: the object goes into a small box
// (malloc'ed) holding the owner and a tag for T, and the cleanup destroys the
// owner, so the owner's own deleter runs, exactly once:
//   - at pam_end, or when the name is set again or removed;
//   - if the box cannot be made (PAM_BUF_ERR) or pam_set_data fails (it does
//     when called from the application: PAM_SYSTEM_ERR), before try_set_data
//     returns: libpam took nothing, so the object is freed here.
// A deleter that also takes a data_cleanup (operator()(T*, data_cleanup))
// sees what the C cleanup function sees: pam_end's status, PAM_DATA_REPLACE
// (the name was set again or removed) and PAM_DATA_SILENT. A deleter that may
// throw does not compile: it runs inside libpam, where nothing may unwind
// (std::default_delete<T> needs a destructor that does not throw).
//
// Typed retrieval, by construction: handoff never stores under the name a
// data_key<T> is given, but under that name followed by a separator no C
// module writes (the byte 0x1f), "handoff:" and the address of a tag for T
// that is private to the module (hex): "my_module.count\x1fhandoff:7f3a...".
// A name of that shape holds only a box this module stored for this T, so
// get_data never reads memory it did not write: whatever a C module (or
// another handoff module, or this one with another type) stores under the
// plain name or under its own names is never looked at. A type's name does
// not prove the same layout in another module built separately: hence the
// tag's address, not the type's name, in the stored name.
//
// Safety: names are one namespace for the whole module stack. Prefix them with
// your module's name.

namespace detail {
// Not constexpr on purpose: a constexpr data_key whose array holds no NUL
// calls it, and so does not compile.
inline void data_key_name_without_nul() noexcept {}
}  // namespace detail

// A name bound to a type: a string literal of at most max_name bytes (the
// stored name is built from it in a buffer on the stack). Its length is
// looked for only inside the array (N bytes): an array with no NUL in it is
// refused, at compile time for a constexpr key, else by try_set_data
// (PAM_SYSTEM_ERR, "handoff: a data_key name holds no NUL"), get_data
// (nullptr) and try_remove_data, which never read past the array.
template <class T>
class data_key {
    static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                  "handoff: module data is one object; keep arrays in an owner of their own");

public:
    static constexpr std::size_t max_name = 200;

    template <std::size_t N>
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays): a literal
    constexpr explicit data_key(const char (&name)[N]) noexcept
        : name_(name), size_(bounded_length(name, N)), terminated_(size_ < N) {
        static_assert(N - 1 <= max_name, "handoff: a data_key name has at most 200 bytes");
        if (!terminated_) detail::data_key_name_without_nul();
    }
    // libpam declares the name nonnull (UBSan: "null pointer passed as argument").
    explicit data_key(std::nullptr_t) = delete;
    // The name as given; the name libpam sees is longer (see above).
    constexpr const char* name() const noexcept { return name_; }
    constexpr std::size_t size() const noexcept { return size_; }
    // The array held a NUL (and so the name is usable).
    constexpr bool valid() const noexcept { return terminated_; }

private:
    static constexpr std::size_t bounded_length(const char* s, std::size_t n) noexcept {
        std::size_t i = 0;
        while (i < n && s[i] != '\0') ++i;
        return i;
    }
    const char* name_;
    std::size_t size_;
    bool terminated_;
};

namespace detail {

// One per type and per module: its address is the tag. Not const: with
// -fmerge-all-constants GCC merges equal constants, and two types' tags
// would share an address (and a stored name). Never written.
template <class T>
struct HANDOFF_PAM_MODULE_LOCAL data_tag {
    // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
    static inline char id = 0;
};

// The name libpam keeps T's data under (see above), built on the stack.
class stored_data_name {
public:
    static constexpr char marker[] =
        "\x1f"
        "handoff:";
    static constexpr std::size_t digits = 2 * sizeof(std::uintptr_t);

    template <class T>
    explicit stored_data_name(const data_key<T>& key) noexcept {
        std::memcpy(text_, key.name(), key.size());
        char* p = text_ + key.size();
        std::memcpy(p, marker, sizeof marker - 1);
        p += sizeof marker - 1;
        // The tag's address is the name:
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
        auto tag = reinterpret_cast<std::uintptr_t>(&data_tag<T>::id);
        for (std::size_t i = digits; i-- > 0; tag >>= 4) p[i] = "0123456789abcdef"[tag & 0xfu];
        p[digits] = '\0';
    }
    const char* c_str() const noexcept { return text_; }

private:
    char text_[data_key<char>::max_name + sizeof marker - 1 + digits + 1] = {};
};

}  // namespace detail

// What libpam passes to a data cleanup (pam_set_data(3)): the status of
// pam_end, or of the failed pam_set_data when handoff frees the object itself,
// with PAM_DATA_REPLACE or PAM_DATA_SILENT OR-ed in.
class data_cleanup {
public:
    constexpr explicit data_cleanup(int error_status) noexcept : raw_(error_status) {}
    // The name was set again or removed (PAM_DATA_REPLACE): not pam_end.
    constexpr bool replaced() const noexcept { return (raw_ & PAM_DATA_REPLACE) != 0; }
    // The application asked pam_end for silence (PAM_DATA_SILENT).
    constexpr bool silent() const noexcept { return (raw_ & PAM_DATA_SILENT) != 0; }
    // The PAM code without those two flags (pam_end's last status).
    constexpr int status() const noexcept { return raw_ & ~(PAM_DATA_REPLACE | PAM_DATA_SILENT); }
    constexpr int raw() const noexcept { return raw_; }

private:
    int raw_;
};

namespace detail {

// The deleter's call, with the cleanup's status when it takes one.
template <class T, class Deleter>
constexpr bool deleter_takes_cleanup = std::is_invocable_v<Deleter&, T*, data_cleanup>;

template <class T, class Deleter>
constexpr bool deleter_cannot_throw() noexcept {
    if constexpr (deleter_takes_cleanup<T, Deleter>) {
        return std::is_nothrow_invocable_v<Deleter&, T*, data_cleanup>;
    } else if constexpr (std::is_same_v<Deleter, std::default_delete<T>>) {
        return std::is_nothrow_destructible_v<T>;  // its operator() is not marked noexcept
    } else {
        return std::is_nothrow_invocable_v<Deleter&, T*>;
    }
}

struct data_box_header {
    explicit data_box_header(void* o) noexcept : object(o) {}
    void* object;
};

template <class T, class Deleter>
struct data_box : data_box_header {
    using object_type = T;
    using deleter_type = Deleter;
    explicit data_box(std::unique_ptr<T, Deleter>&& o) noexcept
        : data_box_header(handoff::detail::as_void(o.get())), owner(std::move(o)) {}
    std::unique_ptr<T, Deleter> owner;
};

// libpam's cleanup: destroys the owner (its deleter runs) and the box.
template <class Box>
void destroy_data_box(::pam_handle_t*, void* data, int error_status) noexcept {
    // data is never NULL: libpam passes back the box try_set_data stored.
    Box* box = static_cast<Box*>(static_cast<data_box_header*>(data));
    // A deleter may reach a cancellation point (close, write): not here.
    const cancellation_deferred held;
    if constexpr (deleter_takes_cleanup<typename Box::object_type, typename Box::deleter_type>) {
        if (auto* object = box->owner.release()) {
            box->owner.get_deleter()(object, data_cleanup(error_status));
        }
    }
    box->~Box();
    libc::deallocate(box);
}

}  // namespace detail

// ===========================================================================
// 6. module_handle
// ===========================================================================

// A view of the pam_handle_t a pam_sm_* function receives (not owned; copy it
// freely). Every try_ member returns the PAM code in what it returns and never
// throws; the members without try_ throw pam::error instead (exception
// builds), which guarded() turns back into that code. The members that call
// the application's conversation (converse, prompt, send_info/error, user,
// authtok) wait in it, so the thread may be cancelled there: they are
// HANDOFF_PAM_CANCELLABLE (pam_types.hpp), not noexcept, and the unwind passes.
class module_handle {
public:
    // Safety: pamh is the handle libpam passed to this pam_sm_* call (never
    // NULL: libpam's functions declare it nonnull; the entry points check it).
    explicit module_handle(::pam_handle_t* pamh) noexcept : pamh_(pamh) {}
    ::pam_handle_t* native_handle() const noexcept { return pamh_; }

    // --- conversing ---------------------------------------------------------

    // Sends messages[0..n) in one call of the application's conversation and
    // returns its validated reply (see responses for every case). Texts are
    // not copied. A reply slot is always passed, even for info messages only
    // (some applications crash on a NULL one).
    responses try_converse(const outgoing* messages, std::size_t n) const HANDOFF_PAM_CANCELLABLE {
        if (messages == nullptr || n == 0 || n > PAM_MAX_NUM_MSG) {
            return responses::failed(pamh_, PAM_CONV_ERR, failure::bad_message);
        }
        const ::pam_message* pointers[PAM_MAX_NUM_MSG];
        bool any_prompt = false;
        // outgoing's factories make the four portable styles only: the text
        // is all that can be wrong.
        for (std::size_t i = 0; i < n; ++i) {
            if (messages[i].text() == nullptr) {
                return responses::failed(pamh_, PAM_CONV_ERR, failure::bad_message);
            }
            any_prompt = any_prompt || is_prompt_style(messages[i].kind());
            pointers[i] = &messages[i].raw();
        }
        // pam_get_item(PAM_CONV) cannot fail on the handle libpam passed
        // (pam_start refuses a NULL conversation and pam_set_item refuses to
        // set one); its result is checked all the same.
        const void* item = nullptr;
        const int got = ::pam_get_item(pamh_, PAM_CONV, &item);
        const auto* conv = static_cast<const ::pam_conv*>(item);
        if (got != PAM_SUCCESS || conv == nullptr ||  // LCOV_EXCL_BR_LINE: see above
            conv->conv == nullptr) {
            return responses::failed(pamh_, PAM_CONV_ERR, failure::no_conversation);
        }
        ::pam_response* reply = nullptr;
        const int rc = conv->conv(static_cast<int>(n), pointers, &reply, conv->appdata_ptr);
        // An array whose malloc block is too small for num_msg elements (a
        // conversation that counted wrong) is refused, and only the array is
        // freed: which elements the application wrote is unknown, the rest
        // of the block is whatever malloc left there, so no element is read.
        if (!block_holds(reply, n)) {
            libc::deallocate(reply);
            return responses::failed(pamh_, PAM_CONV_ERR, failure::bad_reply);
        }
        // Owned from here on, whatever rc says: pam_conv(3) promises num_msg
        // elements when the pointer is set.
        response_array owned = response_array::adopt(reply, n);
        return responses::validate(pamh_, rc, std::move(owned), messages, n, any_prompt);
    }
    responses try_converse(std::initializer_list<outgoing> messages) const HANDOFF_PAM_CANCELLABLE {
        return try_converse(messages.begin(), messages.size());
    }

    // One prompt; its answer is text(0).
    responses try_prompt(const char* text, echo e = echo::off) const HANDOFF_PAM_CANCELLABLE {
        const outgoing m = outgoing::prompt(text, e);
        return try_converse(&m, 1);
    }
    // One info or error message (PAM_TEXT_INFO, PAM_ERROR_MSG).
    pam::status try_send_info(const char* text) const HANDOFF_PAM_CANCELLABLE {
        const outgoing m = outgoing::info(text);
        return try_converse(&m, 1).status();
    }
    pam::status try_send_error(const char* text) const HANDOFF_PAM_CANCELLABLE {
        const outgoing m = outgoing::error(text);
        return try_converse(&m, 1).status();
    }

    // The same, as pam_info(3)/pam_error(3) are used: nothing is sent when
    // the application passed PAM_SILENT (PAM_SUCCESS). libpam's own pam_info
    // does not look at the flags; modules must, and these do.
    pam::status try_send_info(module_flags flags, const char* text) const HANDOFF_PAM_CANCELLABLE {
        return flags.silent() ? status_of(PAM_SUCCESS) : try_send_info(text);
    }
    pam::status try_send_error(module_flags flags, const char* text) const HANDOFF_PAM_CANCELLABLE {
        return flags.silent() ? status_of(PAM_SUCCESS) : try_send_error(text);
    }

#if HANDOFF_HAS_EXCEPTIONS
    responses converse(const outgoing* messages, std::size_t n) const {
        return checked(try_converse(messages, n));
    }
    responses converse(std::initializer_list<outgoing> messages) const {
        return checked(try_converse(messages));
    }
    responses prompt(const char* text, echo e = echo::off) const {
        return checked(try_prompt(text, e));
    }
    void send_info(const char* text) const { check(try_send_info(text)); }
    void send_error(const char* text) const { check(try_send_error(text)); }
    void send_info(module_flags flags, const char* text) const {
        check(try_send_info(flags, text));
    }
    void send_error(module_flags flags, const char* text) const {
        check(try_send_error(flags, text));
    }
#endif

    // pam_fail_delay(3): asks libpam to wait about this long before it
    // returns a failure to the application (the longest request of the stack
    // wins, scaled by a random factor in 0.5 .. 1.5; an application's PAM_FAIL_DELAY function
    // replaces the wait). Call it before the check that may fail, as pam_unix
    // does. A negative or overlong delay is clamped to 0 .. UINT_MAX us.
    pam::status try_fail_delay(std::chrono::microseconds delay) const noexcept {
        const auto us = std::clamp<std::chrono::microseconds::rep>(
            delay.count(), 0, std::numeric_limits<unsigned>::max());
        return status_of(::pam_fail_delay(pamh_, static_cast<unsigned>(us)));
    }

    // --- user, authentication tokens, items ---------------------------------

    // pam_get_user(3): PAM_USER, asking the application (with prompt, or
    // libpam's default) if it is not set yet.
    libpam_string try_user(const char* prompt = nullptr) const HANDOFF_PAM_CANCELLABLE {
        const char* user = nullptr;
        // Linux-PAM returns PAM_SUCCESS with a string only (an unanswered
        // prompt is PAM_CONV_ERR), so c_str() is NULL exactly when !ok().
        const int rc = ::pam_get_user(pamh_, &user, prompt);
        return libpam_string(user, status_of(module_code(rc)));
    }

    // pam_get_authtok(3): PAM_AUTHTOK (or PAM_OLDAUTHTOK), asked for through
    // libpam's own pam_prompt if no module set it yet. libpam reads that
    // reply itself: it does not refuse overlong answers as try_converse does.
    libpam_string try_authtok(const char* prompt = nullptr) const HANDOFF_PAM_CANCELLABLE {
        return get_authtok(PAM_AUTHTOK, prompt);
    }
    libpam_string try_old_authtok(const char* prompt = nullptr) const HANDOFF_PAM_CANCELLABLE {
        return get_authtok(PAM_OLDAUTHTOK, prompt);
    }

    // The item's current value, or nullopt when it is unset (or cannot be
    // read). A view into libpam's copy: valid until the item is set again.
    std::optional<std::string_view> get_item(string_item which) const noexcept {
        const void* value = nullptr;
        if (::pam_get_item(pamh_, which.code(), &value) != PAM_SUCCESS || value == nullptr) {
            return std::nullopt;
        }
        return std::string_view(static_cast<const char*>(value));
    }

    // pam_set_item(3) copies the value; the temporary C string made here is
    // wiped before it is freed. A value holding '\0' is refused (PAM_BAD_ITEM).
    pam::status try_set_item(string_item which, std::string_view value) const noexcept {
        result<secure_c_string<libc>> copy = try_secure_c_strdup<libc>(value);
        if (!copy) {
            return status_of(copy.error() == errc::out_of_memory ? PAM_BUF_ERR : PAM_BAD_ITEM);
        }
        return status_of(::pam_set_item(pamh_, which.code(), copy->get()));
    }
    pam::status try_clear_item(string_item which) const noexcept {
        return status_of(::pam_set_item(pamh_, which.code(), nullptr));
    }

#if HANDOFF_HAS_EXCEPTIONS
    std::string_view user(const char* prompt = nullptr) const {
        return checked(try_user(prompt)).view();
    }
    std::string_view authtok(const char* prompt = nullptr) const {
        return checked(try_authtok(prompt)).view();
    }
    std::string_view old_authtok(const char* prompt = nullptr) const {
        return checked(try_old_authtok(prompt)).view();
    }
    void set_item(string_item which, std::string_view value) const {
        check(try_set_item(which, value));
    }
    void clear_item(string_item which) const { check(try_clear_item(which)); }
#endif

    // --- module data --------------------------------------------------------

    // Hands the owner's object to libpam under key (see section 5). Any
    // std::unique_ptr works, c_unique_ptr of any domain included; its deleter
    // runs exactly once. An empty owner removes what the name holds.
    template <class T, class Deleter>
    pam::status try_set_data(const data_key<T>& key,
                             std::unique_ptr<T, Deleter> owner) const noexcept {
        static_assert(std::is_nothrow_move_constructible_v<Deleter>,
                      "handoff: the deleter must move without throwing");
        static_assert(detail::deleter_cannot_throw<T, Deleter>(),
                      "handoff: a module data deleter runs inside libpam, where nothing may "
                      "unwind: make it noexcept");
        static_assert(!std::is_reference_v<Deleter>,
                      "handoff: libpam keeps the owner until pam_end, after the body returns: a "
                      "reference deleter would dangle by then; store the deleter by value");
        static_assert(std::is_same_v<typename std::unique_ptr<T, Deleter>::pointer, T*>,
                      "handoff: module data is held through a plain T*");
        using box_type = detail::data_box<T, Deleter>;
        static_assert(alignof(box_type) <= libc::alignment,
                      "handoff: this deleter is over-aligned for malloc");
        if (!key.valid()) return invalid_key();  // owner frees the object
        if (!owner) return try_remove_data(key);
        void* raw = libc::allocate(sizeof(box_type));
        if (raw == nullptr) return status_of(PAM_BUF_ERR);  // owner frees the object
        box_type* box = ::new (raw) box_type(std::move(owner));
        detail::data_box_header* header = box;
        const int rc = ::pam_set_data(pamh_, detail::stored_data_name(key).c_str(), header,
                                      &detail::destroy_data_box<box_type>);
        if (rc != PAM_SUCCESS) detail::destroy_data_box<box_type>(pamh_, header, rc);
        return status_of(rc);
    }

    // The object stored under key, if it was stored by this module with
    // this type; nullptr otherwise (nothing stored, removed, another type,
    // another module, or called from the application). libpam keeps it until
    // the name is set again or pam_end.
    template <class T>
    T* get_data(const data_key<T>& key) const noexcept {
        const void* stored = nullptr;
        if (!key.valid()) return nullptr;
        if (::pam_get_data(pamh_, detail::stored_data_name(key).c_str(), &stored) != PAM_SUCCESS ||
            stored == nullptr) {
            return nullptr;
        }
        // Only this module's box for T is ever stored under that name.
        return static_cast<T*>(static_cast<const detail::data_box_header*>(stored)->object);
    }

    // Runs the deleter of what key's name holds now; get_data then returns nullptr.
    template <class T>
    pam::status try_remove_data(const data_key<T>& key) const noexcept {
        if (!key.valid()) return invalid_key();
        return status_of(
            ::pam_set_data(pamh_, detail::stored_data_name(key).c_str(), nullptr, nullptr));
    }

#if HANDOFF_HAS_EXCEPTIONS
    template <class T, class Deleter>
    void set_data(const data_key<T>& key, std::unique_ptr<T, Deleter> owner) const {
        check(try_set_data(key, std::move(owner)));
    }
#endif

    // --- password changes (pam_get_authtok_noverify / _verify) --------------
    //
    // In pam_sm_chauthtok, try_authtok() is the new token: libpam asks for it
    // twice and compares (PAM_TRY_AGAIN when the two differ) unless another
    // module set it already; with use_authtok (or use_first_pass) an unset
    // token is an error instead of a prompt. This pair splits that in two, so
    // a module can judge the new token before asking for it again, as
    // pam_pwquality does. HANDOFF_PAM_CANCELLABLE, as every call that waits
    // for the conversation: they throw nothing themselves.

    // pam_get_authtok_noverify(3): the new token (PAM_AUTHTOK) set by another
    // module, or asked for once and kept as PAM_AUTHTOK.
    libpam_string try_authtok_noverify(const char* prompt = nullptr) const HANDOFF_PAM_CANCELLABLE {
        const char* token = nullptr;
        const int rc = ::pam_get_authtok_noverify(pamh_, &token, prompt);
        return libpam_string(token, status_of(module_code(rc)));
    }

    // pam_get_authtok_verify(3): asks again ("Retype <prompt>", or libpam's
    // "Retype new password: ") and compares with first, which the result then
    // replaces: libpam sets PAM_AUTHTOK anew, so first's string is gone once
    // this returns (use the result). They differ: PAM_TRY_AGAIN, PAM_AUTHTOK
    // cleared and libpam's "Sorry, passwords do not match." shown. Outside
    // pam_sm_chauthtok: PAM_SYSTEM_ERR. A failed first is returned as it is;
    // one without a string (default-made) is PAM_SYSTEM_ERR, as libpam would
    // read through NULL. Ask only when try_authtok_noverify asked: a token
    // another module set (use_authtok) was verified there.
    libpam_string try_authtok_verify(const libpam_string& first,
                                     const char* prompt = nullptr) const HANDOFF_PAM_CANCELLABLE {
        if (!first) return libpam_string(nullptr, first.status());
        if (first.c_str() == nullptr) return libpam_string(nullptr, status_of(PAM_SYSTEM_ERR));
        const char* token = first.c_str();
        const int rc = ::pam_get_authtok_verify(pamh_, &token, prompt);
        return libpam_string(token, status_of(module_code(rc)));
    }

#if HANDOFF_HAS_EXCEPTIONS
    std::string_view authtok_noverify(const char* prompt = nullptr) const {
        return checked(try_authtok_noverify(prompt)).view();
    }
    std::string_view authtok_verify(const libpam_string& first,
                                    const char* prompt = nullptr) const {
        return checked(try_authtok_verify(first, prompt)).view();
    }
#endif

    // --- the PAM environment -----------------------------------------------

    // pam_getenv(3): the value of name, or nullopt when it is unset (or name
    // is empty, holds '\0' or '=', or there is no memory for the copy made to
    // terminate it). A view into libpam's copy: valid until the variable is
    // set again or removed, or pam_end.
    std::optional<std::string_view> getenv(std::string_view name) const noexcept {
        if (!is_env_name(name)) return std::nullopt;
        result<c_unique_ptr<char>> copy = try_c_strdup(name);
        if (!copy) return std::nullopt;
        const char* value = ::pam_getenv(pamh_, copy->get());
        if (value == nullptr) return std::nullopt;
        return std::string_view(value);
    }

    // pam_putenv(3): "NAME=value" sets, "NAME=" sets the empty value, "NAME"
    // removes (PAM_BAD_ITEM when it is not set). libpam keeps a copy of its
    // own; the C string made here to terminate the argument is wiped and
    // freed (values may be secrets). A '\0' inside is refused (PAM_BAD_ITEM),
    // never cut short; libpam refuses an empty name (PAM_BAD_ITEM).
    pam::status try_putenv(std::string_view name_value) const noexcept {
        result<secure_c_string<libc>> copy = try_secure_c_strdup<libc>(name_value);
        if (!copy) return status_of(env_copy_error(copy.error()));
        const detail::cancellation_deferred held;  // libpam logs bad input
        return status_of(::pam_putenv(pamh_, copy->get()));
    }
    // Sets name to value: name must be a name (not empty, no '=' or '\0'),
    // or PAM_BAD_ITEM.
    pam::status try_setenv(std::string_view name, std::string_view value) const noexcept {
        if (!is_env_name(name)) return status_of(PAM_BAD_ITEM);
        if (value.find('\0') != std::string_view::npos) return status_of(PAM_BAD_ITEM);
        const std::size_t size = name.size() + 1 + value.size();  // no overflow: both in memory
        secure_c_string<libc> text(static_cast<char*>(libc::allocate(size + 1)));
        if (!text) return status_of(PAM_BUF_ERR);
        std::memcpy(text.get(), name.data(), name.size());
        text.get()[name.size()] = '=';
        if (!value.empty()) std::memcpy(text.get() + name.size() + 1, value.data(), value.size());
        text.get()[size] = '\0';
        const detail::cancellation_deferred held;  // libpam logs bad input
        return status_of(::pam_putenv(pamh_, text.get()));
    }
    // Removes name; PAM_BAD_ITEM when it is not set or is not a name.
    pam::status try_unsetenv(std::string_view name) const noexcept {
        if (!is_env_name(name)) return status_of(PAM_BAD_ITEM);
        return try_putenv(name);
    }

#if HANDOFF_HAS_EXCEPTIONS
    void putenv(std::string_view name_value) const { check(try_putenv(name_value)); }
    void setenv(std::string_view name, std::string_view value) const {
        check(try_setenv(name, value));
    }
    void unsetenv(std::string_view name) const { check(try_unsetenv(name)); }
#endif

    // --- messages for the user, printf-style, honouring PAM_SILENT ---------

    // Formats like pam_info(3)/pam_error(3) (printf, checked by the compiler)
    // and sends one PAM_TEXT_INFO / PAM_ERROR_MSG message through
    // try_converse, so the reply is validated, wiped and freed as there.
    // flags are the pam_sm_* call's (module_flags; an int converts
    // explicitly): with PAM_SILENT nothing is sent and the
    // result is PAM_SUCCESS (pam_info itself does not look). The text is not
    // limited to PAM_MAX_MSG_SIZE, as with pam_info. A format libc cannot
    // render (an encoding error): PAM_SYSTEM_ERR; no memory: PAM_BUF_ERR.
    // NOLINTBEGIN(cert-dcl50-cpp): C varargs, so the format is checked and goes to vsnprintf
    HANDOFF_PAM_PRINTF(3, 4)
    pam::status try_infof(module_flags flags, const char* format,
                          ...) const HANDOFF_PAM_CANCELLABLE {
        std::va_list args;
        va_start(args, format);
        pam::status s = vsend(PAM_TEXT_INFO, flags, format, args);
        va_end(args);
        return s;
    }
    HANDOFF_PAM_PRINTF(3, 4)
    pam::status try_errorf(module_flags flags, const char* format,
                           ...) const HANDOFF_PAM_CANCELLABLE {
        std::va_list args;
        va_start(args, format);
        pam::status s = vsend(PAM_ERROR_MSG, flags, format, args);
        va_end(args);
        return s;
    }
    // NOLINTEND(cert-dcl50-cpp)

    // --- logging ------------------------------------------------------------

    // pam_syslog(3): the line is prefixed with the module and service names.
    // NOLINTNEXTLINE(cert-dcl50-cpp): C varargs, so the format is checked and goes to pam_vsyslog
    HANDOFF_PAM_PRINTF(3, 4) void log(int priority, const char* format, ...) const noexcept {
        std::va_list args;
        va_start(args, format);
        const detail::cancellation_deferred held;  // pam_vsyslog is a cancellation point
        ::pam_vsyslog(pamh_, priority, format, args);
        va_end(args);
    }

private:
    // libpam's pam_get_user (and what asks through pam_prompt) passes the
    // conversation's PAM_CONV_AGAIN up; a module returns PAM_INCOMPLETE
    // instead, as responses::code() does.
    static int module_code(int rc) noexcept { return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc; }
    static pam::status invalid_key() noexcept {
        return pam::status(PAM_SYSTEM_ERR, "handoff: a data_key name holds no NUL");
    }
    pam::status status_of(int code) const noexcept {
        return pam::status(code, ::pam_strerror(pamh_, code));
    }

    // False when the application's array is known to be too small for n
    // pam_response: its malloc block says so (detail::malloc_block_size;
    // glibc rounds blocks up, so an array one element short may pass).
    static bool block_holds(const ::pam_response* reply, std::size_t n) noexcept {
        if (reply == nullptr) return true;
        const std::size_t block =
            detail::malloc_block_size(static_cast<const char*>(static_cast<const void*>(reply)));
        return block / sizeof(::pam_response) >= n;
    }

    static bool is_env_name(std::string_view name) noexcept {
        return !name.empty() && name.find_first_of(std::string_view("=\0", 2)) == name.npos;
    }
    static int env_copy_error(errc e) noexcept {
        return e == errc::out_of_memory ? PAM_BUF_ERR : PAM_BAD_ITEM;
    }

    // try_infof/try_errorf: formats into a buffer of the exact size.
    HANDOFF_PAM_PRINTF(4, 0)
    pam::status vsend(int style, module_flags flags, const char* format,
                      std::va_list args) const HANDOFF_PAM_CANCELLABLE {
        if (flags.silent()) return status_of(PAM_SUCCESS);
        std::va_list again;
        va_copy(again, args);
        const int length = std::vsnprintf(nullptr, 0, format, args);
        if (length < 0) {
            va_end(again);
            return status_of(PAM_SYSTEM_ERR);
        }
        const std::size_t size = static_cast<std::size_t>(length) + 1;
        secure_c_string<libc> text(static_cast<char*>(libc::allocate(size)));
        if (!text) {
            va_end(again);
            return status_of(PAM_BUF_ERR);
        }
        (void)std::vsnprintf(text.get(), size, format, again);  // the same length again
        va_end(again);
        const outgoing m =
            style == PAM_ERROR_MSG ? outgoing::error(text.get()) : outgoing::info(text.get());
        return try_converse(&m, 1).status();
    }

    libpam_string get_authtok(int item, const char* prompt) const HANDOFF_PAM_CANCELLABLE {
        const char* token = nullptr;
        // As with pam_get_user: PAM_SUCCESS comes with a string (an
        // unanswered prompt is PAM_AUTHTOK_ERR).
        const int rc = ::pam_get_authtok(pamh_, item, &token, prompt);
        return libpam_string(token, status_of(module_code(rc)));
    }

#if HANDOFF_HAS_EXCEPTIONS
    template <class Result>
    static Result checked(Result r) {
        if (!r.ok()) throw error(r.status());
        return r;
    }
#endif

    ::pam_handle_t* pamh_;
};

namespace detail {
inline int run_entry(::pam_handle_t* pamh, const char* entry, int flags, int argc,
                     const char** argv, module_body body) {
    if (pamh == nullptr) return PAM_SYSTEM_ERR;
    return guarded(pamh, entry, [&] {
        return body(module_handle(pamh), module_flags(flags), module_arguments(argc, argv));
    });
}
}  // namespace detail

// ===========================================================================
// 7. Secrets
// ===========================================================================

// Compares what the user typed with a secret without branching on the
// secret's bytes: the time depends on given.size() (which the user knows)
// and not on where the first difference is, nor on expected's contents.
// An empty expected matches only an empty given.
inline bool constant_time_equal(std::string_view given, std::string_view expected) noexcept {
    const std::size_t n = expected.size();
    if (n == 0) return given.empty();
    unsigned diff = given.size() == n ? 0u : 1u;
    for (std::size_t i = 0; i < given.size(); ++i) {
        // Past expected's end read expected[0]: the length differs already.
        const std::size_t in_range = std::size_t{0} - static_cast<std::size_t>(i < n);
        diff |= static_cast<unsigned>(static_cast<unsigned char>(given[i]) ^
                                      static_cast<unsigned char>(expected[i & in_range]));
    }
    return diff == 0;
}

// ===========================================================================
// 8. Checking arguments
// ===========================================================================

namespace detail {
// The name an argument gives: "key" for "key=value", the whole word otherwise.
inline std::string_view argument_name(std::string_view a) noexcept {
    return a.substr(0, a.find('='));
}

enum class argument_verdict { known, unknown, key_without_value, flag_with_value };

inline argument_verdict judge_argument(std::string_view a,
                                       std::initializer_list<std::string_view> known) noexcept {
    const std::string_view name = argument_name(a);
    const bool with_value = name.size() < a.size();
    bool is_flag = false;
    bool is_key = false;
    for (std::string_view k : known) {
        if (!k.empty() && k.back() == '=') {
            is_key = is_key || k.substr(0, k.size() - 1) == name;
        } else {
            is_flag = is_flag || k == name;
        }
    }
    if (with_value ? is_key : is_flag) return argument_verdict::known;
    if (is_key) return argument_verdict::key_without_value;
    if (is_flag) return argument_verdict::flag_with_value;
    return argument_verdict::unknown;
}

// Longer names are cut in the log: a log line stays one line's length.
constexpr int logged_name_max = 64;
inline int logged_length(std::string_view name) noexcept {
    return name.size() > static_cast<std::size_t>(logged_name_max) ? logged_name_max
                                                                   : static_cast<int>(name.size());
}
}  // namespace detail

inline std::size_t module_arguments::warn_unknown(
    module_handle h, std::initializer_list<std::string_view> known) const noexcept {
    using detail::argument_verdict;
    std::size_t logged = 0;
    for (std::size_t i = 0; i < size_; ++i) {
        const std::string_view a = (*this)[i];
        const argument_verdict verdict = detail::judge_argument(a, known);
        if (verdict == argument_verdict::known) continue;
        // Once per name: an earlier argument of this name was logged already.
        const std::string_view name = detail::argument_name(a);
        bool seen = false;
        for (std::size_t j = 0; j < i; ++j) {
            const std::string_view b = (*this)[j];
            if (detail::argument_name(b) == name &&
                detail::judge_argument(b, known) != argument_verdict::known) {
                seen = true;
                break;
            }
        }
        if (seen) continue;
        ++logged;
        const int n = detail::logged_length(name);
        const char* text = name.empty() ? "" : name.data();
        switch (verdict) {
        case argument_verdict::key_without_value:
            h.log(LOG_ERR, "option %.*s= needs a value", n, text);
            break;
        case argument_verdict::flag_with_value:
            h.log(LOG_ERR, "option %.*s takes no value (%.*s= ignored)", n, text, n, text);
            break;
        default:
            h.log(LOG_ERR, "unknown option %.*s%s", n, text, name.size() < a.size() ? "=" : "");
            break;
        }
    }
    return logged;
}

}  // namespace handoff::pam

#ifdef HANDOFF_PAM_MODULE_POP_VISIBILITY
#pragma GCC visibility pop
#undef HANDOFF_PAM_MODULE_POP_VISIBILITY
#endif

#endif  // HANDOFF_PAM_MODULE_HPP
