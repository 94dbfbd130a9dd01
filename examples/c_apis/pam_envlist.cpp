// pam_getenvlist(3): a NULL-terminated array whose strings and array the
// caller frees. transaction::getenvlist returns it as a c_string_list that
// wipes and frees every entry. Run under pam_wrapper with the test services.
//
// The C it replaces:
//   char** env = pam_getenvlist(pamh);
//   for (char** e = env; e && *e; e++) { ...; free(*e); }
//   free(env);
#include <handoff/pam.hpp>

#include <cstdio>
#include <string_view>

int main() {
    namespace pam = handoff::pam;
    pam::transaction tx("permit", "alice", pam::scripted({}));
    if (!tx.started() || !tx.putenv("EXAMPLE=handoff") || !tx.putenv("LANG=C")) return 1;
    int found = 0;
    for (std::string_view entry : tx.getenvlist()) {
        std::printf("%.*s\n", static_cast<int>(entry.size()), entry.data());
        found += entry == "EXAMPLE=handoff" || entry == "LANG=C";
    }
    return found == 2 ? 0 : 1;
}
