// malloc_array refuses element types that need a destructor.
#include <handoff/handoff.hpp>
#include <string>
int main() {
#ifdef HANDOFF_EXPECT_FAIL
    handoff::malloc_array<std::string> a;
#else
    handoff::malloc_array<char*> a;
#endif
    return a.empty() ? 0 : 1;
}
