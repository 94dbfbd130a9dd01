// Owners against the C they replace, for instruction counting under callgrind
// (bench/owners_instructions.py).
//
//   owners_workload OPERATION SIZE CALLS
//
// Each OPERATION is a pair of functions, raw_OP (the C a careful engineer
// writes) and handoff_OP, kept out of line and run CALLS times with SIZE; the
// script counts the instructions inside each function alone (what it calls
// included: malloc, strlen, memcpy), never the free that follows. Prints the
// two function names for callgrind's --toggle-collect.
#include <handoff/handoff.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <string.h>  // strdup

#define BENCH_OUT_OF_LINE extern "C" __attribute__((noinline))

// c_strdup(const char*) against strdup: one scan, then the string copied with
// its NUL (a NULL string throws where strdup would crash).
BENCH_OUT_OF_LINE char* raw_strdup(const char* s) { return ::strdup(s); }
BENCH_OUT_OF_LINE char* handoff_strdup(const char* s) { return handoff::c_strdup(s).release(); }

// n ints pushed one by one, then handed off as pointer + length. The C is the
// doubling loop: a capacity of 4, then twice the last, the byte count checked,
// realloc, and on failure the block freed.
BENCH_OUT_OF_LINE int* raw_push_back(std::size_t n, std::size_t* length) {
    int* data = nullptr;
    std::size_t size = 0;
    std::size_t capacity = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (size == capacity) {
            std::size_t grown = capacity == 0 ? 4 : 2 * capacity;
            if (grown > SIZE_MAX / 2 / sizeof(int)) {
                std::free(data);
                return nullptr;
            }
            void* p = std::realloc(data, grown * sizeof(int));
            if (p == nullptr) {
                std::free(data);
                return nullptr;
            }
            data = static_cast<int*>(p);
            capacity = grown;
        }
        data[size++] = static_cast<int>(i);
    }
    *length = size;
    return data;
}
BENCH_OUT_OF_LINE int* handoff_push_back(std::size_t n, std::size_t* length) {
    handoff::malloc_vector<int> v;
    for (std::size_t i = 0; i < n; ++i) {
        if (v.try_push_back(static_cast<int>(i)) != handoff::errc::ok) return nullptr;
    }
    auto out = std::move(v).release_with_size();
    *length = out.size;
    return out.data;
}

// n zeroed ints handed off. The C is calloc alone, which refuses an overflow
// itself; handoff also tests for zero (an empty array owns no block) and for
// overflow (to report too_large, not out_of_memory).
BENCH_OUT_OF_LINE int* raw_zeroed(std::size_t n) {
    return static_cast<int*>(std::calloc(n, sizeof(int)));
}
BENCH_OUT_OF_LINE int* handoff_zeroed(std::size_t n) {
    auto a = handoff::malloc_array<int>::try_zeroed(n);
    return std::move(*a).release();
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: owners_workload strdup|push_back|zeroed SIZE CALLS\n");
        return 2;
    }
    const std::string op = argv[1];
    const std::size_t size = std::strtoul(argv[2], nullptr, 10);
    const long calls = std::atol(argv[3]);
    const std::string text(size, 'p');
    bool raw = true;  // each call runs both functions, so both see the same heap
    for (long k = 0; k < 2 * calls; ++k, raw = !raw) {
        void* made = nullptr;
        std::size_t length = 0;
        if (op == "strdup") {
            made = raw ? raw_strdup(text.c_str()) : handoff_strdup(text.c_str());
        } else if (op == "push_back") {
            made = raw ? raw_push_back(size, &length) : handoff_push_back(size, &length);
            if (made != nullptr && length != size) return 1;
        } else if (op == "zeroed") {
            made = raw ? raw_zeroed(size) : handoff_zeroed(size);
        } else {
            std::fprintf(stderr, "unknown operation %s\n", argv[1]);
            return 2;
        }
        if (made == nullptr && size != 0) return 1;
        std::free(made);
    }
    std::printf("functions raw_%s handoff_%s\n", op.c_str(), op.c_str());
    return 0;
}
