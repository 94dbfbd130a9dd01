// A constexpr data_key from a char array without a NUL does not compile (its
// length would be looked for past the array).
#include <handoff/pam_module.hpp>
#ifdef HANDOFF_EXPECT_FAIL
constexpr char name[3] = {'a', 'b', 'c'};
#else
constexpr char name[4] = {'a', 'b', 'c', '\0'};
#endif
constexpr handoff::pam::data_key<int> key{name};
const char* get() { return key.name(); }
