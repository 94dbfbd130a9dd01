// copied_from copies bytes: it takes any trivially copyable type (default
// member initialisers and std::string_view included) and refuses, with its
// own name in the message, a type whose copy constructor must run.
#include <handoff/handoff.hpp>
#include <string_view>
struct with_defaults {
    int id = 1;
    std::string_view name = "x";
};
struct counted {
    int n = 0;
    counted() = default;
    counted(const counted& other) : n(other.n + 1) {}
};
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    counted source[2];
    auto copy = handoff::malloc_array<counted>::try_copied_from(source, 2);
#else
    with_defaults source[2];
    auto copy = handoff::malloc_array<with_defaults>::try_copied_from(source, 2);
#endif
    return copy ? 0 : 1;
}
