// The conversation functions compared by the benchmarks and the instruction
// count script, all answering the same prompts from the same answers:
//
//   c_minimal   hand-written C doing the least possible work: no validation,
//               lengths known, no NUL check, no wiping
//   c_strdup    the common C variant: strdup per answer
//   c_correct   the correct C conversation shown in README: validation before
//               allocation, length limit, wipe and free on every failure,
//               *resp untouched on error, PAM_BUF_ERR against PAM_CONV_ERR
//   handoff_*   the adapter, with each handler form
//
// Every variant gets its answers the same way (ask(), a C string) and shows
// info messages the same way (show(), a counter).
#ifndef HANDOFF_BENCH_CONVERSATIONS_HPP
#define HANDOFF_BENCH_CONVERSATIONS_HPP

#include <handoff/pam.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <string.h>  // explicit_bzero

namespace bench {

// What every conversation answers: answer i for message i (unused for info).
struct answers {
    std::vector<std::string> text;
    std::size_t next = 0;     // the message being answered (reset before each call)
    unsigned long shown = 0;  // info and error messages shown
};

// The application's side of every conversation: where the answer to the
// next prompt comes from (as a C string, or for c_minimal with its length),
// and where an info message goes.
inline const std::string& next_answer(answers* a) { return a->text[a->next++]; }
inline const char* ask(answers* a) { return next_answer(a).c_str(); }
inline void show(answers* a, const char*) {
    ++a->next;
    ++a->shown;
}

inline bool is_prompt(int style) {
    return style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON;
}

// Hand-written C, the minimum: one calloc, one malloc + memcpy per answer,
// lengths known. Nothing is validated; an allocation failure frees what was made.
extern "C" inline int c_minimal_conv(int n, const ::pam_message** msg, ::pam_response** resp,
                                     void* appdata) {
    if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == nullptr || resp == nullptr) return PAM_CONV_ERR;
    answers* a = static_cast<answers*>(appdata);
    ::pam_response* r =
        static_cast<::pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof *r));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        if (!is_prompt(msg[i]->msg_style)) {
            show(a, msg[i]->msg);
            continue;
        }
        const std::string& s = next_answer(a);
        char* copy = static_cast<char*>(std::malloc(s.size() + 1));
        if (copy == nullptr) {
            for (int j = 0; j < i; ++j) std::free(r[j].resp);
            std::free(r);
            return PAM_BUF_ERR;
        }
        std::memcpy(copy, s.data(), s.size() + 1);
        r[i].resp = copy;
    }
    *resp = r;
    return PAM_SUCCESS;
}

// The common C variant: strdup, which scans each answer for its length.
extern "C" inline int c_strdup_conv(int n, const ::pam_message** msg, ::pam_response** resp,
                                    void* appdata) {
    if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == nullptr || resp == nullptr) return PAM_CONV_ERR;
    answers* a = static_cast<answers*>(appdata);
    ::pam_response* r =
        static_cast<::pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof *r));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        if (!is_prompt(msg[i]->msg_style)) {
            show(a, msg[i]->msg);
            continue;
        }
        r[i].resp = ::strdup(ask(a));
        if (r[i].resp == nullptr) {
            for (int j = 0; j < i; ++j) std::free(r[j].resp);
            std::free(r);
            return PAM_BUF_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

// The correct C conversation, as README shows it (written in the C subset of
// C++ here only for the casts malloc needs), as tight as careful C gets: one
// scan of each answer (strlen, whose length is also the NUL check), the copy
// of that known length (NUL included) that GCC expands inline, and the
// response array from malloc with each slot written as the loop reaches it
// (glibc's calloc bypasses the per-thread cache: 144 instructions a call at
// 32 messages), so a failure frees only the slots written so far.
extern "C" inline int c_correct_conv(int n, const ::pam_message** msg, ::pam_response** resp,
                                     void* appdata) {
    if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == nullptr || resp == nullptr) return PAM_CONV_ERR;
    for (int i = 0; i < n; i++) {  // validate everything before allocating anything
        if (msg[i] == nullptr || msg[i]->msg == nullptr) return PAM_CONV_ERR;
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
        case PAM_ERROR_MSG:
        case PAM_TEXT_INFO: break;
        default: return PAM_CONV_ERR;
        }
    }
    answers* a = static_cast<answers*>(appdata);
    // n <= PAM_MAX_NUM_MSG: the product cannot overflow.
    ::pam_response* r =
        static_cast<::pam_response*>(std::malloc(static_cast<std::size_t>(n) * sizeof *r));
    if (r == nullptr) return PAM_BUF_ERR;
    int rc = PAM_CONV_ERR;
    int i = 0;
    for (; i < n; i++) {
        r[i].resp = nullptr;
        r[i].resp_retcode = 0;
        if (msg[i]->msg_style == PAM_ERROR_MSG || msg[i]->msg_style == PAM_TEXT_INFO) {
            show(a, msg[i]->msg);
            continue;
        }
        const char* answer = ask(a);
        if (answer == nullptr) goto fail;
        {
            std::size_t len = std::strlen(answer);
            if (len >= PAM_MAX_RESP_SIZE) goto fail;
            r[i].resp = static_cast<char*>(std::malloc(len + 1));
            if (r[i].resp == nullptr) {
                rc = PAM_BUF_ERR;
                goto fail;
            }
            std::memcpy(r[i].resp, answer, len + 1);
        }
    }
    *resp = r;
    return PAM_SUCCESS;
fail:  // slots 0 to i are written; wipe and free their answers
    for (int j = 0; j <= i; j++) {
        if (r[j].resp != nullptr) {
            ::explicit_bzero(r[j].resp, std::strlen(r[j].resp));
            std::free(r[j].resp);
        }
    }
    std::free(r);
    return rc;
}

// handoff, per-message handler.
struct per_message {
    answers* a;
    handoff::pam::reply operator()(const handoff::pam::message& m) {
        if (!m.is_prompt()) {
            show(a, m.text().data());
            return handoff::pam::reply::none();
        }
        return handoff::pam::reply::answer(ask(a));
    }
};

// handoff, batch handler: all messages of the call at once.
struct batch {
    answers* a;
    void operator()(const handoff::pam::message_batch& messages,
                    handoff::pam::reply_batch& replies) {
        for (std::size_t i = 0; i < messages.size(); ++i) {
            handoff::pam::message m = messages[i];
            if (!m.is_prompt()) {
                show(a, m.text().data());
                continue;
            }
            replies[i] = handoff::pam::reply::answer(ask(a));
        }
    }
};

// The messages of one call, Linux-PAM layout: echo-off prompts, or with
// half_info every second message an info message.
class prompts {
public:
    explicit prompts(int n, bool half_info = false) : storage_(static_cast<std::size_t>(n)) {
        for (std::size_t i = 0; i < storage_.size(); ++i) {
            bool info = half_info && i % 2 == 1;
            storage_[i].msg_style = info ? PAM_TEXT_INFO : PAM_PROMPT_ECHO_OFF;
            storage_[i].msg = info ? "Your password expires in 3 days." : "Password: ";
            pointers_.push_back(&storage_[i]);
        }
    }
    const ::pam_message** get() { return pointers_.data(); }
    int count() const { return static_cast<int>(storage_.size()); }
    int prompt_count() const {
        int k = 0;
        for (const auto& m : storage_) k += is_prompt(m.msg_style) ? 1 : 0;
        return k;
    }

private:
    std::vector<::pam_message> storage_;
    std::vector<const ::pam_message*> pointers_;
};

inline answers make_answers(int n, std::size_t length) {
    answers a;
    for (int i = 0; i < n; ++i) a.text.emplace_back(length, static_cast<char>('a' + i % 26));
    return a;
}

// The shape of one conversation call: NUM_MSGxLENGTH, "h" when every second
// message is an info message (32x64h).
struct shape {
    int n = 1;
    std::size_t length = 8;
    bool half_info = false;

    static bool parse(const std::string& text, shape& out) {
        std::size_t x = text.find('x');
        if (x == std::string::npos) return false;
        out.n = std::atoi(text.c_str());
        out.length = static_cast<std::size_t>(std::atol(text.c_str() + x + 1));
        out.half_info = !text.empty() && text.back() == 'h';
        return out.n > 0 && out.n <= PAM_MAX_NUM_MSG;
    }
    std::string name() const {
        return std::to_string(n) + "x" + std::to_string(length) + (half_info ? "h" : "");
    }
};

// What libpam does with the reply (Linux-PAM's _pam_drop_reply): overwrite
// each answer up to its NUL, free it, then free the array.
inline void drop_reply(::pam_response* r, int n) {
    for (int i = 0; i < n; ++i) {
        if (r[i].resp != nullptr) {
            for (volatile char* p = r[i].resp; *p != '\0'; ++p) *p = '\0';
            std::free(r[i].resp);
        }
    }
    std::free(r);
}

// Every variant set up for one shape: the same messages and answers, each
// conversation reached through a struct pam_conv as libpam reaches it.
class lineup {
public:
    struct entry {
        const char* name;
        ::pam_conv conv;
        const char* function;  // what callgrind's --toggle-collect names
    };

    explicit lineup(const shape& s)
        : shape_(s),
          messages_(s.n, s.half_info),
          answers_(make_answers(s.n, s.length)),
          per_(per_message{&answers_}),
          batch_(batch{&answers_}) {
        entries_ = {
            {"c_minimal", {&c_minimal_conv, &answers_}, "c_minimal_conv"},
            {"c_strdup", {&c_strdup_conv, &answers_}, "c_strdup_conv"},
            {"c_correct", {&c_correct_conv, &answers_}, "c_correct_conv"},
            {"handoff_per_message", per_.c_conv(),
             "handoff::pam::conversation<bench::per_message>::c_function"},
            {"handoff_batch", batch_.c_conv(),
             "handoff::pam::conversation<bench::batch>::c_function"},
        };
    }
    lineup(const lineup&) = delete;
    lineup& operator=(const lineup&) = delete;

    const std::vector<entry>& entries() const { return entries_; }
    const entry* find(const std::string& name) const {
        for (const entry& e : entries_) {
            if (name == e.name) return &e;
        }
        return nullptr;
    }
    int prompt_count() const { return messages_.prompt_count(); }

    // One round trip: the conversation, then the reply freed as libpam does.
    bool call(const entry& e) {
        answers_.next = 0;
        ::pam_response* resp = nullptr;
        int rc = e.conv.conv(shape_.n, messages_.get(), &resp, e.conv.appdata_ptr);
        if (rc != PAM_SUCCESS) return false;
        drop_reply(resp, shape_.n);
        return true;
    }

private:
    shape shape_;
    prompts messages_;
    answers answers_;
    handoff::pam::conversation<per_message> per_;
    handoff::pam::conversation<batch> batch_;
    std::vector<entry> entries_;
};

}  // namespace bench

#endif
