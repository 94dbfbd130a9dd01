// getline(3) with inout_ptr: the buffer is reused and grown by getline and
// freed once, whatever path leaves the loop.
//
// The C it replaces:
//   char* line = NULL; size_t cap = 0; ssize_t n;
//   while ((n = getline(&line, &cap, f)) != -1) { ...; }
//   free(line);             /* forgotten on an early return: a leak */
#include <handoff/handoff.hpp>

#include <cstdio>
#include <cstring>

int main() {
    char text[] = "alpha\nbeta\ngamma delta epsilon zeta eta theta\n";
    FILE* f = ::fmemopen(text, std::strlen(text), "r");
    if (f == nullptr) return 1;
    handoff::c_unique_ptr<char> line;
    std::size_t capacity = 0;
    int lines = 0;
    while (::getline(handoff::inout_ptr(line), &capacity, f) != -1) ++lines;
    static_cast<void>(std::fclose(f));  // a stream opened for reading: nothing is lost
    std::printf("%d lines, last: %s", lines, line.get());
    return lines == 3 && std::strncmp(line.get(), "gamma", 5) == 0 ? 0 : 1;
}
