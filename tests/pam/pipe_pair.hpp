// A pipe for the terminal tests: the test writes answers into write_end and
// the terminal reads read_end, or the terminal writes prompts the test reads.
// An end set to -1 (close_writer) is not closed again.
#pragma once

#include "../doctest.hpp"

#include <string_view>

#include <unistd.h>

struct pipe_pair {
    int read_end = -1;
    int write_end = -1;
    pipe_pair() {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~pipe_pair() {
        if (read_end >= 0) ::close(read_end);
        if (write_end >= 0) ::close(write_end);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    void write(std::string_view s) const {
        REQUIRE(::write(write_end, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    }
    void close_writer() {
        ::close(write_end);
        write_end = -1;
    }
};
