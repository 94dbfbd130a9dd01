// A plain C string becomes a secure one of its own domain, never of another.
#include <handoff/handoff.hpp>
struct other_domain : handoff::libc {};
int main() {
    handoff::c_unique_ptr<char, other_domain> plain;
#ifdef HANDOFF_EXPECT_FAIL
    handoff::secure_c_string<handoff::libc> secure = std::move(plain);
#else
    handoff::secure_c_string<other_domain> secure = std::move(plain);
#endif
    return secure ? 1 : 0;
}
