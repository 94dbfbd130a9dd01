// greetd's IPC protocol (greetd-ipc(7)) for authd: requests parsed and checked,
// responses built, frames of a native-endian u32 length and UTF-8 JSON.
// JSON goes through nlohmann::json (Debian's nlohmann-json3-dev); nothing
// here is parsed or printed by hand.
// SPDX-License-Identifier: MIT
#ifndef AUTHD_GREETD_IPC_HPP
#define AUTHD_GREETD_IPC_HPP

#include <handoff/pam_types.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greetd_ipc {

// The largest payload accepted. greetd has no limit; a request holding a
// username, an answer (PAM takes < 512 bytes) or a command line fits easily.
constexpr std::uint32_t max_payload = 64 * 1024;

enum class request_type {
    create_session,
    post_auth_message_response,
    start_session,
    cancel_session
};

struct request {
    request_type type = request_type::cancel_session;
    std::string username;                            // create_session
    std::optional<handoff::secret_string> response;  // post_auth_message_response
    std::vector<std::string> cmd;                    // start_session
    std::vector<std::string> env;                    // start_session (optional)
};

// One parsed payload: a request, or the description of what is wrong with it.
struct parsed {
    std::optional<request> value;
    std::string error;
};

namespace detail {
inline bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

// An array of strings, or an error naming the field.
inline bool string_array(const nlohmann::json& j, std::string_view field, bool required,
                         std::vector<std::string>& out, std::string& error) {
    auto it = j.find(field);
    if (it == j.end() || (!required && it->is_null())) {
        if (required) error = "start_session needs \"" + std::string(field) + "\"";
        return !required;
    }
    if (!it->is_array()) {
        error = "\"" + std::string(field) + "\" must be an array of strings";
        return false;
    }
    for (const nlohmann::json& e : *it) {
        if (!e.is_string()) {
            error = "\"" + std::string(field) + "\" must be an array of strings";
            return false;
        }
        out.push_back(e.get<std::string>());
    }
    return true;
}
}  // namespace detail

// Parses one payload. Invalid UTF-8 and invalid JSON are refused by the
// parser; then the shape is checked field by field. The answer of
// post_auth_message_response is moved into a secret_string and the parsed
// copy is wiped in place.
inline parsed parse_request(std::string_view payload) {
    parsed out;
    nlohmann::json j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr,
                                             /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        out.error = payload.empty() ? "empty frame" : "invalid JSON or UTF-8";
        return out;
    }
    if (!j.is_object()) {
        out.error = "a request must be a JSON object";
        return out;
    }
    auto type = j.find("type");
    if (type == j.end() || !type->is_string()) {
        out.error = "a request needs a string \"type\"";
        return out;
    }
    const std::string& t = type->get_ref<const std::string&>();
    request r;
    if (t == "create_session") {
        r.type = request_type::create_session;
        auto user = j.find("username");
        if (user == j.end() || !user->is_string()) {
            out.error = "create_session needs a string \"username\"";
            return out;
        }
        r.username = user->get<std::string>();
        if (detail::has_nul(r.username)) {
            out.error = "\"username\" holds a NUL character";
            return out;
        }
    } else if (t == "post_auth_message_response") {
        r.type = request_type::post_auth_message_response;
        auto resp = j.find("response");
        if (resp != j.end() && !resp->is_null()) {
            if (!resp->is_string()) {
                out.error = "\"response\" must be a string or null";
                return out;
            }
            std::string& text = resp->get_ref<std::string&>();
            bool nul = detail::has_nul(text);
            handoff::result<handoff::secret_string> secret = handoff::secret_string::try_from(text);
            handoff::secure_clear(text);
            if (nul) {
                out.error = "\"response\" holds a NUL character";
                return out;
            }
            if (!secret) {
                out.error = "out of memory";
                return out;
            }
            r.response = std::move(*secret);
        }
    } else if (t == "start_session") {
        r.type = request_type::start_session;
        if (!detail::string_array(j, "cmd", true, r.cmd, out.error) ||
            !detail::string_array(j, "env", false, r.env, out.error)) {
            return out;
        }
    } else if (t == "cancel_session") {
        r.type = request_type::cancel_session;
    } else {
        out.error = "unknown request type \"" + t + "\"";
        return out;
    }
    out.value = std::move(r);
    return out;
}

// Responses. Text from PAM modules is not always UTF-8: invalid bytes are
// replaced (U+FFFD) rather than refused, so the greeter still sees the message.
inline std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string success() { return dump({{"type", "success"}}); }

inline std::string error(bool auth_error, std::string_view description) {
    return dump({{"type", "error"},
                 {"error_type", auth_error ? "auth_error" : "error"},
                 {"description", std::string(description)}});
}

// greetd's four kinds: a radio prompt is asked like a visible one.
inline const char* auth_message_type(handoff::pam::style s) noexcept {
    switch (s) {
    case handoff::pam::style::prompt_echo_off: return "secret";
    case handoff::pam::style::prompt_echo_on:
    case handoff::pam::style::radio: return "visible";
    case handoff::pam::style::error_msg: return "error";
    case handoff::pam::style::text_info:
    case handoff::pam::style::binary_prompt: break;
    }
    return "info";
}

inline std::string auth_message(handoff::pam::style s, std::string_view text) {
    return dump({{"type", "auth_message"},
                 {"auth_message_type", auth_message_type(s)},
                 {"auth_message", std::string(text)}});
}

// A frame: the payload's length as a native-endian u32, then the payload.
inline void append_frame(std::string& out, const std::string& payload) {
    const auto length = static_cast<std::uint32_t>(payload.size());
    char prefix[sizeof length];
    std::memcpy(prefix, &length, sizeof length);
    out.append(prefix, sizeof prefix);
    out.append(payload);
}

}  // namespace greetd_ipc

#endif  // AUTHD_GREETD_IPC_HPP
