// handoff::pam: PAM conversations and transactions on top of handoff.hpp.
// SPDX-License-Identifier: MIT
//
// Needs <security/pam_appl.h> and linking with -lpam (Meson: dependency
// 'handoff-pam'; pkg-config: handoff-pam).
//
//   conversation<H>   turns a C++ handler into a struct pam_conv
//   transaction       RAII over pam_start / pam_end, owning its conversation
//   terminal          a ready handler: prompts on the terminal
//   scripted          a ready handler: answers from a list
#ifndef HANDOFF_PAM_HPP
#define HANDOFF_PAM_HPP

#include <handoff/handoff.hpp>

#include <security/pam_appl.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

// pam_start_confdir appeared in Linux-PAM 1.4; the headers carry no usable
// version, so the build says (Meson checks), and Linux-PAM is assumed recent.
#ifndef HANDOFF_PAM_HAS_START_CONFDIR
#if defined(__LINUX_PAM__)
#define HANDOFF_PAM_HAS_START_CONFDIR 1
#else
#define HANDOFF_PAM_HAS_START_CONFDIR 0
#endif
#endif

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
        return text == nullptr ? refuse(failure::refused) : answer(std::string_view(text));
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
    reply_slot() noexcept {}
    ~reply_slot() {}
};

// Constructs the first n slots and destroys them on every path out.
class reply_slots {
public:
    explicit reply_slots(std::size_t n) noexcept : n_(n) {
        for (std::size_t i = 0; i < n_; ++i) ::new (&slots_[i].value) reply();
    }
    reply_slots(const reply_slots&) = delete;
    reply_slots& operator=(const reply_slots&) = delete;
    ~reply_slots() {
        for (std::size_t i = 0; i < n_; ++i) slots_[i].value.~reply();
    }
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
// The conversation adapter
// ===========================================================================

// What every conversation keeps between calls, whatever its handler.
class conversation_state {
public:
    conversation_state() noexcept = default;
    conversation_state(const conversation_state&) = delete;
    conversation_state& operator=(const conversation_state&) = delete;
    virtual ~conversation_state() = default;

    // Why the last call failed (failure::none after a successful call).
    failure last_failure() const noexcept { return last_failure_; }
    // The exception the handler threw, if any; taking it clears it.
    std::exception_ptr take_exception() noexcept { return std::exchange(exception_, nullptr); }
    bool has_exception() const noexcept { return static_cast<bool>(exception_); }
    // True while the handler runs: PAM must not be entered again then.
    bool in_handler() const noexcept { return in_handler_; }

    virtual ::pam_conv c_conv() noexcept = 0;

protected:
    failure last_failure_ = failure::none;
    std::exception_ptr exception_;
    bool in_handler_ = false;

    // The pam_conv(3) contract, shared by every handler type. `call` runs the
    // handler over the batch and fills the replies.
    template <class Call>
    int converse(int num_msg, const ::pam_message** msg, ::pam_response** resp,
                 Call&& call) noexcept {
        last_failure_ = failure::none;
        if (in_handler_) return fail(failure::reentered, PAM_CONV_ERR);
        // Validate everything before allocating anything.
        if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg == nullptr) {
            return fail(failure::bad_message, PAM_CONV_ERR);
        }
        const std::size_t n = static_cast<std::size_t>(num_msg);
        bool needs_answer = false;
        for (std::size_t i = 0; i < n; ++i) {
            const ::pam_message* m = msg[i];
            if (m == nullptr || !detail::known_style(m->msg_style) || m->msg == nullptr) {
                return fail(failure::bad_message, PAM_CONV_ERR);
            }
            needs_answer = needs_answer || is_prompt_style(static_cast<style>(m->msg_style));
        }
        // With nowhere to put replies, only messages that need none can be shown.
        if (resp == nullptr && needs_answer) return fail(failure::bad_message, PAM_CONV_ERR);

        response_array responses;
        if (resp != nullptr) {
            result<response_array> made = response_array::try_zeroed(n);
            if (!made) return fail(failure::out_of_memory, PAM_BUF_ERR);
            responses = std::move(*made);
        }

        detail::reply_slots replies(n);
        message_batch batch(msg, n);
        reply_batch out(replies.data(), n);
        in_handler_ = true;
#if HANDOFF_HAS_EXCEPTIONS
        try {
            call(batch, out);
        } catch (const std::bad_alloc&) {
            in_handler_ = false;
            exception_ = std::current_exception();
            return fail(failure::out_of_memory, PAM_BUF_ERR);
        } catch (...) {
            in_handler_ = false;
            exception_ = std::current_exception();
            return fail(failure::handler_threw, PAM_CONV_ERR);
        }
#else
        call(batch, out);
#endif
        in_handler_ = false;

        // One pass: check each reply and move its answer into the array. If a
        // later reply fails, the array's element policy wipes and frees the
        // answers already moved, and the slots wipe the rest.
        for (std::size_t i = 0; i < n; ++i) {
            failure f = replies[i].error();
            if (f != failure::none) {
                return fail(f, f == failure::out_of_memory ? PAM_BUF_ERR : PAM_CONV_ERR);
            }
            if (!replies[i].has_answer()) {
                if (is_prompt_style(static_cast<style>(msg[i]->msg_style))) {
                    return fail(failure::unanswered_prompt, PAM_CONV_ERR);
                }
                continue;  // resp stays NULL, resp_retcode 0 (calloc)
            }
            if (resp != nullptr) responses[i].resp = std::move(replies[i]).release();
        }
        if (resp != nullptr) *resp = std::move(responses).release();
        return PAM_SUCCESS;
    }

private:
    int fail(failure why, int code) noexcept {
        last_failure_ = why;
        return code;
    }
};

namespace detail {
template <class H, class = void>
struct is_batch_handler : std::false_type {};
template <class H>
struct is_batch_handler<H,
                        std::void_t<decltype(std::declval<H&>()(
                            std::declval<const message_batch&>(), std::declval<reply_batch&>()))>>
    : std::true_type {};
}  // namespace detail

// A conversation with a C++ handler, which is either
//   reply handler(const message&)                        called per message, or
//   void handler(const message_batch&, reply_batch&)     called once per call.
// The object is what appdata_ptr points to, so it cannot be copied or moved;
// it must outlive every PAM call that uses c_conv() (transaction owns one).
template <class Handler>
class conversation final : public conversation_state {
public:
    explicit conversation(Handler handler) : handler_(std::move(handler)) {}

    ::pam_conv c_conv() noexcept override { return ::pam_conv{&c_function, this}; }
    Handler& handler() noexcept { return handler_; }

    // The function libpam calls. Never throws; see conversation_state::converse.
    static int c_function(int num_msg, const ::pam_message** msg, ::pam_response** resp,
                          void* appdata_ptr) noexcept {
        if (appdata_ptr == nullptr) return PAM_CONV_ERR;
        auto* self = static_cast<conversation*>(appdata_ptr);
        return self->converse(num_msg, msg, resp, [self](const message_batch& b, reply_batch& r) {
            if constexpr (detail::is_batch_handler<Handler>::value) {
                self->handler_(b, r);
            } else {
                for (std::size_t i = 0; i < b.size(); ++i) r[i] = self->handler_(b[i]);
            }
        });
    }

private:
    Handler handler_;
};

// ===========================================================================
// Transaction
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

// String items an application may set or read.
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

struct start_options {
    // Read service files from this directory (pam_start_confdir, Linux-PAM >= 1.4);
    // empty: the system's configuration.
    std::string confdir;
};

// RAII over pam_start / pam_end. Owns its conversation, so appdata_ptr cannot
// dangle. Every operation returns a status; the status of the last operation
// goes to pam_end. If the handler threw during an operation, the operation
// rethrows that exception after libpam has returned (exception builds).
class transaction {
public:
    template <class Handler>
    transaction(std::string_view service, std::string_view user, Handler handler,
                const start_options& options = {})
        : conv_(new (std::nothrow) pam::conversation<Handler>(std::move(handler))) {
        start(std::string(service), std::string(user), options);
    }

    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    transaction(transaction&& other) noexcept
        : conv_(std::move(other.conv_)),
          handle_(std::exchange(other.handle_, nullptr)),
          last_(std::exchange(other.last_, PAM_SUCCESS)),
          start_(other.start_) {}
    ~transaction() {
        if (handle_ != nullptr) ::pam_end(handle_, last_);
    }

    // pam_start's result; when it failed every operation returns it again.
    const status& started() const noexcept { return start_; }
    ::pam_handle_t* native_handle() const noexcept { return handle_; }
    conversation_state& conversation() noexcept { return *conv_; }

    status authenticate(int flags = 0) {
        return run([&] { return ::pam_authenticate(handle_, flags); });
    }
    status acct_mgmt(int flags = 0) {
        return run([&] { return ::pam_acct_mgmt(handle_, flags); });
    }
    status chauthtok(int flags = 0) {
        return run([&] { return ::pam_chauthtok(handle_, flags); });
    }
    status open_session(int flags = 0) {
        return run([&] { return ::pam_open_session(handle_, flags); });
    }
    status close_session(int flags = 0) {
        return run([&] { return ::pam_close_session(handle_, flags); });
    }
    status setcred(int flags = static_cast<int>(PAM_ESTABLISH_CRED)) {
        return run([&] { return ::pam_setcred(handle_, flags); });
    }

    status set_item(item which, std::string_view value) {
        std::optional<std::string> copy = terminated(value);
        if (!copy) return local_error(PAM_BAD_ITEM);
        return run([&] { return ::pam_set_item(handle_, static_cast<int>(which), copy->c_str()); });
    }
    std::optional<std::string_view> get_item(item which) const noexcept {
        const void* value = nullptr;
        if (handle_ == nullptr ||
            ::pam_get_item(handle_, static_cast<int>(which), &value) != PAM_SUCCESS ||
            value == nullptr) {
            return std::nullopt;
        }
        return std::string_view(static_cast<const char*>(value));
    }

    // "NAME=value" sets, "NAME" deletes (pam_putenv(3)).
    status putenv(std::string_view name_value) {
        std::optional<std::string> copy = terminated(name_value);
        if (!copy) return local_error(PAM_BAD_ITEM);
        return run([&] { return ::pam_putenv(handle_, copy->c_str()); });
    }
    std::optional<std::string_view> getenv(std::string_view name) const {
        std::optional<std::string> copy = terminated(name);
        if (!copy || handle_ == nullptr) return std::nullopt;
        const char* value = ::pam_getenv(handle_, copy->c_str());
        if (value == nullptr) return std::nullopt;
        return std::string_view(value);
    }
    // pam_getenvlist(3): the caller frees each string and the array with
    // free(3). Values may be secrets, so they are wiped first. Empty on failure.
    c_string_list<libc, owns_secret_strings> getenvlist() const noexcept {
        if (handle_ == nullptr) return {};
        return c_string_list<libc, owns_secret_strings>::adopt(::pam_getenvlist(handle_));
    }

private:
    void start(const std::string& service, const std::string& user, const start_options& options) {
        if (!conv_) {
            start_ = status(PAM_BUF_ERR, "out of memory");
            return;
        }
        ::pam_conv c = conv_->c_conv();
        const char* u = user.empty() ? nullptr : user.c_str();
        int code = PAM_SUCCESS;
        if (options.confdir.empty()) {
            code = ::pam_start(service.c_str(), u, &c, &handle_);
        } else {
#if HANDOFF_PAM_HAS_START_CONFDIR
            code = ::pam_start_confdir(service.c_str(), u, &c, options.confdir.c_str(), &handle_);
#else
            code = PAM_SYSTEM_ERR;
#endif
        }
        if (code != PAM_SUCCESS) {
            // pam_start may leave a handle behind on failure; end it now.
            if (handle_ != nullptr) ::pam_end(handle_, code);
            handle_ = nullptr;
        }
        last_ = code;
        start_ = status(code, ::pam_strerror(nullptr, code));
    }

    static std::optional<std::string> terminated(std::string_view s) {
        if (s.find('\0') != std::string_view::npos) return std::nullopt;
        return std::string(s);
    }

    status local_error(int code) const noexcept {
        return status(code, ::pam_strerror(handle_, code));
    }

    template <class Op>
    status run(Op op) {
        if (handle_ == nullptr) return start_;
        if (conv_->in_handler()) {
            // A handler that calls back into PAM would corrupt libpam's state.
            return status(PAM_SYSTEM_ERR, ::pam_strerror(handle_, PAM_SYSTEM_ERR),
                          failure::reentered);
        }
        int code = op();
        last_ = code;
        failure why = code == PAM_SUCCESS ? failure::none : conv_->last_failure();
        status s(code, ::pam_strerror(handle_, code), why);
#if HANDOFF_HAS_EXCEPTIONS
        if (std::exception_ptr e = conv_->take_exception()) std::rethrow_exception(e);
#endif
        return s;
    }

    std::unique_ptr<conversation_state> conv_;
    ::pam_handle_t* handle_ = nullptr;
    int last_ = PAM_SUCCESS;
    status start_;
};

// ===========================================================================
// Ready handlers
// ===========================================================================

// Answers prompts from a list, in order. Info and error messages are kept in
// transcript() and, if `echo` is set, printed (info to stdout, errors to
// stderr). When the answers run out the call fails with input_closed.
// Binary prompts are refused.
class scripted {
public:
    explicit scripted(std::vector<std::string> answers, bool echo = false)
        : answers_(std::move(answers)), echo_(echo) {}
    scripted(scripted&&) noexcept = default;
    scripted& operator=(scripted&&) noexcept = default;
    ~scripted() {
        for (std::string& a : answers_) secure_clear(a);
    }

    reply operator()(const message& m) {
        switch (m.kind()) {
        case style::text_info:
        case style::error_msg:
            transcript_.emplace_back(m.text());
            if (echo_) {
                std::FILE* out = m.kind() == style::text_info ? stdout : stderr;
                std::fprintf(out, "%.*s\n", static_cast<int>(m.text().size()), m.text().data());
            }
            return reply::none();
        case style::binary_prompt: return reply::refuse(failure::refused);
        case style::prompt_echo_off:
        case style::prompt_echo_on:
        case style::radio: break;
        }
        if (next_ == answers_.size()) return reply::refuse(failure::input_closed);
        return reply::answer(std::move(answers_[next_++]));
    }

    const std::vector<std::string>& transcript() const noexcept { return transcript_; }
    std::size_t answers_used() const noexcept { return next_; }

private:
    std::vector<std::string> answers_;
    std::vector<std::string> transcript_;
    std::size_t next_ = 0;
    bool echo_ = false;
};

struct terminal_options {
    enum class input_source { automatic, tty, standard_input };
    // automatic: standard input when it is not a terminal (scripts, pipes),
    // otherwise /dev/tty.
    input_source input = input_source::automatic;
    // Milliseconds to wait for each answer; negative waits forever.
    int timeout_ms = -1;
    // false: prompts fail (input_closed) at once, info and errors still show.
    bool interactive = true;
    // Explicit descriptors (tests, embedding); -1 chooses as above.
    int input_fd = -1;
    int prompt_fd = -1;
};

// Prompts on the terminal. Echo is turned off with termios for echo-off
// prompts and restored on every path (answer, EOF, timeout, Ctrl-C, throw).
// Input is read one byte at a time up to the newline, so several prompts can
// share a pipe and nothing past an answer is consumed. An overlong line is
// drained to its end and refused, so its tail is never taken as the next
// answer. EOF before any byte is input_closed; a last line without a newline
// is still an answer. Ctrl-C cancels the call (failure::cancelled). Prompts go
// to the terminal (or stderr when input is not a terminal), info to stdout,
// errors to stderr.
class terminal {
public:
    explicit terminal(terminal_options options = {}) : options_(options) {
        in_fd_ = options_.input_fd;
        prompt_fd_ = options_.prompt_fd;
        if (in_fd_ < 0) {
            bool want_tty = options_.input == terminal_options::input_source::tty ||
                            (options_.input == terminal_options::input_source::automatic &&
                             ::isatty(STDIN_FILENO) == 1);
            if (want_tty) {
                tty_fd_ = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
            }
            in_fd_ = tty_fd_ >= 0 ? tty_fd_ : STDIN_FILENO;
        }
        if (prompt_fd_ < 0) prompt_fd_ = tty_fd_ >= 0 ? tty_fd_ : STDERR_FILENO;
    }
    terminal(terminal&& other) noexcept
        : options_(other.options_),
          tty_fd_(std::exchange(other.tty_fd_, -1)),
          in_fd_(other.in_fd_),
          prompt_fd_(other.prompt_fd_) {}
    terminal& operator=(terminal&&) = delete;
    ~terminal() {
        if (tty_fd_ >= 0) ::close(tty_fd_);
    }

    reply operator()(const message& m) {
        switch (m.kind()) {
        case style::text_info: print(STDOUT_FILENO, m.text(), true); return reply::none();
        case style::error_msg: print(STDERR_FILENO, m.text(), true); return reply::none();
        case style::binary_prompt: return reply::refuse(failure::refused);
        case style::prompt_echo_off:
        case style::prompt_echo_on:
        case style::radio: break;
        }
        if (!options_.interactive) return reply::refuse(failure::input_closed);
        print(prompt_fd_, m.text(), false);
        secret_string line;
        failure why = read_line(line, m.kind() != style::prompt_echo_off);
        if (why != failure::none) return reply::refuse(why);
        return reply::answer(std::move(line));
    }

private:
    static void print(int fd, std::string_view text, bool newline) noexcept {
        write_all(fd, text);
        if (newline && (text.empty() || text.back() != '\n')) write_all(fd, "\n");
    }
    static void write_all(int fd, std::string_view text) noexcept {
        while (!text.empty()) {
            ssize_t n = ::write(fd, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Turns echo off for its lifetime (if the input is a terminal) and puts
    // the old state back, whatever path leaves the scope.
    class echo_guard {
    public:
        echo_guard(int fd, bool echo) noexcept : fd_(fd) {
            if (echo || ::tcgetattr(fd, &saved_) != 0) return;
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
            active_ = ::tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
        }
        echo_guard(const echo_guard&) = delete;
        echo_guard& operator=(const echo_guard&) = delete;
        ~echo_guard() {
            if (!active_) return;
            ::tcsetattr(fd_, TCSAFLUSH, &saved_);
            // The user's Enter was not echoed: end the prompt's line ourselves.
            static_cast<void>(::write(fd_, "\n", 1));
        }

    private:
        int fd_;
        termios saved_{};
        bool active_ = false;
    };

    // SIGINT during a prompt cancels it: the handler only sets a flag, poll()
    // returns EINTR, and the guards restore the terminal on the way out.
    class interrupt_guard {
    public:
        interrupt_guard() noexcept {
            flag() = 0;
            struct sigaction sa {};
            sa.sa_handler = &on_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = 0;  // no SA_RESTART: poll must return EINTR
            installed_ = ::sigaction(SIGINT, &sa, &old_) == 0;
        }
        interrupt_guard(const interrupt_guard&) = delete;
        interrupt_guard& operator=(const interrupt_guard&) = delete;
        ~interrupt_guard() {
            if (installed_) ::sigaction(SIGINT, &old_, nullptr);
        }
        static bool fired() noexcept { return flag() != 0; }

    private:
        static volatile std::sig_atomic_t& flag() noexcept {
            static volatile std::sig_atomic_t f = 0;
            return f;
        }
        static void on_signal(int) noexcept { flag() = 1; }
        struct sigaction old_ {};
        bool installed_ = false;
    };

    failure read_line(secret_string& line, bool echo) {
        interrupt_guard interrupts;
        echo_guard quiet(in_fd_, echo);
        bool too_long = false;
        bool any = false;
        for (;;) {
            pollfd p{in_fd_, POLLIN, 0};
            int ready = ::poll(&p, 1, options_.timeout_ms);
            if (interrupt_guard::fired()) return failure::cancelled;
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return failure::input_closed;
            if (ready == 0) return failure::timed_out;
            char c = 0;
            ssize_t n = ::read(in_fd_, &c, 1);
            if (n < 0 && errno == EINTR) {
                if (interrupt_guard::fired()) return failure::cancelled;
                continue;
            }
            if (n <= 0) {  // EOF
                if (!any) return failure::input_closed;
                break;
            }
            any = true;
            if (c == '\n') break;
            if (too_long) continue;  // drain the rest of an overlong line
            if (line.size() + 1 >= PAM_MAX_RESP_SIZE) {
                too_long = true;
                line.clear();
                continue;
            }
            if (line.try_push_back(c) != errc::ok) return failure::out_of_memory;
        }
        if (too_long) return failure::answer_too_long;
        if (!line.empty() && line.view().back() == '\r') line.pop_back();
        return failure::none;
    }

    terminal_options options_;
    int tty_fd_ = -1;
    int in_fd_ = STDIN_FILENO;
    int prompt_fd_ = STDERR_FILENO;
};

}  // namespace handoff::pam

#endif  // HANDOFF_PAM_HPP
