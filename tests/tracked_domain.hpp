// A test allocation domain: counts live allocations, can fail the Nth one,
// and records at each free whether the bytes being freed were all zero, so a
// test can observe that a secure owner wiped before freeing. wipe_checked is
// the same domain for secrets: freeing a block that is not all zero aborts.
#ifndef HANDOFF_TESTS_TRACKED_DOMAIN_HPP
#define HANDOFF_TESTS_TRACKED_DOMAIN_HPP

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace handoff_test {

struct tracked_state {
    static constexpr std::size_t max_live = 1024;
    struct block {
        void* p;
        std::size_t bytes;
    };
    block live[max_live]{};
    std::size_t live_count = 0;
    std::size_t allocations = 0;  // successful and failed attempts
    std::size_t fail_at = 0;      // 1-based attempt to fail; 0 = never
    bool injected = false;        // a failure was injected in this run
    std::size_t frees = 0;
    std::size_t frees_all_zero = 0;  // frees whose bytes were all zero
    std::size_t frees_nonzero = 0;
    std::size_t overflowed = 0;  // more live blocks than the table holds
};

inline tracked_state& state() noexcept {
    static tracked_state s;
    return s;
}

inline void reset_state() noexcept { state() = tracked_state{}; }

inline bool should_fail() noexcept {
    tracked_state& s = state();
    ++s.allocations;
    if (s.fail_at != 0 && s.allocations == s.fail_at) {
        s.injected = true;
        return true;
    }
    return false;
}

inline void remember(void* p, std::size_t bytes) noexcept {
    tracked_state& s = state();
    if (s.live_count == tracked_state::max_live) {
        ++s.overflowed;
        return;
    }
    s.live[s.live_count++] = {p, bytes};
}

// Removes p from the table and returns its size; SIZE_MAX if unknown.
inline std::size_t forget(void* p) noexcept {
    tracked_state& s = state();
    for (std::size_t i = 0; i < s.live_count; ++i) {
        if (s.live[i].p == p) {
            std::size_t bytes = s.live[i].bytes;
            s.live[i] = s.live[--s.live_count];
            return bytes;
        }
    }
    return static_cast<std::size_t>(-1);
}

enum class freed { unknown, all_zero, nonzero };

// Forgets p and counts the free, noting whether its bytes were all zero (a
// wipe).
inline freed classify_free(void* p) noexcept {
    std::size_t bytes = forget(p);
    if (bytes == static_cast<std::size_t>(-1)) return freed::unknown;
    tracked_state& s = state();
    ++s.frees;
    const unsigned char* b = static_cast<const unsigned char*>(p);
    bool zero = true;
    for (std::size_t i = 0; i < bytes; ++i) zero = zero && b[i] == 0;
    ++(zero ? s.frees_all_zero : s.frees_nonzero);
    return zero ? freed::all_zero : freed::nonzero;
}

// False when p was not tracked.
inline bool record_free(void* p) noexcept { return classify_free(p) != freed::unknown; }

struct tracked {
    static void* allocate(std::size_t bytes) noexcept {
        if (should_fail()) return nullptr;
        void* p = std::malloc(bytes == 0 ? 1 : bytes);
        if (p != nullptr) {
            std::memset(p, 0xA5, bytes);  // garbage, so "zeroed" claims are tested
            remember(p, bytes);
        }
        return p;
    }
    static void* reallocate(void* old, std::size_t bytes) noexcept {
        if (should_fail()) return nullptr;
        std::size_t old_bytes = old == nullptr ? 0 : forget(old);
        void* p = std::realloc(old, bytes == 0 ? 1 : bytes);
        if (p == nullptr) {
            if (old != nullptr) remember(old, old_bytes);
            return nullptr;
        }
        if (bytes > old_bytes) {
            std::memset(static_cast<char*>(p) + old_bytes, 0xA5, bytes - old_bytes);
        }
        remember(p, bytes);
        return p;
    }
    static void deallocate(void* p) noexcept {
        if (p == nullptr) return;
        if (!record_free(p)) {
            // Not ours: a wrong free. Make it loud rather than corrupting the heap.
            std::abort();
        }
        std::free(p);
    }
};

// A second domain of the same shape, to show that domains do not mix.
struct other_tracked : tracked {};

// The tracked domain for secrets: every block it frees must already be wiped,
// and a secret is never given to realloc (which would leave the old bytes in
// freed memory). Either breach aborts at once, where it happens.
struct wipe_checked {
    static void* allocate(std::size_t bytes) noexcept { return tracked::allocate(bytes); }
    static void* reallocate(void*, std::size_t) noexcept { std::abort(); }
    static void deallocate(void* p) noexcept {
        if (p == nullptr) return;
        if (classify_free(p) != freed::all_zero) std::abort();  // unknown or not wiped
        std::free(p);
    }
};

// Runs fn once per allocation point, failing that allocation, until a run
// completes with no failure injected. fn gets the 1-based failing attempt and
// must release everything it owns before it returns; after each run the live
// count must be zero. Returns the number of failure points visited.
template <class Fn, class Check>
std::size_t for_each_allocation_failure(Fn fn, Check check_live_zero) {
    for (std::size_t k = 1; k < 10000; ++k) {
        reset_state();
        state().fail_at = k;
        fn(k);
        check_live_zero(state().live_count);
        if (!state().injected) {
            state().fail_at = 0;  // disarmed: later tests allocate normally
            return k - 1;
        }
    }
    return static_cast<std::size_t>(-1);
}

}  // namespace handoff_test

#endif
