// The core owners against the raw C they replace.
#include <benchmark/benchmark.h>

#include <handoff/handoff.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string text_of(benchmark::State& state) {
    return std::string(static_cast<std::size_t>(state.range(0)), 'p');
}

void raw_strdup(benchmark::State& state) {
    std::string s = text_of(state);
    for (auto _ : state) {
        char* p = ::strdup(s.c_str());
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

void handoff_c_strdup(benchmark::State& state) {
    std::string s = text_of(state);
    for (auto _ : state) {
        auto p = handoff::try_c_strdup(s);
        benchmark::DoNotOptimize(p->get());
    }
}

void raw_calloc_loop(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        int* a = static_cast<int*>(std::calloc(n, sizeof(int)));
        for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<int>(i);
        benchmark::DoNotOptimize(a);
        std::free(a);
    }
}

void handoff_malloc_array(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        auto a = handoff::malloc_array<int>::try_zeroed(n);
        for (std::size_t i = 0; i < n; ++i) (*a)[i] = static_cast<int>(i);
        benchmark::DoNotOptimize(a->data());
    }
}

struct point {
    long x, y;
};

void raw_malloc_free(benchmark::State& state) {
    for (auto _ : state) {
        point* p = static_cast<point*>(std::malloc(sizeof(point)));
        p->x = 1;
        p->y = 2;
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

void handoff_c_unique_ptr(benchmark::State& state) {
    for (auto _ : state) {
        auto p = handoff::try_make_c_unique<point>(point{1, 2});
        benchmark::DoNotOptimize(p->get());
    }
}

std::vector<std::string> strings_of(benchmark::State& state) {
    return std::vector<std::string>(static_cast<std::size_t>(state.range(0)), "NAME=value");
}

void raw_string_list(benchmark::State& state) {
    std::vector<std::string> v = strings_of(state);
    for (auto _ : state) {
        char** list = static_cast<char**>(std::calloc(v.size() + 1, sizeof(char*)));
        for (std::size_t i = 0; i < v.size(); ++i) {
            list[i] = static_cast<char*>(std::malloc(v[i].size() + 1));
            std::memcpy(list[i], v[i].c_str(), v[i].size() + 1);
        }
        benchmark::DoNotOptimize(list);
        for (std::size_t i = 0; i < v.size(); ++i) std::free(list[i]);
        std::free(list);
    }
}

void handoff_c_string_list(benchmark::State& state) {
    std::vector<std::string> v = strings_of(state);
    for (auto _ : state) {
        auto list = handoff::c_string_list<>::try_from(v);
        benchmark::DoNotOptimize(list->get());
    }
}

void raw_free(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        char* p = static_cast<char*>(std::malloc(n));
        std::memset(p, 'k', n);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

void handoff_secure_free(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        auto a = handoff::secure_malloc_array<char>::try_uninitialized(n);
        std::memset(a->data(), 'k', n);
        benchmark::DoNotOptimize(a->data());
    }
}

}  // namespace

BENCHMARK(raw_strdup)->Arg(8)->Arg(64)->Arg(511);
BENCHMARK(handoff_c_strdup)->Arg(8)->Arg(64)->Arg(511);
BENCHMARK(raw_calloc_loop)->Arg(16)->Arg(256);
BENCHMARK(handoff_malloc_array)->Arg(16)->Arg(256);
BENCHMARK(raw_malloc_free);
BENCHMARK(handoff_c_unique_ptr);
BENCHMARK(raw_string_list)->Arg(4)->Arg(32);
BENCHMARK(handoff_c_string_list)->Arg(4)->Arg(32);
BENCHMARK(raw_free)->Arg(64)->Arg(512);
BENCHMARK(handoff_secure_free)->Arg(64)->Arg(512);

BENCHMARK_MAIN();
