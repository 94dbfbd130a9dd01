// Conversation round trips: hand-written C against the handoff adapter, for
// num_msg 1, 4, 16, 32 and answer lengths 8, 64, 511. Each iteration is the
// whole round trip: the conversation builds the reply, then it is freed the
// way libpam frees it.
#include <benchmark/benchmark.h>

#include "conversations.hpp"

namespace {

void run_c(benchmark::State& state,
           int (*conv)(int, const ::pam_message**, ::pam_response**, void*)) {
    const int n = static_cast<int>(state.range(0));
    bench::prompts m(n);
    bench::answers a = bench::make_answers(n, static_cast<std::size_t>(state.range(1)));
    for (auto _ : state) {
        ::pam_response* resp = nullptr;
        int rc = conv(n, m.get(), &resp, &a);
        benchmark::DoNotOptimize(rc);
        bench::free_reply(resp, n);
    }
}

void c_minimal(benchmark::State& state) { run_c(state, bench::c_minimal_conv); }
void c_strdup(benchmark::State& state) { run_c(state, bench::c_strdup_conv); }

void handoff_per_message(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    bench::prompts m(n);
    bench::answers a = bench::make_answers(n, static_cast<std::size_t>(state.range(1)));
    handoff::pam::conversation conv(bench::per_message{&a});
    ::pam_conv c = conv.c_conv();
    for (auto _ : state) {
        conv.handler().next = 0;
        ::pam_response* resp = nullptr;
        int rc = c.conv(n, m.get(), &resp, c.appdata_ptr);
        benchmark::DoNotOptimize(rc);
        bench::free_reply(resp, n);
    }
}

void handoff_batch(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    bench::prompts m(n);
    bench::answers a = bench::make_answers(n, static_cast<std::size_t>(state.range(1)));
    handoff::pam::conversation conv(bench::batch{&a});
    ::pam_conv c = conv.c_conv();
    for (auto _ : state) {
        ::pam_response* resp = nullptr;
        int rc = c.conv(n, m.get(), &resp, c.appdata_ptr);
        benchmark::DoNotOptimize(rc);
        bench::free_reply(resp, n);
    }
}

void shapes(benchmark::internal::Benchmark* b) {
    for (long n : {1, 4, 16, 32}) {
        for (long len : {8, 64, 511}) b->Args({n, len});
    }
}

}  // namespace

BENCHMARK(c_minimal)->Apply(shapes);
BENCHMARK(c_strdup)->Apply(shapes);
BENCHMARK(handoff_per_message)->Apply(shapes);
BENCHMARK(handoff_batch)->Apply(shapes);

BENCHMARK_MAIN();
