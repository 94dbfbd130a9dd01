// libpam declares the data name nonnull: a key named by NULL does not compile.
#include <handoff/pam_module.hpp>
#ifdef HANDOFF_EXPECT_FAIL
constexpr handoff::pam::data_key<int> key{nullptr};
#else
constexpr handoff::pam::data_key<int> key{"test.int"};
#endif
const char* name() { return key.name(); }
