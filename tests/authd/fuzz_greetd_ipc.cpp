// libFuzzer target: arbitrary payloads into authd's greetd-IPC request parser,
// and arbitrary PAM texts into its response builder. Each input is checked
// against a model of greetd-ipc(7)'s requests written here from the manual
// (not from the parser): the parser accepts exactly the payloads the model
// accepts, with the same fields, and refuses the others with a description.
// Every response it builds is a valid JSON object that parses back. Traps on
// any breach; ASan/UBSan/LeakSanitizer catch the rest.
#include "../../examples/authd/greetd_ipc.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void breach() { __builtin_trap(); }

void expect(bool condition) {
    if (!condition) breach();
}

using json = nlohmann::json;

bool holds_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

// An array of strings (the model's reading of cmd and env).
bool strings(const json& j, std::vector<std::string>& out) {
    if (!j.is_array()) return false;
    for (const json& e : j) {
        if (!e.is_string()) return false;
        out.push_back(e.get<std::string>());
    }
    return true;
}

// The model: what greetd-ipc(7) and authd's --help say a request is.
// Returns the request it denotes, or false for a payload to refuse.
bool model(std::string_view payload, greetd_ipc::request& want) {
    json j = json::parse(payload.begin(), payload.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
        return false;
    }
    const std::string type = j["type"].get<std::string>();
    if (type == "create_session") {
        want.type = greetd_ipc::request_type::create_session;
        if (!j.contains("username") || !j["username"].is_string()) return false;
        want.username = j["username"].get<std::string>();
        return !holds_nul(want.username);
    }
    if (type == "post_auth_message_response") {
        want.type = greetd_ipc::request_type::post_auth_message_response;
        if (!j.contains("response") || j["response"].is_null()) return true;
        if (!j["response"].is_string()) return false;
        const std::string text = j["response"].get<std::string>();
        if (holds_nul(text)) return false;
        want.response = handoff::secret_string::from(text);
        return true;
    }
    if (type == "start_session") {
        want.type = greetd_ipc::request_type::start_session;
        if (!j.contains("cmd") || !strings(j["cmd"], want.cmd)) return false;
        return !j.contains("env") || j["env"].is_null() || strings(j["env"], want.env);
    }
    if (type == "cancel_session") {
        want.type = greetd_ipc::request_type::cancel_session;
        return true;
    }
    return false;
}

void check_request(std::string_view payload) {
    greetd_ipc::parsed got = greetd_ipc::parse_request(payload);
    greetd_ipc::request want;
    const bool ok = model(payload, want);
    // Exactly one of a request and a description.
    expect(got.value.has_value() == ok);
    expect(got.error.empty() == ok);
    if (!ok) return;
    const greetd_ipc::request& r = *got.value;
    expect(r.type == want.type);
    expect(r.username == want.username);
    expect(r.response.has_value() == want.response.has_value());
    if (r.response) expect(r.response->view() == want.response->view());
    expect(r.cmd == want.cmd);
    expect(r.env == want.env);
}

// Any text a module sends becomes a response the greeter can parse.
void check_response(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    const auto s = static_cast<handoff::pam::style>(data[0] % 8);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): libFuzzer's bytes as chars
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string out = greetd_ipc::auth_message(s, text);
    json j = json::parse(out, nullptr, false);
    expect(!j.is_discarded() && j.is_object());
    expect(j["type"] == "auth_message");
    expect(j["auth_message"].is_string());
    // Valid UTF-8 comes back unchanged (nlohmann refuses invalid UTF-8 when
    // parsing: a text that parses as a JSON string is valid UTF-8).
    json probe =
        json::parse(json(text).dump(-1, ' ', false, json::error_handler_t::ignore), nullptr, false);
    if (!probe.is_discarded() && probe.get<std::string>() == text) {
        expect(j["auth_message"].get<std::string>() == text);
    }
    const std::string e = greetd_ipc::error((data[0] & 1) != 0, text);
    json k = json::parse(e, nullptr, false);
    expect(!k.is_discarded() && k["type"] == "error" && k["description"].is_string());

    std::string frame;
    greetd_ipc::append_frame(frame, out);
    std::uint32_t length = 0;
    expect(frame.size() == sizeof length + out.size());
    std::memcpy(&length, frame.data(), sizeof length);
    expect(length == out.size());
    expect(frame.compare(sizeof length, std::string::npos, out) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): libFuzzer's bytes as chars
    check_request(std::string_view(reinterpret_cast<const char*>(data), size));
    check_response(data, size);
    return 0;
}
