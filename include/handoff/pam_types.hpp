// handoff::pam types shared by the application side (pam.hpp), the module side
// (pam_module.hpp) and the async handler: messages, replies, the response
// array's ownership policy, PAM results, and the items both sides use.
// SPDX-License-Identifier: MIT
//
// Needs <security/pam_appl.h>; link with -lpam (Meson: dependency 'handoff-pam';
// pkg-config: handoff-pam; CMake: handoff::pam).
#ifndef HANDOFF_PAM_TYPES_HPP
#define HANDOFF_PAM_TYPES_HPP

#include <handoff/handoff.hpp>

#include <security/pam_appl.h>

#include <string.h>  // NOLINT(modernize-deprecated-headers): strnlen is POSIX, not in <cstring>

#include <cstring>
#include <exception>
#include <string_view>
#include <utility>

// Thread cancellation. glibc ends a thread that is cancelled at a
// cancellation point (poll, read, pthread_cond_wait: where a conversation
// waits) or that calls pthread_exit by unwinding its stack, through libpam and
// the modules; libstdc++ shows that unwind to C++ as abi::__forced_unwind. A
// catch (...) that swallows it, or a noexcept frame it meets, aborts the
// process. So every barrier of handoff rethrows it (HANDOFF_PAM_FORCED_UNWIND)
// and the functions through which a conversation is waited for are
// HANDOFF_PAM_CANCELLABLE in place of noexcept: they throw nothing else.
// With -fno-exceptions they are noexcept; the compiler then emits no cleanups
// at all, so a cancelled thread skips every destructor on its stack: cancel
// threads only in builds with exceptions.
#if HANDOFF_HAS_EXCEPTIONS
#define HANDOFF_PAM_CANCELLABLE
#if defined(__GLIBCXX__)
#include <cxxabi.h>
#define HANDOFF_PAM_FORCED_UNWIND 1
#endif
#else
#define HANDOFF_PAM_CANCELLABLE noexcept
#endif
#ifndef HANDOFF_PAM_FORCED_UNWIND
#define HANDOFF_PAM_FORCED_UNWIND 0
#endif
// A handler for abi::__forced_unwind gets its reference bound to NULL (the
// unwind carries no C++ object); GCC's -fsanitize=null reports that binding.
#if HANDOFF_PAM_FORCED_UNWIND && defined(__GNUC__) && !defined(__clang__)
#define HANDOFF_PAM_FORCED_UNWIND_HANDLER __attribute__((no_sanitize("null")))
#else
#define HANDOFF_PAM_FORCED_UNWIND_HANDLER
#endif

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_usable_size
#endif

#ifndef PAM_MAX_NUM_MSG
#define PAM_MAX_NUM_MSG 32
#endif
#ifndef PAM_MAX_RESP_SIZE
#define PAM_MAX_RESP_SIZE 512
#endif

// Hidden in modules: see HANDOFF_HIDDEN_VISIBILITY in handoff.hpp.
#if defined(HANDOFF_HIDDEN_VISIBILITY) && defined(__GNUC__)
#if HANDOFF_HIDDEN_VISIBILITY
#pragma GCC visibility push(hidden)
#define HANDOFF_POP_VISIBILITY 1
#endif
#endif

namespace handoff::pam {

// ===========================================================================
// Messages and replies
// ===========================================================================

// Why a conversation call failed; kept by the conversation for the caller,
// since to libpam every failure looks the same (PAM_CONV_ERR / PAM_BUF_ERR).
enum class failure : unsigned char {
    none = 0,
    bad_message,        // the module passed invalid arguments (count, NULLs, style)
    refused,            // the handler refused to answer
    unanswered_prompt,  // the handler gave no answer to a prompt
    answer_too_long,    // an answer of PAM_MAX_RESP_SIZE bytes or more
    answer_has_nul,     // an answer with an embedded '\0'
    cancelled,          // the user cancelled (Ctrl-C on the terminal)
    timed_out,          // no answer in time
    input_closed,       // end of input, or the answers ran out
    handler_threw,      // the handler threw; the exception is kept
    out_of_memory,      // an allocation failed (PAM_BUF_ERR)
    reentered,          // PAM was called again from inside the handler
    // Seen by modules (pam_module.hpp): what the application's conversation did.
    no_conversation,     // the application set no conversation function
    conversation_error,  // the application's conversation returned an error code
    bad_reply,           // success with no reply array for prompts, or resp_retcode != 0
    // Seen by process_transaction's owner (pam_process.hpp).
    worker_died,  // the worker process was killed by a signal or exited before its result
};

constexpr const char* to_string(failure f) noexcept {
    switch (f) {
    case failure::none: return "none";
    case failure::bad_message: return "the module passed an invalid message array";
    case failure::refused: return "the handler refused to answer";
    case failure::unanswered_prompt: return "a prompt was left unanswered";
    case failure::answer_too_long: return "the answer is too long for PAM";
    case failure::answer_has_nul: return "the answer contains a NUL byte";
    case failure::cancelled: return "cancelled";
    case failure::timed_out: return "timed out";
    case failure::input_closed: return "input closed";
    case failure::handler_threw: return "the conversation handler threw";
    case failure::out_of_memory: return "out of memory";
    case failure::reentered: return "PAM was re-entered from the conversation";
    case failure::no_conversation: return "the application has no conversation function";
    case failure::conversation_error: return "the application's conversation failed";
    case failure::bad_reply: return "the application's conversation returned an invalid reply";
    case failure::worker_died: return "the PAM worker process died";
    }
    return "unknown";
}

// Message styles. radio and binary_prompt are Linux-PAM extensions: a radio
// prompt is answered like an echo-on prompt; a binary prompt carries a packet
// rather than text (message::binary()); the ready handlers refuse it.
enum class style : int {
    prompt_echo_off = PAM_PROMPT_ECHO_OFF,
    prompt_echo_on = PAM_PROMPT_ECHO_ON,
    error_msg = PAM_ERROR_MSG,
    text_info = PAM_TEXT_INFO,
#ifdef PAM_RADIO_TYPE
    radio = PAM_RADIO_TYPE,
#else
    radio = 5,
#endif
#ifdef PAM_BINARY_PROMPT
    binary_prompt = PAM_BINARY_PROMPT,
#else
    binary_prompt = 7,
#endif
};

// Prompts need an answer; info and error messages do not.
constexpr bool is_prompt_style(style s) noexcept {
    return s == style::prompt_echo_off || s == style::prompt_echo_on || s == style::radio ||
           s == style::binary_prompt;
}

// A view of one message; valid during the handler call only. The text is
// measured when text() asks for it, not before.
class message {
public:
    message(style s, const ::pam_message* raw) noexcept
        : style_(s), prompt_(is_prompt_style(s)), raw_(raw) {}

    // For the adapter: a message whose style was already checked to be one
    // of the six known, so telling prompts apart needs one comparison.
    // Safety: raw->msg_style is a known style (detail::known_style).
    static message from_validated(const ::pam_message* raw) noexcept {
        const int s = raw->msg_style;
        return message(static_cast<style>(s), raw, s != PAM_ERROR_MSG && s != PAM_TEXT_INFO);
    }

    style kind() const noexcept { return style_; }
    std::string_view text() const noexcept {
        return style_ == style::binary_prompt || raw_->msg == nullptr ? std::string_view()
                                                                      : std::string_view(raw_->msg);
    }
    bool is_prompt() const noexcept { return prompt_ != 0; }
    // The answer to an echo-off prompt is a secret.
    bool is_secret() const noexcept { return style_ == style::prompt_echo_off; }
    // The raw packet of a binary prompt (Linux-PAM's pamc_bp_t).
    const void* binary() const noexcept { return raw_->msg; }

private:
    message(style s, const ::pam_message* raw, bool prompt) noexcept
        : style_(s), prompt_(prompt), raw_(raw) {}

    style style_;
    // is_prompt_style(style_). A byte rather than a bool: GCC 12 then
    // branches on it directly instead of rebuilding the bool each message.
    unsigned char prompt_;
    const ::pam_message* raw_;
};

namespace detail {
// Styles 1 to 5 and 7, as one range test and one comparison.
constexpr bool known_style(int s) noexcept {
    static_assert(
        static_cast<int>(style::prompt_echo_off) == 1 &&
            static_cast<int>(style::prompt_echo_on) == 2 &&
            static_cast<int>(style::error_msg) == 3 && static_cast<int>(style::text_info) == 4 &&
            static_cast<int>(style::radio) == 5 && static_cast<int>(style::binary_prompt) == 7,
        "handoff: the style check assumes Linux-PAM's numbering");
    return static_cast<unsigned>(s) - 1u < 5u || s == 7;
}
}  // namespace detail

// What a handler returns for one message: an answer, no answer (for info and
// error messages), or a refusal that fails the whole conversation call.
//
// An answer is copied into C memory (malloc) when the reply is made, once, and
// that copy is what libpam receives; it is wiped if it is never handed over.
// Answers of PAM_MAX_RESP_SIZE bytes or more, or holding '\0', are refused
// rather than truncated. Making a reply never throws: a failed allocation
// becomes a reply that fails with failure::out_of_memory (PAM_BUF_ERR).
class reply {
public:
    reply() noexcept = default;

    static reply none() noexcept { return reply(); }
    static reply refuse(failure why = failure::refused) noexcept {
        return reply(why == failure::none ? failure::refused : why);
    }

    // Copies the view; the caller's memory is not touched. The view is
    // scanned once, for '\0'.
    static reply answer(std::string_view text) noexcept {
        if (text.size() >= PAM_MAX_RESP_SIZE) return reply(failure::answer_too_long);
        if (text.find('\0') != std::string_view::npos) return reply(failure::answer_has_nul);
        return made(handoff::detail::copy_checked_c_string<libc>(text.data(), text.size()));
    }

    // Copies, then wipes the string the caller gave away (small buffer too).
    static reply answer(std::string&& text) noexcept {
        reply r = answer(std::string_view(text));
        secure_clear(text);
        return r;
    }

    // Copies a C string (NULL is a refusal). One scan finds its length,
    // which is also the proof that it holds no '\0'.
    static reply answer(const char* text) noexcept {
        if (text == nullptr) return reply(failure::refused);
        std::size_t n = std::strlen(text);
        if (n >= PAM_MAX_RESP_SIZE) return reply(failure::answer_too_long);
        return made(handoff::detail::copy_measured_c_string<libc>(text, n));
    }

    // Takes the secret's buffer as it is: no copy is made.
    static reply answer(secret_string&& text) noexcept {
        if (text.size() >= PAM_MAX_RESP_SIZE) return reply(failure::answer_too_long);
        result<secure_c_string<libc>> buffer = std::move(text).try_release_c_string();
        if (!buffer) {
            return reply(buffer.error() == errc::embedded_nul ? failure::answer_has_nul
                                                              : failure::out_of_memory);
        }
        return reply(buffer->release());
    }

    bool has_answer() const noexcept { return text_ != nullptr; }
    failure error() const noexcept { return failure_; }
    std::string_view text() const noexcept {
        return text_ ? std::string_view(text_.get()) : std::string_view();
    }

    // Gives the answer's C string away (for the adapter).
    [[nodiscard]] char* release() && noexcept { return text_.release(); }

private:
    explicit reply(failure why) noexcept : failure_(why) {}
    explicit reply(char* text) noexcept : text_(text) {}

    // An answer copied into C memory, or out_of_memory when that failed.
    static reply made(char* copy) noexcept {
        if (copy == nullptr) return reply(failure::out_of_memory);
        return reply(copy);
    }

    secure_c_string<libc> text_;  // non-NULL exactly when there is an answer
    failure failure_ = failure::none;
};

// All messages of one conversation call (Linux-PAM layout: msg[i] points to
// the i-th message). Validated before the handler sees it.
class message_batch {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = message;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = message;
        iterator(const message_batch* b, std::size_t i) noexcept : batch_(b), i_(i) {}
        message operator*() const noexcept { return (*batch_)[i_]; }
        iterator& operator++() noexcept {
            ++i_;
            return *this;
        }
        friend bool operator==(iterator a, iterator b) noexcept { return a.i_ == b.i_; }
        friend bool operator!=(iterator a, iterator b) noexcept { return a.i_ != b.i_; }

    private:
        const message_batch* batch_;
        std::size_t i_;
    };

    message_batch(const ::pam_message** msg, std::size_t n) noexcept : msg_(msg), n_(n) {}
    std::size_t size() const noexcept { return n_; }
    message operator[](std::size_t i) const noexcept {
        return message(static_cast<style>(msg_[i]->msg_style), msg_[i]);
    }
    iterator begin() const noexcept { return iterator(this, 0); }
    iterator end() const noexcept { return iterator(this, n_); }

private:
    const ::pam_message** msg_;
    std::size_t n_;
};

// The replies of one call, indexed like the messages; all start as none().
// `replies[i] = reply::...` puts the reply straight into the pam_response
// array libpam will receive: an answer's C string goes into resp at once (a
// reply replaced later is wiped and freed), and a refusal is kept in the
// slot's resp_retcode until the adapter checks the batch after the handler
// returns (resp_retcode is 0 in every array handed to libpam). Valid during
// the handler call only.
class reply_batch {
public:
    // One reply of the batch: assign a reply to it, or read what it holds.
    class slot {
    public:
        explicit slot(::pam_response* r) noexcept : r_(r) {}
        slot(const slot&) noexcept = default;
        slot(slot&&) noexcept = default;
        ~slot() = default;

        slot& operator=(reply&& r) noexcept {
            char* old = r_->resp;
            r_->resp_retcode = static_cast<int>(r.error());
            r_->resp = std::move(r).release();
            drop(old);
            return *this;
        }
        // Not from another slot: `replies[0] = replies[1]` would have to
        // move a reply out of a slot that reads like an operand.
        slot& operator=(const slot&) = delete;
        slot& operator=(slot&&) = delete;

        bool has_answer() const noexcept { return r_->resp != nullptr; }
        failure error() const noexcept { return static_cast<failure>(r_->resp_retcode); }
        std::string_view text() const noexcept {
            return r_->resp != nullptr ? std::string_view(r_->resp) : std::string_view();
        }

    private:
        static void drop(char* answer) noexcept {
            if (answer != nullptr) owns_secret_strings::release_element<libc>(answer);
        }
        ::pam_response* r_;
    };

    // Safety: responses points to n zeroed pam_response that outlive the batch.
    reply_batch(::pam_response* responses, std::size_t n) noexcept : responses_(responses), n_(n) {}
    std::size_t size() const noexcept { return n_; }
    slot operator[](std::size_t i) noexcept { return slot(responses_ + i); }

private:
    ::pam_response* responses_;
    std::size_t n_;
};

namespace detail {
// The size of the malloc block p points to, where the C library can say
// (glibc's malloc_usable_size; ASan and valgrind report the size asked
// for); SIZE_MAX where it cannot. Safety: p came from malloc.
inline std::size_t malloc_block_size(const char* p) noexcept {
#if defined(__GLIBC__)
    return ::malloc_usable_size(
        const_cast<char*>(p));  // NOLINT(cppcoreguidelines-pro-type-const-cast): reads only
#else
    (void)p;
    return static_cast<std::size_t>(-1);
#endif
}

// The bytes of an answer to wipe: up to and including its NUL, never past its
// block. An application's answer need not be NUL-terminated (a hostile one is
// not), so the scan is bounded where the block's size is known.
inline std::size_t answer_bytes(const char* p) noexcept {
    const std::size_t block = malloc_block_size(p);
    const std::size_t n = ::strnlen(p, block);
    return n < block ? n + 1 : block;
}
}  // namespace detail

// pam_response elements own their resp string, wiped before it is freed: up
// to and including the NUL, or the whole block for an answer that has none
// (detail::answer_bytes). The element is then left all zero, padding
// included: resp_retcode may hold a refusal (reply_batch keeps it there until
// the adapter reads it) and the padding whatever malloc handed out.
struct owns_response_text {
    static constexpr bool wipe_buffer = false;
    template <class Domain>
    static void release_element(::pam_response& r) noexcept {
        static_assert(std::is_same_v<Domain, libc>,
                      "handoff: pam_response texts are malloc'ed (libpam frees them with free)");
        if (r.resp != nullptr) {
            secure_wipe(r.resp, detail::answer_bytes(r.resp));
            libc::deallocate(r.resp);
        }
        std::memset(static_cast<void*>(&r), 0, sizeof r);
    }
};

// The array libpam receives: calloc'ed, freed by libpam with free(3).
using response_array = malloc_array<::pam_response, libc, owns_response_text>;

// ===========================================================================
// Results
// ===========================================================================

// A PAM result: the code and libpam's text for it, and for conversation
// errors the reason the conversation gave.
class status {
public:
    status() noexcept = default;
    status(int code, const char* text, failure conv = failure::none) noexcept
        : code_(code), text_(text), conv_(conv) {}
    int code() const noexcept { return code_; }
    bool ok() const noexcept { return code_ == PAM_SUCCESS; }
    explicit operator bool() const noexcept { return ok(); }
    const char* message() const noexcept { return text_ == nullptr ? "" : text_; }
    failure conversation_failure() const noexcept { return conv_; }

private:
    int code_ = PAM_SUCCESS;
    const char* text_ = nullptr;
    failure conv_ = failure::none;
};

#if HANDOFF_HAS_EXCEPTIONS
// Thrown by check(): carries the PAM code and pam_strerror's text.
class error : public std::runtime_error {
public:
    explicit error(const status& s)
        : std::runtime_error(s.message()), code_(s.code()), conv_(s.conversation_failure()) {}
    int code() const noexcept { return code_; }
    failure conversation_failure() const noexcept { return conv_; }

private:
    int code_;
    failure conv_;
};

inline const status& check(const status& s) {
    if (!s.ok()) throw error(s);
    return s;
}
#endif

// ===========================================================================
// Items
// ===========================================================================

// The string items an application and its modules both read and set
// (pam_get_item(3), pam_set_item(3)). Those only modules use are
// pam_module.hpp's module_item.
enum class item : int {
    service = PAM_SERVICE,
    user = PAM_USER,
    user_prompt = PAM_USER_PROMPT,
    tty = PAM_TTY,
    ruser = PAM_RUSER,
    rhost = PAM_RHOST,
#ifdef PAM_XDISPLAY
    xdisplay = PAM_XDISPLAY,
#endif
};

}  // namespace handoff::pam

#ifdef HANDOFF_POP_VISIBILITY
#pragma GCC visibility pop
#undef HANDOFF_POP_VISIBILITY
#endif

#endif  // HANDOFF_PAM_TYPES_HPP
