// An element policy's release_element runs in destructors and pop_back, where
// an exception is std::terminate: one that may throw is refused when the
// owner is instantiated: here malloc_array (malloc_vector has its own test).
#include <handoff/handoff.hpp>
struct may_throw {
    static constexpr bool wipe_buffer = false;
    template <class Domain, class T>
    static void release_element(T& element) {
        if (element < 0) throw element;
        element = 0;
    }
};
struct will_not_throw {
    static constexpr bool wipe_buffer = false;
    template <class Domain, class T>
    static void release_element(T& element) noexcept {
        element = 0;
    }
};
#ifdef HANDOFF_EXPECT_FAIL
using policy = may_throw;
#else
using policy = will_not_throw;
#endif
int main() {
    handoff::malloc_array<long, handoff::libc, policy> a;
    return a.empty() ? 0 : 1;
}
