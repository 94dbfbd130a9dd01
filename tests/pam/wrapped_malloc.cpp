#include "wrapped_malloc.hpp"

#include <cstring>

namespace {
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): malloc has no context
bool counting = false;
}  // namespace

namespace wrapped {
armed::armed(std::size_t fail_at) noexcept {
    handoff_test::reset_state();
    state().fail_at = fail_at;
    counting = true;
}
armed::~armed() { counting = false; }
}  // namespace wrapped

// The names are the ones ld's --wrap looks for.
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
extern "C" {

void* __wrap_malloc(std::size_t bytes) {
    if (!counting) return __real_malloc(bytes);
    if (handoff_test::should_fail()) return nullptr;
    void* p = __real_malloc(bytes);
    if (p != nullptr) {
        std::memset(p, 0xA5, bytes);  // garbage, so "zeroed" claims are tested
        handoff_test::remember(p, bytes);
    }
    return p;
}

void* __wrap_calloc(std::size_t n, std::size_t size) {
    if (!counting) return __real_calloc(n, size);
    if (handoff_test::should_fail()) return nullptr;
    void* p = __real_calloc(n, size);
    if (p != nullptr) handoff_test::remember(p, n * size);
    return p;
}

void* __wrap_realloc(void* old, std::size_t bytes) {
    if (!counting) return __real_realloc(old, bytes);
    if (handoff_test::should_fail()) return nullptr;
    std::size_t old_bytes =
        old == nullptr ? static_cast<std::size_t>(-1) : handoff_test::forget(old);
    void* p = __real_realloc(old, bytes);
    if (p == nullptr && old_bytes != static_cast<std::size_t>(-1))
        handoff_test::remember(old, old_bytes);
    if (p != nullptr) handoff_test::remember(p, bytes);
    return p;
}

// Frees of untracked memory (made before arming, or by libpam's side) pass through.
void __wrap_free(void* p) {
    if (p == nullptr) return;
    handoff_test::record_free(p);
    __real_free(p);
}

}  // extern "C"
// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
