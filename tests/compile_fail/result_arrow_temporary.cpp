// `->` on a temporary result would point into an owner destroyed at the end
// of the full expression (a freed string, a wiped secret): it does not
// compile, const or not. On a named result it does; on a temporary, `*` first.
#include <cstdlib>
#include <handoff/handoff.hpp>
#include <utility>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    const char* dangling = handoff::try_c_strdup("abc")->get();
    auto made = handoff::try_c_strdup("abc");
    const char* moved = std::move(made)->get();
    const auto& cref = made;
    const char* const_moved = std::move(cref)->get();
    return dangling != nullptr && moved != nullptr && const_moved != nullptr ? 0 : 1;
#else
    auto made = handoff::try_c_strdup("abc");
    const auto& cref = made;
    char* raw = (*handoff::try_c_strdup("abc")).release();
    bool ok = made->get() != nullptr && cref->get() != nullptr && raw != nullptr;
    std::free(raw);
    return ok ? 0 : 1;
#endif
}
