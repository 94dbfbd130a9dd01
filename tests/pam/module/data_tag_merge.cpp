// Built with -fmerge-all-constants (meson.build): GCC may then merge equal
// constants, and per-type tags that were constants of one value shared an
// address, so two types under one name shared a stored name (get_data read
// one type's object as the other). Each type's stored name must differ.
#include <handoff/pam_module.hpp>

#include <cstdio>
#include <cstring>

namespace pam = handoff::pam;

namespace {
struct first {
    long value = 0;
};
struct second {
    char* text = nullptr;
};
}  // namespace

int main() {
    constexpr pam::data_key<first> first_key{"test.merge"};
    constexpr pam::data_key<second> second_key{"test.merge"};
    const pam::detail::stored_data_name a(first_key);
    const pam::detail::stored_data_name b(second_key);
    if (std::strcmp(a.c_str(), b.c_str()) == 0) {
        std::fprintf(stderr, "two types share the stored name %s\n", a.c_str());
        return 1;
    }
    return 0;
}
