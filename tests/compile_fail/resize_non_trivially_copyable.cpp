// Growth moves elements with realloc/memcpy: a type whose copy constructor
// must run (here it counts the copies, which realloc would skip silently) is
// refused, even though zero bytes are a valid value of it.
#include <handoff/handoff.hpp>
struct counted {
    int id;
    counted() = default;
    counted(const counted& other) : id(other.id) { ++copies; }
    static inline int copies = 0;
};
struct plain {
    int id;
};
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    handoff::malloc_array<counted> a;
#else
    handoff::malloc_array<plain> a;
#endif
    return a.try_resize(4) == handoff::errc::ok ? 0 : 1;
}
