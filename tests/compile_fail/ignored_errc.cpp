// errc is [[nodiscard]]: a failure returned by try_resize (or by any function
// returning errc, the user's own included) cannot be dropped silently.
#include <handoff/handoff.hpp>
handoff::errc grow(handoff::malloc_array<int>& a) { return a.try_resize(8); }
int main() {
    handoff::malloc_array<int> a;
#ifdef HANDOFF_EXPECT_FAIL
    grow(a);
#else
    handoff::errc e = grow(a);
    if (e != handoff::errc::ok) return 1;
#endif
    return a.size() == 8 ? 0 : 1;
}
