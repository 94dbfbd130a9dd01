// Counting malloc for code that calls the C allocator directly (the PAM
// adapter hands libpam memory from malloc/calloc, not from a domain). The test
// executable links with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
// --wrap=free: only calls made from its own object files come here, so libpam,
// libstdc++ and doctest are not counted. While armed, allocations go into the
// tracked domain's ledger (tests/tracked_domain.hpp): counted, the Nth can
// fail, and every free records whether the bytes were all zero.
#ifndef HANDOFF_TESTS_WRAPPED_MALLOC_HPP
#define HANDOFF_TESTS_WRAPPED_MALLOC_HPP

#include <cstddef>

#include "../tracked_domain.hpp"

// The names are the ones ld's --wrap defines and looks for.
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
extern "C" {
void* __real_malloc(std::size_t);
void* __real_calloc(std::size_t, std::size_t);
void* __real_realloc(void*, std::size_t);
void __real_free(void*);
}
// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)

namespace wrapped {

using handoff_test::state;

// Counting is on for the lifetime of the object, from a fresh ledger.
struct armed {
    explicit armed(std::size_t fail_at = 0) noexcept;
    ~armed();
    armed(const armed&) = delete;
    armed& operator=(const armed&) = delete;
};

}  // namespace wrapped

#endif
