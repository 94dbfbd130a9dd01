// result<T> and errc: success only from a value, temporaries that cannot
// dangle, failures that cannot be ignored silently.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tracked_domain.hpp"

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;
using tracked_list = handoff::c_string_list<tracked>;
using tracked_string = handoff::c_unique_ptr<char, tracked>;

namespace {
// A user's own try_ function that forwards a status: the pattern that used to
// turn errc::ok into a "success" holding an empty owner.
handoff::result<tracked_string> forward_status(errc status) { return status; }
}  // namespace

TEST_CASE("a result built from errc::ok is a failure with errc::no_value, never a success") {
    handoff::result<tracked_string> r = forward_status(errc::ok);
    CHECK_FALSE(r);
    CHECK(r.error() == errc::no_value);
    CHECK(r->get() == nullptr);
}

TEST_CASE("a result built from a failure keeps that failure") {
    handoff::result<tracked_string> r = forward_status(errc::out_of_memory);
    CHECK_FALSE(r);
    CHECK(r.error() == errc::out_of_memory);
}

TEST_CASE("a result built from a value is a success") {
    handoff_test::reset_state();
    handoff::result<tracked_string> r = handoff::try_c_strdup<tracked>("v");
    CHECK(r);
    CHECK(r.error() == errc::ok);
}

TEST_CASE("dereferencing a temporary result gives the owner by value") {
    using list_result = handoff::result<tracked_list>;
    CHECK(std::is_same_v<decltype(*std::declval<list_result>()), tracked_list>);
    CHECK(std::is_same_v<decltype(*std::declval<list_result&>()), tracked_list&>);
    CHECK(std::is_same_v<decltype(*std::declval<const list_result&>()), const tracked_list&>);
}

TEST_CASE("range-for over *try_from(...) iterates a list that is still alive") {
    handoff_test::reset_state();
    std::vector<std::string> seen;
    std::size_t live_inside = 0;
    for (std::string_view s : *tracked_list::try_from({"alpha", "beta"})) {
        live_inside = state().live_count;  // the array and both strings
        seen.emplace_back(s);
    }
    CHECK(live_inside == 3);
    CHECK(seen == std::vector<std::string>{"alpha", "beta"});
    CHECK(state().live_count == 0);  // freed after the loop, not before it
}

TEST_CASE("moving the owner out of a temporary result leaves nothing behind") {
    handoff_test::reset_state();
    {
        tracked_string s = *handoff::try_c_strdup<tracked>("kept");
        CHECK(state().live_count == 1);
        CHECK(std::string_view(s.get()) == "kept");
    }
    CHECK(state().live_count == 0);
}

TEST_CASE("every errc has a text of its own") {
    const errc all[] = {errc::ok,           errc::out_of_memory, errc::too_large,
                        errc::embedded_nul, errc::null_pointer,  errc::no_value};
    for (errc a : all) {
        CHECK(std::string_view(handoff::to_string(a)) != "unknown handoff error");
        for (errc b : all) {
            if (a != b) CHECK(std::string_view(to_string(a)) != std::string_view(to_string(b)));
        }
    }
}

TEST_CASE("a value outside errc (a cast from a C library's int) reads as unknown") {
    CHECK(std::string_view(handoff::to_string(static_cast<errc>(200))) == "unknown handoff error");
}

#if HANDOFF_HAS_EXCEPTIONS
TEST_CASE("the throwing forms map null_pointer and no_value to exceptions") {
    CHECK_THROWS_AS(handoff::c_strdup(static_cast<const char*>(nullptr)), std::invalid_argument);
    CHECK_THROWS_AS(handoff::detail::value_or_throw(forward_status(errc::ok)), std::logic_error);
}
#endif
