// Every public header refuses a mode older than C++17 with its own message,
// before any other error (tests/meson.build compiles this with -std=c++14
// after the build's flags and the header to include in HANDOFF_FLOOR_HEADER).
#ifdef HANDOFF_EXPECT_FAIL
#include HANDOFF_FLOOR_HEADER
#endif
int main() { return 0; }
