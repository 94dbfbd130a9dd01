// libFuzzer target: arbitrary message arrays and handler behaviour into the
// conversation adapter, with either handler form. A model of pam_conv(3) and
// of the adapter's documented rules predicts every call: the return code, the
// failure, how many times a per-message handler is asked, and the exact
// answers libpam receives. Any difference traps; ASan/UBSan/LeakSanitizer
// catch the rest.
//
// Input layout (every byte optional; missing bytes read as 0):
//   [count] [flags] then per message: [style] [kind] [length] [text...]
//   per-message form (flags bit 2 clear): per handler call [choice] [length] [bytes...]
//   batch form (flags bit 2 set): [operations] then per operation
//     [slot] [choice] [length] [bytes...]
#include <handoff/pam.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace pam = handoff::pam;

class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::string bytes(std::size_t n) {
        std::string out;
        while (n-- > 0 && pos_ < size_) out.push_back(static_cast<char>(data_[pos_++]));
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

[[noreturn]] void breach() { __builtin_trap(); }

// One reply as the handler makes it, and what the model expects of it.
struct made {
    pam::reply reply;
    std::optional<std::string> answer;  // the text libpam should receive
    pam::failure fails = pam::failure::none;
    bool throws = false;
    bool throws_bad_alloc = false;
};

made make_reply(reader& in) {
    std::uint8_t choice = in.byte();
    made m;
    switch (choice % 8) {
    case 0: m.reply = pam::reply::none(); break;
    case 1:
        m.reply = pam::reply::refuse(pam::failure::cancelled);
        m.fails = pam::failure::cancelled;
        break;
    case 2: m.throws = true; break;
    case 3: m.throws_bad_alloc = true; break;
    case 4: {  // a std::string, possibly too long
        std::string text(static_cast<std::size_t>(in.byte()) * 3, 'x');
        std::string expected = text;
        m.reply = pam::reply::answer(std::move(text));
        if (expected.size() >= PAM_MAX_RESP_SIZE) {
            m.fails = pam::failure::answer_too_long;
        } else {
            m.answer = expected;
        }
        break;
    }
    case 5:    // a view, possibly holding NULs
    case 7: {  // a secret_string, the same
        std::string text = in.bytes(in.byte());
        if (choice % 8 == 5) {
            m.reply = pam::reply::answer(std::string_view(text));
        } else {
            m.reply = pam::reply::answer(*handoff::secret_string::try_from(text));
        }
        if (text.find('\0') != std::string::npos) {
            m.fails = pam::failure::answer_has_nul;
        } else {
            m.answer = text;
        }
        break;
    }
    case 6: {  // a C string: it ends at the first NUL
        std::string text = in.bytes(static_cast<std::size_t>(in.byte()) * 3);
        m.reply = pam::reply::answer(text.c_str());
        std::string expected(text.c_str());
        if (expected.size() >= PAM_MAX_RESP_SIZE) {
            m.fails = pam::failure::answer_too_long;
        } else {
            m.answer = expected;
        }
        break;
    }
    }
    return m;
}

// What the model expects of one call.
struct expectation {
    pam::failure why = pam::failure::none;
    std::vector<std::optional<std::string>> answers;  // per message, on success
};

int code_for(pam::failure f) {
    if (f == pam::failure::none) return PAM_SUCCESS;
    return f == pam::failure::out_of_memory ? PAM_BUF_ERR : PAM_CONV_ERR;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    reader in(data, size);
    // -2 .. 37: around both ends of 1..PAM_MAX_NUM_MSG.
    int count = static_cast<int>(in.byte() % 40) - 2;
    std::uint8_t flags = in.byte();
    const bool null_msg = (flags & 1) != 0;
    const bool null_resp = (flags & 2) != 0;
    const bool batch_form = (flags & 4) != 0;

    std::size_t stored = count > 0 ? static_cast<std::size_t>(count) : 0;
    std::vector<std::string> texts(stored);
    std::vector<::pam_message> messages(stored);
    std::vector<const ::pam_message*> pointers(stored);
    bool valid = count > 0 && count <= PAM_MAX_NUM_MSG && !null_msg;
    bool any_prompt = false;
    for (std::size_t i = 0; i < stored; ++i) {
        int style = static_cast<int>(in.byte() % 10) - 1;  // -1 .. 8
        std::uint8_t kind = in.byte();
        texts[i] = in.bytes(in.byte());
        messages[i].msg_style = style;
        messages[i].msg = (kind % 16) == 0 ? nullptr : texts[i].c_str();
        pointers[i] = (kind % 16) == 1 ? nullptr : &messages[i];
        bool known = style >= 1 && style <= 7 && style != 6;
        if (pointers[i] == nullptr || messages[i].msg == nullptr || !known) valid = false;
        if (known && pam::is_prompt_style(static_cast<pam::style>(style))) any_prompt = true;
    }
    if (null_resp && any_prompt) valid = false;
    auto is_prompt = [&](std::size_t i) {
        return pam::is_prompt_style(static_cast<pam::style>(messages[i].msg_style));
    };

    expectation want;
    want.answers.resize(stored);
    if (!valid) want.why = pam::failure::bad_message;

    // Both handlers record what they made; the model reads the records.
    std::vector<made> record;
    int asked = 0;
    auto per_message = [&](const pam::message& m) -> pam::reply {
        std::size_t i = static_cast<std::size_t>(asked++);
        if (!valid || i >= stored) breach();  // never asked outside a valid call
        if (m.kind() != static_cast<pam::style>(messages[i].msg_style)) breach();
        if (m.is_prompt() != is_prompt(i)) breach();
        record.push_back(make_reply(in));
        made& r = record.back();
        if (r.throws) throw std::runtime_error("handler failure");
        if (r.throws_bad_alloc) throw std::bad_alloc();
        return std::move(r.reply);
    };
    struct slot_model {
        std::optional<std::string> answer;
        pam::failure fails = pam::failure::none;
    };
    std::vector<slot_model> slots(stored);
    auto batch = [&](const pam::message_batch& b, pam::reply_batch& out) {
        ++asked;
        if (!valid || b.size() != stored || out.size() != stored) breach();
        std::size_t ops = in.byte() % 40;
        for (std::size_t k = 0; k < ops; ++k) {
            std::size_t i = in.byte() % stored;
            record.push_back(make_reply(in));
            made& r = record.back();
            if (r.throws) throw std::runtime_error("handler failure");
            if (r.throws_bad_alloc) throw std::bad_alloc();
            out[i] = std::move(r.reply);  // a reply it replaces is wiped and freed
            slots[i] = slot_model{r.answer, r.fails};
            if (out[i].has_answer() != r.answer.has_value()) breach();
            if (out[i].error() != r.fails) breach();
            if (r.answer && out[i].text() != *r.answer) breach();
        }
    };

    ::pam_response stale{};
    ::pam_response* const sentinel = &stale;  // must come back untouched on failure
    ::pam_response* resp = sentinel;
    pam::conversation per(per_message);
    pam::conversation whole(batch);
    pam::conversation_state& conv = batch_form ? static_cast<pam::conversation_state&>(whole)
                                               : static_cast<pam::conversation_state&>(per);
    ::pam_conv c = conv.c_conv();
    int rc = c.conv(count, null_msg ? nullptr : pointers.data(), null_resp ? nullptr : &resp,
                    c.appdata_ptr);

    // The model's verdict, from the records.
    bool threw = !record.empty() && (record.back().throws || record.back().throws_bad_alloc);
    if (threw)
        want.why = record.back().throws ? pam::failure::handler_threw : pam::failure::out_of_memory;
    if (!valid) {
        if (asked != 0) breach();
    } else if (!batch_form) {
        // Asked message by message until the first reply that fails.
        std::size_t stop = stored;
        for (std::size_t i = 0; i < record.size() && want.why == pam::failure::none; ++i) {
            if (record[i].fails != pam::failure::none) {
                want.why = record[i].fails;
            } else if (!record[i].answer && is_prompt(i)) {
                want.why = pam::failure::unanswered_prompt;
            }
            want.answers[i] = record[i].answer;
            if (want.why != pam::failure::none) stop = i + 1;
        }
        if (threw) stop = record.size();
        if (static_cast<std::size_t>(asked) != stop) breach();  // never asked again
    } else {
        if (asked != 1) breach();
        for (std::size_t i = 0; i < stored && want.why == pam::failure::none; ++i) {
            if (slots[i].fails != pam::failure::none) {
                want.why = slots[i].fails;
            } else if (!slots[i].answer && is_prompt(i)) {
                want.why = pam::failure::unanswered_prompt;
            }
            want.answers[i] = slots[i].answer;
        }
    }
    if (conv.last_failure() != want.why) breach();
    if (rc != code_for(want.why)) breach();
    if (conv.has_exception() != threw) breach();
    (void)conv.take_exception();

    if (rc != PAM_SUCCESS) {
        if (resp != sentinel) breach();  // *resp must not be written on failure
        return 0;
    }
    if (null_resp) {
        if (resp != sentinel) breach();
        return 0;
    }
    if (resp == sentinel || resp == nullptr) breach();
    for (std::size_t i = 0; i < stored; ++i) {
        if (resp[i].resp_retcode != 0) breach();
        if (resp[i].resp != nullptr && std::strlen(resp[i].resp) >= PAM_MAX_RESP_SIZE) breach();
        if (is_prompt(i) && resp[i].resp == nullptr) breach();
        const std::optional<std::string>& expected = want.answers[i];
        if (expected.has_value() != (resp[i].resp != nullptr)) breach();
        if (expected && *expected != resp[i].resp) breach();
        std::free(resp[i].resp);  // as libpam does
    }
    std::free(resp);
    return 0;
}
