// scandir(3) returns a malloc'ed array of malloc'ed entries and a count:
// malloc_array with owns_pointees frees every entry, then the array.
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
    dirent** raw = nullptr;
    int n = ::scandir("/", &raw, nullptr, ::alphasort);
    if (n < 0) return 1;
    entries list = entries::adopt(raw, static_cast<std::size_t>(n));
    bool has_etc = false;
    for (const dirent* d : list) has_etc = has_etc || std::strcmp(d->d_name, "etc") == 0;
    std::printf("%zu entries in /, etc %s\n", list.size(), has_etc ? "found" : "missing");
    return has_etc ? 0 : 1;
}
