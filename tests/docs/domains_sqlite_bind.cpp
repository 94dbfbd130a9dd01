// Completes docs/domains.md's sqlite3_bind_text block: a statement that reads
// the bound text back.
// doc-test-pkg-config: sqlite3
#include <cstdio>

#include <sqlite3.h>

#include <handoff/handoff.hpp>

using sqlite_domain =
    handoff::allocator_domain<sqlite3_malloc64, sqlite3_free, sqlite3_realloc64, 8>;

int main() {
    sqlite3* db = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
    if (sqlite3_prepare_v2(db, "SELECT 'hello, ' || ?", -1, &stmt, nullptr) != SQLITE_OK) return 1;
#include DOC_BLOCK
    if (sqlite3_step(stmt) != SQLITE_ROW) return 1;
    std::printf("%s\n", reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}
