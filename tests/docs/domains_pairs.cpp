// Completes docs/domains.md's allocator pairs (SQLite, GLib, OpenSSL) and uses
// each domain once.
// doc-test-pkg-config: sqlite3 glib-2.0 libcrypto
#include <cstdio>

#include <handoff/handoff.hpp>

#include DOC_BLOCK

int main() {
    auto a = handoff::c_strdup<sqlite_domain>("sqlite");
    auto b = handoff::c_strdup<glib_domain>("glib");
    auto c = handoff::c_strdup<glib_try_domain>("glib, or NULL");
    auto d = handoff::c_strdup<openssl_domain>("openssl");
    std::printf("%s %s %s %s\n", a.get(), b.get(), c.get(), d.get());
}
