// pam_authenticate in a loop against pam_matrix under pam_wrapper, with the
// handoff adapter and with a hand-written C conversation. Both go through the
// same pam_start / pam_authenticate / pam_end calls and differ only in the
// conversation function, which a trampoline times. Reports authentications
// per second and the share of the time spent inside the conversation.
// Needs the pam_wrapper environment (bench/meson.build sets it), or
// HANDOFF_PAM_CONFDIR naming a service directory (pam_start_confdir), as
// tools/bench-authd runs it beside authd --confdir.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>

#include "conversations.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using conv_fn = int (*)(int, const ::pam_message**, ::pam_response**, void*);

struct timed {
    conv_fn inner;
    void* inner_appdata;
    bench::answers* answers;
    clock_type::duration spent{};
};

int timed_conv(int n, const ::pam_message** msg, ::pam_response** resp, void* appdata) {
    timed* t = static_cast<timed*>(appdata);
    t->answers->next = 0;
    auto start = clock_type::now();
    int rc = t->inner(n, msg, resp, t->inner_appdata);
    t->spent += clock_type::now() - start;
    return rc;
}

int start_matrix(const ::pam_conv* conv, ::pam_handle_t** h) {
#if HANDOFF_PAM_HAS_START_CONFDIR
    if (const char* dir = std::getenv("HANDOFF_PAM_CONFDIR")) {
        return ::pam_start_confdir("matrix", "alice", conv, dir, h);
    }
#endif
    return ::pam_start("matrix", "alice", conv, h);
}

void authenticate_loop(benchmark::State& state, conv_fn inner, void* inner_appdata,
                       bench::answers* a) {
    timed t{inner, inner_appdata, a};
    ::pam_conv conv{&timed_conv, &t};
    auto begin = clock_type::now();
    for (auto _ : state) {
        ::pam_handle_t* h = nullptr;
        if (start_matrix(&conv, &h) != PAM_SUCCESS) {
            state.SkipWithError("pam_start failed");
            break;
        }
        int rc = ::pam_authenticate(h, 0);
        ::pam_end(h, rc);
        if (rc != PAM_SUCCESS) {
            state.SkipWithError("authentication failed");
            break;
        }
    }
    auto total = clock_type::now() - begin;
    state.counters["auth_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["conv_share_pct"] =
        100.0 * static_cast<double>(t.spent.count()) / static_cast<double>(total.count());
}

bench::answers password() {
    bench::answers a;
    a.text.assign(PAM_MAX_NUM_MSG, "secret");  // pam_matrix asks once
    return a;
}

void c_conversation(benchmark::State& state) {
    bench::answers a = password();
    authenticate_loop(state, &bench::c_correct_conv, &a, &a);
}

void handoff_conversation(benchmark::State& state) {
    bench::answers a = password();
    handoff::pam::conversation conv(bench::per_message{&a});
    ::pam_conv c = conv.c_conv();
    authenticate_loop(state, c.conv, c.appdata_ptr, &a);
}

}  // namespace

BENCHMARK(c_conversation)->UseRealTime();
BENCHMARK(handoff_conversation)->UseRealTime();

BENCHMARK_MAIN();
