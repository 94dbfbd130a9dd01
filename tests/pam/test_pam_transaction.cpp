// transaction against the real Linux-PAM, loaded with the test services
// through pam_wrapper (the Meson test sets LD_PRELOAD and the service dir).
#include <handoff/pam.hpp>

#include "../doctest.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pam = handoff::pam;

namespace {

std::string build_dir() {
    const char* d = std::getenv("HANDOFF_TEST_BUILDDIR");
    REQUIRE(d != nullptr);
    return d;
}

bool has_env(pam::transaction& tx, std::string_view entry) {
    for (std::string_view e : tx.getenvlist()) {
        if (e == entry) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("pam_wrapper is active for this test") {
    CHECK(std::getenv("PAM_WRAPPER_SERVICE_DIR") != nullptr);
    CHECK(std::getenv("LD_PRELOAD") != nullptr);
}

TEST_CASE("pam_matrix accepts the right password") {
    pam::transaction tx("matrix", "alice", pam::scripted({"secret"}));
    REQUIRE(tx.started());
    pam::status s = tx.authenticate();
    CHECK(s.ok());
    CHECK(s.code() == PAM_SUCCESS);
    CHECK(tx.acct_mgmt().ok());
}

TEST_CASE("pam_matrix refuses the wrong password with PAM_AUTH_ERR and its text") {
    pam::transaction tx("matrix", "alice", pam::scripted({"not-it"}));
    pam::status s = tx.authenticate();
    CHECK(s.code() == PAM_AUTH_ERR);
    CHECK(std::string(s.message()) == ::pam_strerror(tx.native_handle(), PAM_AUTH_ERR));
    CHECK(s.conversation_failure() == pam::failure::none);
}

TEST_CASE("pam_matrix refuses an unknown user") {
    pam::transaction tx("matrix", "nobody", pam::scripted({"secret"}));
    CHECK_FALSE(tx.authenticate().ok());
}

TEST_CASE("a conversation failure reaches the caller with its reason") {
    pam::transaction tx("matrix", "alice", pam::scripted({}));
    pam::status s = tx.authenticate();
    CHECK_FALSE(s.ok());
    CHECK(s.code() == PAM_AUTHINFO_UNAVAIL);
    CHECK(s.conversation_failure() == pam::failure::input_closed);
}

TEST_CASE("the answer really reaches the module stack as PAM_AUTHTOK") {
    pam::transaction tx("stress_items", "alice", pam::scripted({"typed-answer"}));
    REQUIRE(tx.authenticate().ok());
    CHECK(tx.getenv("PAM_AUTHTOK") == std::optional<std::string_view>("typed-answer"));
}

TEST_CASE("an echo-on prompt is answered too") {
    pam::transaction tx("matrix_echo", "alice", pam::scripted({"secret"}));
    CHECK(tx.authenticate().ok());
}

TEST_CASE("info and error messages after authentication are shown, not failed on") {
    pam::transaction tx("matrix_verbose", "alice", pam::scripted({"secret"}));
    CHECK(tx.authenticate().ok());
    pam::transaction bad("matrix_verbose", "alice", pam::scripted({"wrong"}));
    CHECK_FALSE(bad.authenticate().ok());
}

TEST_CASE("pam_chatty's many one-message calls all reach the handler") {
    std::vector<std::string> seen;
    pam::transaction tx("chatty", "alice", [&](const pam::message& m) {
        seen.emplace_back(m.text());
        return pam::reply::none();
    });
    CHECK(tx.authenticate().ok());
    CHECK(seen.size() == 16);  // num_lines=8, info and error
}

TEST_CASE("pam_permit and pam_deny give their verdicts") {
    pam::transaction ok("permit", "alice", pam::scripted({}));
    CHECK(ok.authenticate().ok());
    CHECK(ok.open_session().ok());
    CHECK(ok.close_session().ok());
    pam::transaction no("deny", "alice", pam::scripted({}));
    CHECK(no.authenticate().code() == PAM_AUTH_ERR);
}

TEST_CASE("pam_echo's message reaches the handler with its expansions") {
    std::string text;
    pam::transaction tx("echo", "alice", [&](const pam::message& m) {
        if (m.kind() == pam::style::text_info) text = std::string(m.text());
        return pam::reply::none();
    });
    CHECK(tx.authenticate().ok());
    CHECK(text == "Hello alice from echo");
}

TEST_CASE("pam_stress authenticates through the conversation") {
    pam::transaction tx("stress", "alice", pam::scripted({"anything"}));
    CHECK(tx.authenticate().ok());
    REQUIRE(tx.conversation() != nullptr);
    CHECK(tx.conversation()->last_failure() == pam::failure::none);
}

TEST_CASE("sessions and credentials put pam_matrix's variables in the environment") {
    pam::transaction tx("matrix", "alice", pam::scripted({"secret"}));
    REQUIRE(tx.authenticate().ok());
    REQUIRE(tx.open_session().ok());
    CHECK(has_env(tx, "HOMEDIR=/home/alice"));
    REQUIRE(tx.setcred().ok());
    CHECK(tx.getenv("CRED").has_value());
    CHECK(tx.close_session().ok());
}

TEST_CASE("putenv, getenv and getenvlist round trip") {
    pam::transaction tx("permit", "alice", pam::scripted({}));
    REQUIRE(tx.putenv("HANDOFF_TEST=yes").ok());
    CHECK(tx.getenv("HANDOFF_TEST") == std::optional<std::string_view>("yes"));
    CHECK(has_env(tx, "HANDOFF_TEST=yes"));
    REQUIRE(tx.putenv("HANDOFF_TEST").ok());  // deletes
    CHECK_FALSE(tx.getenv("HANDOFF_TEST").has_value());
    CHECK_FALSE(tx.putenv(std::string_view("BAD\0=x", 6)).ok());
}

TEST_CASE("items are set and read back") {
    pam::transaction tx("permit", "alice", pam::scripted({}));
    REQUIRE(tx.set_item(pam::item::rhost, "client.example").ok());
    REQUIRE(tx.set_item(pam::item::tty, "pts/7").ok());
    CHECK(tx.get_item(pam::item::rhost) == std::optional<std::string_view>("client.example"));
    CHECK(tx.get_item(pam::item::tty) == std::optional<std::string_view>("pts/7"));
    CHECK(tx.get_item(pam::item::service) == std::optional<std::string_view>("permit"));
    CHECK(tx.get_item(pam::item::user) == std::optional<std::string_view>("alice"));
}

TEST_CASE("chauthtok changes the password and the new one authenticates") {
    std::string passdb = build_dir() + "/passdb_matrix_chpw_cpp";
    std::ofstream(passdb) << "carol:old-pw:matrix_chpw_cpp\n";
    {
        pam::transaction tx("matrix_chpw_cpp", "carol",
                            pam::scripted({"old-pw", "new-pw", "new-pw"}));
        REQUIRE(tx.chauthtok().ok());
    }
    pam::transaction with_new("matrix_chpw_cpp", "carol", pam::scripted({"new-pw"}));
    CHECK(with_new.authenticate().ok());
    pam::transaction with_old("matrix_chpw_cpp", "carol", pam::scripted({"old-pw"}));
    CHECK_FALSE(with_old.authenticate().ok());
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("a handler's exception is rethrown after libpam returns, and the handle stays usable") {
    int calls = 0;
    pam::transaction tx("matrix", "alice", [&](const pam::message&) -> pam::reply {
        if (++calls == 1) throw std::runtime_error("terminal went away");
        return pam::reply::answer("secret");
    });
    CHECK_THROWS_WITH_AS(tx.authenticate(), "terminal went away", std::runtime_error);
    CHECK(tx.authenticate().ok());
}

TEST_CASE("check() turns a failed status into pam::error with code and text") {
    pam::transaction tx("deny", "alice", pam::scripted({}));
    try {
        pam::check(tx.authenticate());
        FAIL("expected pam::error");
    } catch (const pam::error& e) {
        CHECK(e.code() == PAM_AUTH_ERR);
        CHECK(std::string(e.what()) == ::pam_strerror(tx.native_handle(), PAM_AUTH_ERR));
    }
}
#endif

TEST_CASE("calling PAM again from inside the handler is refused") {
    pam::transaction* self = nullptr;
    pam::status inner;
    pam::transaction tx("matrix", "alice", [&](const pam::message&) {
        inner = self->acct_mgmt();
        return pam::reply::answer("secret");
    });
    self = &tx;
    CHECK(tx.authenticate().ok());
    CHECK(inner.code() == PAM_SYSTEM_ERR);
    CHECK(inner.conversation_failure() == pam::failure::reentered);
}

TEST_CASE("a transaction that failed to start reports it on every operation") {
    pam::start_options missing;
    missing.confdir = "/nonexistent/handoff/pam.d";
    pam::transaction tx("matrix", "alice", pam::scripted({}), missing);
    CHECK_FALSE(tx.started().ok());
    CHECK(tx.native_handle() == nullptr);
    CHECK(tx.authenticate().code() == tx.started().code());
    CHECK(tx.getenvlist().get() == nullptr);
}

TEST_CASE("pam_start_confdir reads service files from the given directory") {
    pam::start_options here;
    const char* services = std::getenv("PAM_WRAPPER_SERVICE_DIR");
    REQUIRE(services != nullptr);
    here.confdir = services;
    pam::transaction tx("matrix", "alice", pam::scripted({"secret"}), here);
    REQUIRE(tx.started().ok());
    CHECK(tx.authenticate().ok());
}

TEST_CASE("a moved transaction keeps its conversation and handle") {
    pam::transaction a("matrix", "alice", pam::scripted({"secret"}));
    pam::transaction b = std::move(a);
    // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): specified state
    CHECK(a.native_handle() == nullptr);
    // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): specified state
    CHECK(a.conversation() == nullptr);
    CHECK(b.conversation() != nullptr);
    CHECK(b.authenticate().ok());
}

TEST_CASE("a service, user or confdir holding '\\0' is refused, not cut short") {
    // "root\0x" must not start a transaction for "root".
    pam::transaction user("matrix", std::string_view("alice\0x", 7), pam::scripted({"secret"}));
    CHECK(user.started().code() == PAM_BAD_ITEM);
    CHECK(user.native_handle() == nullptr);
    CHECK(user.authenticate().code() == PAM_BAD_ITEM);
    pam::transaction service(std::string_view("matrix\0x", 8), "alice", pam::scripted({}));
    CHECK(service.started().code() == PAM_BAD_ITEM);
    pam::start_options odd;
    odd.confdir = std::string("/etc\0/x", 7);
    pam::transaction confdir("matrix", "alice", pam::scripted({}), odd);
    CHECK(confdir.started().code() == PAM_BAD_ITEM);
}
