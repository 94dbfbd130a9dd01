// Pairs of functions whose -O2 code must be the same: the handoff form and
// the careful raw C it replaces (same checks, same calls). codegen_check.py
// compiles this file and compares each handoff_* body with its raw_* twin.
#include <handoff/handoff.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" {

// Allocate, fill, hand off.
char* raw_handoff_one(std::size_t n) {
    char* p = static_cast<char*>(std::malloc(n));
    if (p == nullptr) return nullptr;
    p[0] = 'x';
    return p;
}
char* handoff_handoff_one(std::size_t n) {
    handoff::c_unique_ptr<char> p(static_cast<char*>(std::malloc(n)));
    if (!p) return nullptr;
    p.get()[0] = 'x';
    return p.release();
}

// Take ownership and free.
void raw_drop(char* q) { std::free(q); }
void handoff_drop(char* q) { handoff::c_unique_ptr<char> p(q); }

// A zeroed array of n ints handed off: zero length gives NULL, overflow is refused.
int* raw_array(std::size_t n) {
    if (n == 0 || n > SIZE_MAX / sizeof(int)) return nullptr;
    return static_cast<int*>(std::calloc(n, sizeof(int)));
}
int* handoff_array(std::size_t n) {
    auto a = handoff::malloc_array<int>::try_zeroed(n);
    return std::move(*a).release();
}

// An adopted array freed.
void raw_array_drop(int* p) { std::free(p); }
void handoff_array_drop(int* p) { auto a = handoff::malloc_array<int>::adopt(p, 1); }

}  // extern "C"
