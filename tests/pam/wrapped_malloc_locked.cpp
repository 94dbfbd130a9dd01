// The counting malloc of wrapped_malloc.hpp for tests with several threads:
// the same ledger (tests/tracked_domain.hpp), each update under one mutex, so
// allocations on the PAM thread and the owner's thread are counted without a
// data race. Link one of wrapped_malloc.cpp or this file, never both.
#include "wrapped_malloc.hpp"

#include <atomic>
#include <cstring>
#include <mutex>

namespace {
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): malloc has no context
std::atomic<bool> counting{false};
std::mutex ledger;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)
}  // namespace

namespace wrapped {
armed::armed(std::size_t fail_at) noexcept {
    std::lock_guard<std::mutex> lock(ledger);
    handoff_test::reset_state();
    state().fail_at = fail_at;
    counting = true;
}
armed::~armed() { counting = false; }
}  // namespace wrapped

extern "C" {
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): the linker's --wrap names

void* __wrap_malloc(std::size_t bytes) {
    if (!counting) return __real_malloc(bytes);
    std::lock_guard<std::mutex> lock(ledger);
    if (handoff_test::should_fail()) return nullptr;
    void* p = __real_malloc(bytes);
    if (p != nullptr) {
        std::memset(p, 0xA5, bytes);
        handoff_test::remember(p, bytes);
    }
    return p;
}

void* __wrap_calloc(std::size_t n, std::size_t size) {
    if (!counting) return __real_calloc(n, size);
    std::lock_guard<std::mutex> lock(ledger);
    if (handoff_test::should_fail()) return nullptr;
    void* p = __real_calloc(n, size);
    if (p != nullptr) handoff_test::remember(p, n * size);
    return p;
}

void* __wrap_realloc(void* old, std::size_t bytes) {
    if (!counting) return __real_realloc(old, bytes);
    std::lock_guard<std::mutex> lock(ledger);
    if (handoff_test::should_fail()) return nullptr;
    std::size_t old_bytes =
        old == nullptr ? static_cast<std::size_t>(-1) : handoff_test::forget(old);
    void* p = __real_realloc(old, bytes);
    if (p == nullptr && old_bytes != static_cast<std::size_t>(-1))
        handoff_test::remember(old, old_bytes);
    if (p != nullptr) handoff_test::remember(p, bytes);
    return p;
}

void __wrap_free(void* p) {
    if (p == nullptr) return;
    {
        std::lock_guard<std::mutex> lock(ledger);
        handoff_test::record_free(p);
    }
    __real_free(p);
}

// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
}  // extern "C"
