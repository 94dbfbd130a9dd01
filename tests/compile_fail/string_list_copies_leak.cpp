// c_string_list copies every string in from()/try_from(): only an element
// policy that frees each string may hold the copies. With no_ownership or
// secret_bytes they would leak (passwords unwiped), so it does not compile;
// adopting an array whose strings the list does not own stays allowed.
#include <handoff/handoff.hpp>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    auto leaked = handoff::c_string_list<handoff::libc, handoff::secret_bytes>::try_from({"pw"});
    auto plain = handoff::c_string_list<handoff::libc, handoff::no_ownership>::try_from({"x"});
    return leaked && plain ? 0 : 1;
#else
    auto owned = handoff::c_string_list<handoff::libc, handoff::owns_pointees>::try_from({"x"});
    auto secret =
        handoff::c_string_list<handoff::libc, handoff::owns_secret_strings>::try_from({"pw"});
    auto view = handoff::c_string_list<handoff::libc, handoff::no_ownership>::adopt(nullptr);
    return owned && secret && view.empty() ? 0 : 1;
#endif
}
