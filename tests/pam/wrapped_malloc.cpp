#include "wrapped_malloc.hpp"

#include <cstring>

namespace wrapped {

counters& state() noexcept {
    static counters c;
    return c;
}

namespace {
bool should_fail() noexcept {
    counters& c = state();
    ++c.allocations;
    if (c.fail_at != 0 && c.allocations == c.fail_at) {
        c.injected = true;
        return true;
    }
    return false;
}
void remember(void* p, std::size_t bytes) noexcept {
    counters& c = state();
    if (p != nullptr && c.live_count < sizeof(c.live) / sizeof(c.live[0])) {
        c.live[c.live_count++] = {p, bytes};
    }
}
bool forget(void* p, std::size_t& bytes) noexcept {
    counters& c = state();
    for (std::size_t i = 0; i < c.live_count; ++i) {
        if (c.live[i].p == p) {
            bytes = c.live[i].bytes;
            c.live[i] = c.live[--c.live_count];
            return true;
        }
    }
    return false;
}
}  // namespace

}  // namespace wrapped

extern "C" {

void* __wrap_malloc(std::size_t bytes) {
    if (!wrapped::state().armed) return __real_malloc(bytes);
    if (wrapped::should_fail()) return nullptr;
    void* p = __real_malloc(bytes);
    if (p != nullptr) std::memset(p, 0xA5, bytes);
    wrapped::remember(p, bytes);
    return p;
}

void* __wrap_calloc(std::size_t n, std::size_t size) {
    if (!wrapped::state().armed) return __real_calloc(n, size);
    if (wrapped::should_fail()) return nullptr;
    void* p = __real_calloc(n, size);
    wrapped::remember(p, n * size);
    return p;
}

void* __wrap_realloc(void* old, std::size_t bytes) {
    if (!wrapped::state().armed) return __real_realloc(old, bytes);
    if (wrapped::should_fail()) return nullptr;
    std::size_t old_bytes = 0;
    bool known = old != nullptr && wrapped::forget(old, old_bytes);
    void* p = __real_realloc(old, bytes);
    if (p == nullptr && known) wrapped::remember(old, old_bytes);
    if (p != nullptr) wrapped::remember(p, bytes);
    return p;
}

void __wrap_free(void* p) {
    if (p == nullptr) return;
    std::size_t bytes = 0;
    if (wrapped::forget(p, bytes)) {
        wrapped::counters& c = wrapped::state();
        ++c.frees;
        const unsigned char* b = static_cast<const unsigned char*>(p);
        bool zero = true;
        for (std::size_t i = 0; i < bytes; ++i) zero = zero && b[i] == 0;
        ++(zero ? c.frees_all_zero : c.frees_nonzero);
    }
    __real_free(p);
}

}  // extern "C"
