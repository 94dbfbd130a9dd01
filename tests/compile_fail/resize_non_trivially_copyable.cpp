// Growth moves elements with realloc/memcpy: a type whose copy constructor
// must run (here one that keeps a pointer to itself) is refused.
#include <handoff/handoff.hpp>
struct self_pointing {
    self_pointing* self = this;
    self_pointing() = default;
    self_pointing(const self_pointing&) : self(this) {}
};
struct plain {
    int value;
};
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    handoff::malloc_array<self_pointing> a;
#else
    handoff::malloc_array<plain> a;
#endif
    return a.try_resize(4) == handoff::errc::ok ? 0 : 1;
}
