// The trap of the review: a range-for over `->view()` of a temporary result
// reads a secret that was wiped and freed before the loop began. The fix is to
// name the result (`(*make()).view()` in a range-for would dangle the same way).
#include <handoff/handoff.hpp>
int main() {
    int sum = 0;
#ifdef HANDOFF_EXPECT_FAIL
    for (char c : handoff::secret_string::try_from("pw")->view()) sum += c;
#else
    auto pw = handoff::secret_string::try_from("pw");
    for (char c : pw->view()) sum += c;
#endif
    return sum > 0 ? 0 : 1;
}
