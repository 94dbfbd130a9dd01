// The conversation functions compared by the benchmarks and the instruction
// count script: hand-written C (the minimum possible work, and the common
// strdup variant) and the handoff adapter with each handler style.
#ifndef HANDOFF_BENCH_CONVERSATIONS_HPP
#define HANDOFF_BENCH_CONVERSATIONS_HPP

#include <handoff/pam.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// What every conversation answers: one prepared answer per message.
struct answers {
    std::vector<std::string> text;  // answer i for message i
};

// Hand-written C, the minimum: one calloc, one malloc + memcpy per answer,
// lengths known. Error paths free what was made, as a correct C version must.
extern "C" inline int c_minimal_conv(int n, const ::pam_message** msg, ::pam_response** resp,
                                     void* appdata) {
    if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == nullptr || resp == nullptr) return PAM_CONV_ERR;
    const answers* a = static_cast<const answers*>(appdata);
    ::pam_response* r =
        static_cast<::pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof *r));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        const std::string& s = a->text[static_cast<std::size_t>(i)];
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

// The common C variant: strdup, which rescans each answer for its length.
extern "C" inline int c_strdup_conv(int n, const ::pam_message** msg, ::pam_response** resp,
                                    void* appdata) {
    if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == nullptr || resp == nullptr) return PAM_CONV_ERR;
    const answers* a = static_cast<const answers*>(appdata);
    ::pam_response* r =
        static_cast<::pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof *r));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        r[i].resp = ::strdup(a->text[static_cast<std::size_t>(i)].c_str());
        if (r[i].resp == nullptr) {
            for (int j = 0; j < i; ++j) std::free(r[j].resp);
            std::free(r);
            return PAM_BUF_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

// handoff, per-message handler returning a view (copied into C memory once).
struct per_message {
    const answers* a;
    std::size_t next = 0;
    handoff::pam::reply operator()(const handoff::pam::message&) {
        const std::string& s = a->text[next++];
        return handoff::pam::reply::answer(std::string_view(s));
    }
};

// handoff, batch handler: all messages of the call at once.
struct batch {
    const answers* a;
    void operator()(const handoff::pam::message_batch& messages,
                    handoff::pam::reply_batch& replies) {
        for (std::size_t i = 0; i < messages.size(); ++i) {
            replies[i] = handoff::pam::reply::answer(std::string_view(a->text[i]));
        }
    }
};

// The messages of one call: echo-off prompts, Linux-PAM layout.
class prompts {
public:
    explicit prompts(int n) : storage_(static_cast<std::size_t>(n)) {
        for (auto& m : storage_) {
            m.msg_style = PAM_PROMPT_ECHO_OFF;
            m.msg = "Password: ";
            pointers_.push_back(&m);
        }
    }
    const ::pam_message** get() { return pointers_.data(); }
    int count() const { return static_cast<int>(storage_.size()); }

private:
    std::vector<::pam_message> storage_;
    std::vector<const ::pam_message*> pointers_;
};

inline answers make_answers(int n, std::size_t length) {
    answers a;
    for (int i = 0; i < n; ++i) a.text.emplace_back(length, static_cast<char>('a' + i % 26));
    return a;
}

// What libpam does with the reply: free each answer, then the array.
inline void free_reply(::pam_response* r, int n) {
    for (int i = 0; i < n; ++i) std::free(r[i].resp);
    std::free(r);
}

}  // namespace bench

#endif
