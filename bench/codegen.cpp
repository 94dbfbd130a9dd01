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

// One element pushed into a new vector, handed off with its length.
int* raw_vector_one(int x, std::size_t* length) {
    int* p = static_cast<int*>(std::malloc(4 * sizeof(int)));
    if (p == nullptr) return nullptr;
    p[0] = x;
    *length = 1;
    return p;
}
int* handoff_vector_one(int x, std::size_t* length) {
    handoff::malloc_vector<int> v;
    if (v.try_push_back(x) != handoff::errc::ok) return nullptr;
    auto out = std::move(v).release_with_size();
    *length = out.size;
    return out.data;
}

// A vector made from an adopted array, then freed.
void raw_vector_drop(int* p) { std::free(p); }
void handoff_vector_drop(int* p) {
    auto v = handoff::malloc_vector<int>::from_array(handoff::malloc_array<int>::adopt(p, 1));
}

// A C function that hands back an array and returns its length (scandir's
// shape), its result owned: a count of zero or less frees what it wrote.
// noexcept as glibc declares its functions (__THROW): a C function does not
// throw.
int get_items(int** out) noexcept;
int* raw_out_array(std::size_t* length) {
    int* p = nullptr;
    int n = get_items(&p);
    if (p != nullptr && n <= 0) {
        std::free(p);
        p = nullptr;
    }
    *length = p == nullptr ? 0 : static_cast<std::size_t>(n);
    return p;
}
int* handoff_out_array(std::size_t* length) {
    handoff::malloc_array<int> a;
    int n = 0;
    n = get_items(handoff::out_array(a, n));
    auto out = std::move(a).release_with_size();
    *length = out.size;
    return out.data;
}

}  // extern "C"
