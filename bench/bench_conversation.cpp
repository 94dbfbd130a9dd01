// Conversation round trips under Google Benchmark, one variant at a time
// (conversations.hpp): the conversation builds the reply, then it is freed the
// way libpam frees it. tools/bench reports the interleaved measurement of
// roundtrip.cpp instead; this program is for `meson benchmark` and a quick look.
#include <benchmark/benchmark.h>

#include "conversations.hpp"

namespace {

void round_trip(benchmark::State& state, const char* variant) {
    bench::shape s;
    s.n = static_cast<int>(state.range(0));
    s.length = static_cast<std::size_t>(state.range(1));
    s.half_info = state.range(2) != 0;
    bench::lineup all(s);
    const bench::lineup::entry* e = all.find(variant);
    for (auto _ : state) {
        bool ok = all.call(*e);
        benchmark::DoNotOptimize(ok);
        if (!ok) {
            state.SkipWithError("the conversation failed");
            break;
        }
    }
}

void shapes(benchmark::internal::Benchmark* b) {
    for (long n : {1, 4, 32}) {
        for (long len : {8, 64, 511}) b->Args({n, len, 0});
    }
    b->Args({32, 64, 1});
}

}  // namespace

BENCHMARK_CAPTURE(round_trip, c_minimal, "c_minimal")->Apply(shapes);
BENCHMARK_CAPTURE(round_trip, c_strdup, "c_strdup")->Apply(shapes);
BENCHMARK_CAPTURE(round_trip, c_correct, "c_correct")->Apply(shapes);
BENCHMARK_CAPTURE(round_trip, handoff_per_message, "handoff_per_message")->Apply(shapes);
BENCHMARK_CAPTURE(round_trip, handoff_batch, "handoff_batch")->Apply(shapes);

BENCHMARK_MAIN();
