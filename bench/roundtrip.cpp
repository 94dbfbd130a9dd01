// Conversation round trips (the conversation, then the reply freed as libpam
// frees it), wall time, every variant interleaved in one process.
//
//   roundtrip [--rounds R] [--slice-us T] [--shapes 1x8,32x64h,...] [--markdown]
//
// For each shape, R rounds; in each round every variant runs one slice of K
// round trips (K chosen so a c_correct slice takes about T microseconds), in
// an order that rotates from round to round. A variant's ratio to c_correct
// is taken within each round, so drift of the machine between rounds (other
// processes, frequency) cancels; the table shows the median ratio over the
// rounds and its spread (25th to 75th percentile).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "conversations.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double slice_ns(bench::lineup& all, const bench::lineup::entry& e, long calls) {
    auto start = clock_type::now();
    for (long k = 0; k < calls; ++k) {
        if (!all.call(e)) {
            std::fprintf(stderr, "%s failed\n", e.name);
            std::exit(1);
        }
    }
    auto spent = std::chrono::duration<double, std::nano>(clock_type::now() - start).count();
    return spent / static_cast<double>(calls);
}

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    double at = q * static_cast<double>(v.size() - 1);
    std::size_t lo = static_cast<std::size_t>(at);
    std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        std::size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        if (comma > start) out.push_back(s.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 101;
    double slice_us = 200;
    std::string shapes = "1x8,1x511,4x8,4x64,16x64,32x8,32x64,32x511,32x64h";
    bool markdown = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc) {
            rounds = std::atoi(argv[++i]);
        } else if (a == "--slice-us" && i + 1 < argc) {
            slice_us = std::atof(argv[++i]);
        } else if (a == "--shapes" && i + 1 < argc) {
            shapes = argv[++i];
        } else if (a == "--markdown") {
            markdown = true;
        } else {
            std::fprintf(stderr,
                         "usage: roundtrip [--rounds R] [--slice-us T] [--shapes A,B] "
                         "[--markdown]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;

    bool header = false;
    for (const std::string& name : split(shapes)) {
        bench::shape s;
        if (!bench::shape::parse(name, s)) {
            std::fprintf(stderr, "bad shape %s\n", name.c_str());
            return 2;
        }
        bench::lineup all(s);
        const auto& entries = all.entries();
        const bench::lineup::entry* base = all.find("c_correct");
        // Warm up every variant, then size the slice on c_correct.
        for (const auto& e : entries) slice_ns(all, e, 1000);
        double one = slice_ns(all, *base, 2000);
        long calls = std::max(1L, static_cast<long>(slice_us * 1000.0 / one));

        std::size_t v = entries.size();
        std::vector<std::vector<double>> ns(v), ratio(v);
        for (int r = 0; r < rounds; ++r) {
            std::vector<double> t(v);
            for (std::size_t k = 0; k < v; ++k) {
                std::size_t i = (k + static_cast<std::size_t>(r)) % v;  // rotating order
                t[i] = slice_ns(all, entries[i], calls);
            }
            double b = t[static_cast<std::size_t>(base - entries.data())];
            for (std::size_t i = 0; i < v; ++i) {
                ns[i].push_back(t[i]);
                ratio[i].push_back(t[i] / b);
            }
        }

        if (markdown) {
            if (!header) {
                std::printf("| shape | c_correct ns |");
                for (const auto& e : entries) {
                    if (&e != base) std::printf(" %s |", e.name);
                }
                std::printf("\n|---|---|");
                for (std::size_t i = 1; i < v; ++i) std::printf("---|");
                std::printf("\n");
                header = true;
            }
            std::printf("| %s | %.0f |", s.name().c_str(),
                        quantile(ns[static_cast<std::size_t>(base - entries.data())], 0.5));
            for (std::size_t i = 0; i < v; ++i) {
                if (&entries[i] == base) continue;
                std::printf(" %.2f (%.2f–%.2f) |", quantile(ratio[i], 0.5),
                            quantile(ratio[i], 0.25), quantile(ratio[i], 0.75));
            }
            std::printf("\n");
        } else {
            for (std::size_t i = 0; i < v; ++i) {
                std::printf("%-7s %-20s median %8.1f ns  ratio to c_correct %.3f (%.3f-%.3f)\n",
                            s.name().c_str(), entries[i].name, quantile(ns[i], 0.5),
                            quantile(ratio[i], 0.5), quantile(ratio[i], 0.25),
                            quantile(ratio[i], 0.75));
            }
        }
        std::fflush(stdout);
    }
    return 0;
}
