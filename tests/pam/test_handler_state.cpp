// Reaching a handler's state after handing it to a transaction: the
// transaction keeps its own copy of the handler, so the caller hands over a
// std::reference_wrapper (std::ref) to keep the object and read it afterwards.
// Real Linux-PAM through pam_wrapper, like test_pam_transaction.cpp.
#include <handoff/pam.hpp>

#include "../doctest.hpp"

#include <functional>
#include <string>

namespace pam = handoff::pam;

namespace {

// A copyable handler that counts the messages it saw.
struct counting {
    int seen = 0;
    pam::reply operator()(const pam::message&) {
        ++seen;
        return pam::reply::none();
    }
};

}  // namespace

TEST_CASE("a handler handed over by value is the transaction's copy, not the caller's") {
    counting handler;
    pam::transaction tx("echo", "alice", handler);
    CHECK(tx.authenticate().ok());
    CHECK(handler.seen == 0);
}

TEST_CASE("a handler handed over with std::ref is the caller's object") {
    counting handler;
    pam::transaction tx("echo", "alice", std::ref(handler));
    CHECK(tx.authenticate().ok());
    CHECK(handler.seen == 1);
    CHECK(tx.authenticate().ok());
    CHECK(handler.seen == 2);
}

TEST_CASE("scripted's transcript and answers are read after the transaction through std::ref") {
    pam::scripted script({"secret"});
    {
        pam::transaction tx("matrix", "alice", std::ref(script));
        CHECK(tx.authenticate().ok());
        CHECK(script.answers_used() == 1);
    }
    pam::scripted echo({});
    {
        pam::transaction tx("echo", "alice", std::ref(echo));
        CHECK(tx.authenticate().ok());
    }
    REQUIRE(echo.transcript().size() == 1);
    CHECK(echo.transcript()[0] == "Hello alice from echo");
}
