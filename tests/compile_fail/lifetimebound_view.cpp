// Clang: a view into a temporary secret_string is diagnosed (lifetimebound).
#include <handoff/handoff.hpp>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    std::string_view v = (*handoff::secret_string::try_from("pin")).view();
#else
    handoff::secret_string s = *handoff::secret_string::try_from("pin");
    std::string_view v = s.view();
#endif
    return v.size() == 3 ? 0 : 1;
}
