// A fixed conversation workload for instruction counting under callgrind.
//
//   workload VARIANT NUM_MSG LENGTH CALLS
//
// VARIANT: c_minimal, c_strdup, handoff_per_message, handoff_batch. Runs the
// round trip CALLS times and prints heap allocations per call, counted by a
// malloc wrapper linked only into this program's own objects.
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
    if (argc != 5) {
        std::fprintf(stderr, "usage: workload VARIANT NUM_MSG LENGTH CALLS\n");
        return 2;
    }
    std::string variant = argv[1];
    int n = std::atoi(argv[2]);
    std::size_t length = static_cast<std::size_t>(std::atol(argv[3]));
    long calls = std::atol(argv[4]);
    bench::prompts m(n);
    bench::answers a = bench::make_answers(n, length);
    handoff::pam::conversation per(bench::per_message{&a});
    handoff::pam::conversation whole(bench::batch{&a});
    ::pam_conv c{};
    if (variant == "c_minimal") {
        c = ::pam_conv{&bench::c_minimal_conv, &a};
    } else if (variant == "c_strdup") {
        c = ::pam_conv{&bench::c_strdup_conv, &a};
    } else if (variant == "handoff_per_message") {
        c = per.c_conv();
    } else if (variant == "handoff_batch") {
        c = whole.c_conv();
    } else {
        std::fprintf(stderr, "unknown variant %s\n", variant.c_str());
        return 2;
    }
    unsigned long before = allocations;
    for (long k = 0; k < calls; ++k) {
        per.handler().next = 0;
        ::pam_response* resp = nullptr;
        if (c.conv(n, m.get(), &resp, c.appdata_ptr) != PAM_SUCCESS) return 1;
        bench::free_reply(resp, n);
    }
    std::printf("allocations_per_call %.3f\n",
                static_cast<double>(allocations - before) / static_cast<double>(calls));
    return 0;
}
