// scandir(3) returns a malloc'ed array of malloc'ed entries and a count:
// out_array fills a malloc_array with owns_pointees from that pair, and the
// array frees every entry, then itself.
//
// The C it replaces:
//   struct dirent** list; int n = scandir(dir, &list, NULL, alphasort);
//   if (n < 0) return -1;
//   for (int i = 0; i < n; i++) { ...; free(list[i]); }
//   free(list);             /* and on every early return in the loop */
#include <handoff/handoff.hpp>

#include <dirent.h>
#include <cstdio>
#include <cstring>

using entries = handoff::malloc_array<dirent*, handoff::libc, handoff::owns_pointees>;

int main() {
    entries list;
    int n = 0;
    // The count is scandir's return value: out_array reads it once the whole
    // statement (the assignment included) is done.
    n = ::scandir("/", handoff::out_array(list, n), nullptr, ::alphasort);
    if (n < 0) return 1;
    bool has_etc = false;
    for (const dirent* d : list) has_etc = has_etc || std::strcmp(d->d_name, "etc") == 0;
    std::printf("%zu entries in /, etc %s\n", list.size(), has_etc ? "found" : "missing");
    return has_etc && list.size() == static_cast<std::size_t>(n) ? 0 : 1;
}
