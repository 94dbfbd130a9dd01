// Handing memory of one domain to an API that frees it with another must not compile.
#include <handoff/handoff.hpp>
struct other_domain : handoff::libc {};
// Stands for a C API wrapper that will free() the strings.
void give_to_libc(handoff::c_string_list<handoff::libc>&& list) { (void)std::move(list).release(); }
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    handoff::c_string_list<other_domain> list;
#else
    handoff::c_string_list<handoff::libc> list;
#endif
    give_to_libc(std::move(list));
    return 0;
}
