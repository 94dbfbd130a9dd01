// A fixed conversation workload for instruction counting under callgrind.
//
//   workload VARIANT SHAPE CALLS
//
// VARIANT: one of the conversations in conversations.hpp (c_minimal, c_strdup,
// c_correct, handoff_per_message, handoff_batch). SHAPE: NUM_MSGxLENGTH, with
// a trailing "h" for every second message an info message (32x64h). Runs the
// round trip CALLS times (the reply freed as libpam frees it) and prints the
// conversation's function name (for callgrind --toggle-collect) and heap
// allocations per call, counted by a malloc wrapper linked only into this
// program's own objects.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "conversations.hpp"

extern "C" {
void* __real_malloc(std::size_t);
void* __real_calloc(std::size_t, std::size_t);
static unsigned long allocations = 0;
void* __wrap_malloc(std::size_t n) {
    ++allocations;
    return __real_malloc(n);
}
void* __wrap_calloc(std::size_t n, std::size_t s) {
    ++allocations;
    return __real_calloc(n, s);
}
// strdup allocates inside libc, where the malloc wrapper cannot see it.
char* __real_strdup(const char*);
char* __wrap_strdup(const char* s) {
    ++allocations;
    return __real_strdup(s);
}
}

int main(int argc, char** argv) {
    bench::shape s;
    if (argc != 4 || !bench::shape::parse(argv[2], s)) {
        std::fprintf(stderr, "usage: workload VARIANT NUM_MSGxLENGTH[h] CALLS\n");
        return 2;
    }
    long calls = std::atol(argv[3]);
    bench::lineup all(s);
    const bench::lineup::entry* e = all.find(argv[1]);
    if (e == nullptr) {
        std::fprintf(stderr, "unknown variant %s\n", argv[1]);
        return 2;
    }
    unsigned long before = allocations;
    for (long k = 0; k < calls; ++k) {
        if (!all.call(*e)) return 1;
    }
    std::printf("function %s\n", e->function);
    std::printf(
        "allocations_per_call %.3f\n",
        calls == 0 ? 0.0 : static_cast<double>(allocations - before) / static_cast<double>(calls));
    std::printf("expected_allocations %d\n", 1 + all.prompt_count());
    return 0;
}
