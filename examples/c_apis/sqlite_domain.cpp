// sqlite3 has its own allocator: memory for sqlite3_bind_text with a
// destructor, or for sqlite3_result_text, must come from sqlite3_malloc64 and
// is freed by sqlite3 with sqlite3_free. A one-line domain keeps it apart from
// malloc'ed memory at compile time.
//
// The C it replaces:
//   char* copy = sqlite3_malloc64(len + 1);            /* not malloc! */
//   if (!copy) return SQLITE_NOMEM;
//   memcpy(copy, text, len); copy[len] = 0;
//   sqlite3_bind_text(stmt, 1, copy, (int)len, sqlite3_free);   /* sqlite owns it now */
#include <handoff/handoff.hpp>

#include <sqlite3.h>
#include <cstdio>
#include <cstring>
#include <string>

using sqlite_domain =
    handoff::allocator_domain<sqlite3_malloc64, sqlite3_free, sqlite3_realloc64, 8>;
using sqlite_string = handoff::c_unique_ptr<char, sqlite_domain>;

// A SQL function greet(name) whose result text is built in sqlite's domain and
// handed over with sqlite3_free as its destructor.
void greet(sqlite3_context* ctx, int, sqlite3_value** argv) {
    // sqlite3 returns UTF-8 text as unsigned char.
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
    const char* name = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    std::string text = std::string("hello, ") + (name != nullptr ? name : "nobody");
    handoff::result<sqlite_string> copy = handoff::try_c_strdup<sqlite_domain>(text);
    if (!copy) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, copy->release(), static_cast<int>(text.size()), sqlite3_free);
}

int main() {
    sqlite3* raw_db = nullptr;
    if (sqlite3_open(":memory:", &raw_db) != SQLITE_OK) return 1;
    handoff::c_unique_ptr<sqlite3, handoff::deleter_domain<sqlite3_close>> db(raw_db);
    sqlite3_create_function(db.get(), "greet", 1, SQLITE_UTF8, nullptr, greet, nullptr, nullptr);

    sqlite3_stmt* raw_stmt = nullptr;
    if (sqlite3_prepare_v2(db.get(), "SELECT greet(?1)", -1, &raw_stmt, nullptr) != SQLITE_OK)
        return 1;
    handoff::c_unique_ptr<sqlite3_stmt, handoff::deleter_domain<sqlite3_finalize>> stmt(raw_stmt);

    handoff::result<sqlite_string> name = handoff::try_c_strdup<sqlite_domain>("world");
    if (!name) return 1;
    // sqlite3 takes ownership and frees with sqlite3_free, even if binding fails.
    if (sqlite3_bind_text(stmt.get(), 1, name->release(), 5, sqlite3_free) != SQLITE_OK) return 1;
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return 1;
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): UTF-8 as unsigned char
    const char* out = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    std::printf("%s\n", out);
    // Everything sqlite3 allocated is back once the statement and db are closed.
    return out != nullptr && std::strcmp(out, "hello, world") == 0 ? 0 : 1;
}
