// handoff::pam: the application side of PAM on top of handoff.hpp.
// SPDX-License-Identifier: MIT
//
// Needs <security/pam_appl.h> and linking with -lpam (Meson: dependency
// 'handoff-pam'; pkg-config: handoff-pam; CMake: handoff::pam).
//
//   pam_types.hpp     messages, replies, status and error (shared with modules)
//   conversation<H>   turns a C++ handler into a struct pam_conv
//   transaction       RAII over pam_start / pam_end, owning its conversation
//   scripted          a ready handler: answers from a list
//   terminal          a ready handler: prompts on the terminal (pam_terminal.hpp)
#ifndef HANDOFF_PAM_HPP
#define HANDOFF_PAM_HPP

#include <handoff/pam_terminal.hpp>
#include <handoff/pam_types.hpp>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// pam_start_confdir appeared in Linux-PAM 1.4; the headers carry no usable
// version, so the build says (Meson checks), and Linux-PAM is assumed recent.
#ifndef HANDOFF_PAM_HAS_START_CONFDIR
#if defined(__LINUX_PAM__)
#define HANDOFF_PAM_HAS_START_CONFDIR 1
#else
#define HANDOFF_PAM_HAS_START_CONFDIR 0
#endif
#endif

// Where the adapter's code goes, chosen by measurement (bench/README.md):
// its steps are inlined into the one C function libpam calls, except the
// per-message loop, which gets a frame (and the registers) of its own, and
// the rare NULL-resp path, which stays out of the way. Unoptimised builds
// (debugging, coverage) keep every step a function of its own.
#if defined(__GNUC__) && defined(__OPTIMIZE__)
#define HANDOFF_PAM_ALWAYS_INLINE inline __attribute__((always_inline))
#define HANDOFF_PAM_NOINLINE __attribute__((noinline))
#define HANDOFF_PAM_COLD __attribute__((noinline, cold))
#elif defined(__GNUC__)
#define HANDOFF_PAM_ALWAYS_INLINE inline
#define HANDOFF_PAM_NOINLINE __attribute__((noinline))
#define HANDOFF_PAM_COLD __attribute__((noinline, cold))
#else
#define HANDOFF_PAM_ALWAYS_INLINE inline
#define HANDOFF_PAM_NOINLINE
#define HANDOFF_PAM_COLD
#endif

namespace handoff::pam {

// ===========================================================================
// The conversation adapter
// ===========================================================================

namespace detail {
// Every byte of a slot zero, padding included (fresh malloc memory may hold
// anything, and nothing of it should travel on).
inline void clear(::pam_response& slot) noexcept {
    std::memset(static_cast<void*>(&slot), 0, sizeof slot);
}

// Where replies go when resp is NULL (info and error messages only): nothing
// is handed over, and whatever answers the handler gave are wiped and freed
// with the scratch array.
class scratch_responses {
public:
    explicit scratch_responses(std::size_t n) noexcept : n_(n) {}
    scratch_responses(const scratch_responses&) = delete;
    scratch_responses& operator=(const scratch_responses&) = delete;
    ~scratch_responses() {
        for (std::size_t i = 0; i < n_; ++i) owns_response_text::release_element<libc>(slots_[i]);
    }
    ::pam_response* data() noexcept { return slots_; }

private:
    ::pam_response slots_[PAM_MAX_NUM_MSG] = {};
    std::size_t n_;
};

template <class H, class = void>
struct is_batch_handler : std::false_type {};
template <class H>
struct is_batch_handler<H,
                        std::void_t<decltype(std::declval<H&>()(
                            std::declval<const message_batch&>(), std::declval<reply_batch&>()))>>
    : std::true_type {};

// Zeroes the slots from `next` to `end` when it goes: the slots a
// per-message loop had not reached when it stopped (or the handler threw).
struct cleared_on_exit {
    ::pam_response* next;
    ::pam_response* const end;
    cleared_on_exit(::pam_response* first, ::pam_response* last) noexcept
        : next(first), end(last) {}
    cleared_on_exit(const cleared_on_exit&) = delete;
    cleared_on_exit& operator=(const cleared_on_exit&) = delete;
    ~cleared_on_exit() {
        for (::pam_response* p = next; p != end; ++p) clear(*p);
    }
};
}  // namespace detail

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
    // NOLINTBEGIN(cppcoreguidelines-non-private-member-variables-in-classes): converse()'s state
    failure last_failure_ = failure::none;
    std::exception_ptr exception_;
    bool in_handler_ = false;
    // NOLINTEND(cppcoreguidelines-non-private-member-variables-in-classes)

    // The pam_conv(3) contract, for either handler form (see conversation):
    // check everything, allocate, ask the handler, hand the array over; all
    // or nothing.
    template <class Handler>
    HANDOFF_PAM_ALWAYS_INLINE int converse(int num_msg, const ::pam_message** msg,
                                           ::pam_response** resp,
                                           Handler&& handler) HANDOFF_PAM_CANCELLABLE {
        if (int rc = check_call(num_msg, msg, resp); rc != PAM_SUCCESS) return rc;
        const std::size_t n = static_cast<std::size_t>(num_msg);
        if (resp == nullptr) return converse_unanswered(msg, n, handler);
        // malloc, not calloc: glibc's calloc bypasses the per-thread cache and
        // costs about 90 instructions more (bench/README.md). A batch handler
        // may fill the slots in any order, so they are zeroed first (the
        // empty asm keeps GCC from folding malloc + memset back into calloc);
        // ask_each fills every slot in order instead.
        result<response_array> responses = response_array::try_uninitialized(n);
        if (!responses) return finish(failure::out_of_memory);
        ::pam_response* slots = responses->data();
        if constexpr (detail::is_batch_handler<std::remove_reference_t<Handler>>::value) {
            std::size_t bytes = n * sizeof(::pam_response);
#if defined(__GNUC__)
            __asm__("" : "+r"(slots), "+r"(bytes));
#endif
            std::memset(static_cast<void*>(slots), 0, bytes);
        }
        failure why = ask(msg, slots, n, handler);
        // On failure `responses` wipes and frees every answer made so far.
        if (why != failure::none) return finish(why);
        *resp = std::move(*responses).release();
        return PAM_SUCCESS;
    }

private:
    // Everything libpam or a module passes is checked before anything is
    // allocated: the count, the array, every entry, every text, every style,
    // and with a NULL resp that no message needs an answer.
    HANDOFF_PAM_ALWAYS_INLINE int check_call(int num_msg, const ::pam_message** msg,
                                             ::pam_response** resp) noexcept {
        // A call from inside the handler is refused, and the outcome of the
        // call in progress is left to that call.
        if (in_handler_) return PAM_CONV_ERR;
        last_failure_ = failure::none;
        if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg == nullptr) {
            return finish(failure::bad_message);
        }
        const std::size_t n = static_cast<std::size_t>(num_msg);
        for (std::size_t i = 0; i < n; ++i) {
            const ::pam_message* m = msg[i];
            if (m == nullptr || m->msg == nullptr || !detail::known_style(m->msg_style)) {
                return finish(failure::bad_message);
            }
        }
        // With nowhere to put replies, only messages that need none can be shown.
        if (resp == nullptr) {
            for (std::size_t i = 0; i < n; ++i) {
                if (is_prompt_style(static_cast<style>(msg[i]->msg_style))) {
                    return finish(failure::bad_message);
                }
            }
        }
        return PAM_SUCCESS;
    }

    // With a NULL resp (info and error messages only, checked) nothing is
    // handed over; answers go to a scratch array that wipes and frees them.
    template <class Handler>
    HANDOFF_PAM_COLD int converse_unanswered(const ::pam_message** msg, std::size_t n,
                                             Handler& handler) HANDOFF_PAM_CANCELLABLE {
        detail::scratch_responses scratch(n);
        return finish(ask(msg, scratch.data(), n, handler));
    }

    // Runs the handler with the reentry guard up; its exception is kept. A
    // thread's cancellation (pam_types.hpp) passes, the guard lowered: the
    // answers made so far are wiped and freed by the owners it unwinds.
    template <class Handler>
    HANDOFF_PAM_FORCED_UNWIND_HANDLER HANDOFF_PAM_ALWAYS_INLINE failure
    ask(const ::pam_message** msg, ::pam_response* slots, std::size_t n,
        Handler& handler) HANDOFF_PAM_CANCELLABLE {
        failure why = failure::none;
        in_handler_ = true;
#if HANDOFF_HAS_EXCEPTIONS
        try {
#endif
            if constexpr (detail::is_batch_handler<Handler>::value) {
                message_batch batch(msg, n);
                reply_batch out(slots, n);
                handler(batch, out);
            } else {
                why = ask_each(msg, slots, n, handler);
            }
#if HANDOFF_HAS_EXCEPTIONS
#if HANDOFF_PAM_FORCED_UNWIND
        } catch (abi::__forced_unwind&) {
            in_handler_ = false;
            throw;
#endif
        } catch (const std::bad_alloc&) {
            why = caught(failure::out_of_memory);
        } catch (...) {
            why = caught(failure::handler_threw);
        }
#endif
        in_handler_ = false;
        if constexpr (detail::is_batch_handler<Handler>::value) {
            if (why == failure::none) why = check_batch(msg, slots, n);
        }
        return why;
    }

    // Asks a per-message handler, message by message, until a reply fails:
    // the handler is not asked again after that (a user who pressed Ctrl-C at
    // the first of two prompts is not shown the second). Each answer goes
    // into its slot as soon as it is made. Out of line: the loop then has
    // the registers to itself.
    //
    // Safety: slots may hold garbage (fresh malloc); every slot is written
    // before anything can free the array: in order as the handler answers,
    // and on an early return or an exception from the first unwritten slot
    // to the end.
    template <class Handler>
    HANDOFF_PAM_NOINLINE static failure ask_each(const ::pam_message** msg, ::pam_response* slots,
                                                 std::size_t n, Handler& handler) {
        detail::cleared_on_exit rest(slots, slots + n);
        for (; rest.next != rest.end; ++rest.next, ++msg) {
            const message m = message::from_validated(*msg);
            reply r = handler(m);
            rest.next->resp_retcode = 0;
            if (r.has_answer()) {
                rest.next->resp = std::move(r).release();
                continue;
            }
            rest.next->resp = nullptr;
            if (r.error() != failure::none) return r.error();
            if (m.is_prompt()) return failure::unanswered_prompt;
        }
        return failure::none;
    }

    // After a batch handler: the first failed slot decides. A slot holding
    // an answer has no failure (reply_batch::slot keeps one or the other), so
    // the common case is one test per slot.
    static failure check_batch(const ::pam_message** msg, const ::pam_response* slots,
                               std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            if (slots[i].resp != nullptr) continue;
            if (slots[i].resp_retcode != 0) return static_cast<failure>(slots[i].resp_retcode);
            if (message::from_validated(msg[i]).is_prompt()) return failure::unanswered_prompt;
        }
        return failure::none;
    }

#if HANDOFF_HAS_EXCEPTIONS
    // In a catch block: keeps the handler's exception for the caller.
    failure caught(failure why) noexcept {
        exception_ = std::current_exception();
        return why;
    }
#endif

    // The code for libpam: PAM_SUCCESS, PAM_BUF_ERR for a failed allocation,
    // PAM_CONV_ERR for every other failure.
    int finish(failure why) noexcept {
        last_failure_ = why;
        if (why == failure::none) return PAM_SUCCESS;
        return why == failure::out_of_memory ? PAM_BUF_ERR : PAM_CONV_ERR;
    }
};

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

    // The function libpam calls. Throws nothing; only a thread's cancellation
    // unwinds through it (pam_types.hpp).
    static int c_function(int num_msg, const ::pam_message** msg, ::pam_response** resp,
                          void* appdata_ptr) HANDOFF_PAM_CANCELLABLE {
        if (appdata_ptr == nullptr) return PAM_CONV_ERR;
        auto* self = static_cast<conversation*>(appdata_ptr);
        return self->converse(num_msg, msg, resp, self->handler_);
    }

private:
    Handler handler_;
};

// ===========================================================================
// Transaction
// ===========================================================================

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
    // The conversation's shared state; NULL when the transaction has none (it
    // was moved from, or its conversation could not be allocated: PAM_BUF_ERR).
    conversation_state* conversation() noexcept { return conv_.get(); }

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
        // libpam would read "root\0x" as "root": refused, as set_item refuses it.
        constexpr char nul = '\0';
        if (service.find(nul) != std::string::npos || user.find(nul) != std::string::npos ||
            options.confdir.find(nul) != std::string::npos) {
            last_ = PAM_BAD_ITEM;
            start_ = status(PAM_BAD_ITEM, ::pam_strerror(nullptr, PAM_BAD_ITEM));
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
    scripted(const scripted&) = delete;
    scripted& operator=(const scripted&) = delete;
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

}  // namespace handoff::pam

#endif  // HANDOFF_PAM_HPP
