// Completes docs/domains.md's hand-written domain: the member functions the
// block declares, then an owner of the domain.
#include <cstdio>
#include <cstdlib>

#include <handoff/handoff.hpp>

#include DOC_BLOCK

// glibc's malloc aligns to 16 bytes on 64-bit targets.
void* my_domain::allocate(std::size_t bytes) noexcept { return std::malloc(bytes); }
void my_domain::deallocate(void* p) noexcept { std::free(p); }
void* my_domain::allocate_zeroed(std::size_t n, std::size_t size) noexcept {
    return std::calloc(n, size);
}
void* my_domain::reallocate(void* p, std::size_t bytes) noexcept { return std::realloc(p, bytes); }

int main() {
    auto s = handoff::c_strdup<my_domain>("by hand");
    auto a = handoff::malloc_array<int, my_domain>::zeroed(4);
    std::printf("%s, %zu zeroes\n", s.get(), a.size());
}
