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

#include <exception>
#include <string_view>
#include <utility>

#ifndef PAM_MAX_NUM_MSG
#define PAM_MAX_NUM_MSG 32
#endif
#ifndef PAM_MAX_RESP_SIZE
#define PAM_MAX_RESP_SIZE 512
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

// A view of one message; valid during the handler call only.
class message {
public:
    message(style s, const ::pam_message* raw) noexcept
        : style_(s),
          raw_(raw),
          text_(s == style::binary_prompt || raw->msg == nullptr ? std::string_view()
                                                                 : std::string_view(raw->msg)) {}

    style kind() const noexcept { return style_; }
    std::string_view text() const noexcept { return text_; }
    bool is_prompt() const noexcept { return is_prompt_style(style_); }
    // The answer to an echo-off prompt is a secret.
    bool is_secret() const noexcept { return style_ == style::prompt_echo_off; }
    // The raw packet of a binary prompt (Linux-PAM's pamc_bp_t).
    const void* binary() const noexcept { return raw_->msg; }

private:
    style style_;
    const ::pam_message* raw_;
    std::string_view text_;
};

namespace detail {
inline bool known_style(int s) noexcept {
    switch (static_cast<style>(s)) {
    case style::prompt_echo_off:
    case style::prompt_echo_on:
    case style::error_msg:
    case style::text_info:
    case style::radio:
    case style::binary_prompt: return true;
    }
    return false;
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
        reply r;
        r.failure_ = why == failure::none ? failure::refused : why;
        return r;
    }

    // Copies the view; the caller's memory is not touched.
    static reply answer(std::string_view text) noexcept {
        if (text.size() >= PAM_MAX_RESP_SIZE) return refuse(failure::answer_too_long);
        return from(try_secure_c_strdup<libc>(text));
    }

    // Copies, then wipes the string the caller gave away (small buffer too).
    static reply answer(std::string&& text) noexcept {
        reply r = answer(std::string_view(text));
        secure_clear(text);
        return r;
    }
    static reply answer(const char* text) noexcept {
        if (text == nullptr) return refuse(failure::refused);
        return answer(std::string_view(text));
    }

    // Takes the secret's buffer as it is: no copy is made.
    static reply answer(secret_string&& text) noexcept {
        if (text.size() >= PAM_MAX_RESP_SIZE) return refuse(failure::answer_too_long);
        return from(std::move(text).try_release_c_string());
    }

    bool has_answer() const noexcept { return text_ != nullptr; }
    failure error() const noexcept { return failure_; }
    std::string_view text() const noexcept {
        return text_ ? std::string_view(text_.get()) : std::string_view();
    }

    // Gives the answer's C string away (for the adapter).
    [[nodiscard]] char* release() && noexcept { return text_.release(); }

private:
    // An answer made in C memory, or the refusal that says why it could not be.
    static reply from(result<secure_c_string<libc>>&& made) noexcept {
        if (!made) {
            return refuse(made.error() == errc::embedded_nul ? failure::answer_has_nul
                                                             : failure::out_of_memory);
        }
        reply r;
        r.text_ = std::move(*made);
        return r;
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

namespace detail {
// Room for one reply that is only constructed when a call has that many
// messages: a call with one message pays for one reply, not PAM_MAX_NUM_MSG.
union reply_slot {
    reply value;
    // reply_slots constructs and destroys `value`; `= default` would be deleted here.
    reply_slot() noexcept {}  // NOLINT(modernize-use-equals-default): see above
    ~reply_slot() {}          // NOLINT(modernize-use-equals-default): see above
    reply_slot(const reply_slot&) = delete;
    reply_slot& operator=(const reply_slot&) = delete;
};

// Constructs the first n slots and destroys them on every path out.
class reply_slots {
public:
    explicit reply_slots(std::size_t n) noexcept : n_(n) {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-union-access): the slots are storage
        for (std::size_t i = 0; i < n_; ++i) ::new (&slots_[i].value) reply();
    }
    reply_slots(const reply_slots&) = delete;
    reply_slots& operator=(const reply_slots&) = delete;
    ~reply_slots() {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-union-access): the first n_ are constructed
        for (std::size_t i = 0; i < n_; ++i) slots_[i].value.~reply();
    }
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-union-access): i < n_, a constructed slot
    reply& operator[](std::size_t i) noexcept { return slots_[i].value; }
    reply_slot* data() noexcept { return slots_; }

private:
    reply_slot slots_[PAM_MAX_NUM_MSG];
    std::size_t n_;
};
}  // namespace detail

// The replies of one call, indexed like the messages; all start as none().
class reply_batch {
public:
    reply_batch(detail::reply_slot* r, std::size_t n) noexcept : replies_(r), n_(n) {}
    std::size_t size() const noexcept { return n_; }
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-union-access): i < n_, a constructed slot
    reply& operator[](std::size_t i) noexcept { return replies_[i].value; }

private:
    detail::reply_slot* replies_;
    std::size_t n_;
};

// pam_response elements own their resp string, wiped before it is freed.
struct owns_response_text {
    static constexpr bool wipe_buffer = false;
    template <class Domain>
    static void release_element(::pam_response& r) noexcept {
        owns_secret_strings::release_element<Domain>(r.resp);
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

#endif  // HANDOFF_PAM_TYPES_HPP
