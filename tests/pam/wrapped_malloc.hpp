// Counting malloc for code that calls the C allocator directly (the PAM
// adapter hands libpam memory from malloc/calloc, not from a domain). The test
// executable links with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
// --wrap=free: only calls made from its own object files come here, so libpam,
// libstdc++ and doctest are not counted. While armed, allocations are tracked,
// the Nth can fail, and every free records whether the bytes were all zero.
#ifndef HANDOFF_TESTS_WRAPPED_MALLOC_HPP
#define HANDOFF_TESTS_WRAPPED_MALLOC_HPP

#include <cstddef>
#include <cstdlib>

extern "C" {
void* __real_malloc(std::size_t);
void* __real_calloc(std::size_t, std::size_t);
void* __real_realloc(void*, std::size_t);
void __real_free(void*);
}

namespace wrapped {

struct block {
    void* p;
    std::size_t bytes;
};

struct counters {
    bool armed = false;
    std::size_t fail_at = 0;     // 1-based allocation to fail while armed; 0 = none
    std::size_t allocations = 0;
    bool injected = false;
    std::size_t frees = 0;
    std::size_t frees_all_zero = 0;
    std::size_t frees_nonzero = 0;
    block live[512];
    std::size_t live_count = 0;
};

counters& state() noexcept;

// Arms counting for the lifetime of the object.
struct armed {
    explicit armed(std::size_t fail_at = 0) noexcept {
        state() = counters{};
        state().armed = true;
        state().fail_at = fail_at;
    }
    ~armed() { state().armed = false; }
    armed(const armed&) = delete;
    armed& operator=(const armed&) = delete;
};

}  // namespace wrapped

#endif
