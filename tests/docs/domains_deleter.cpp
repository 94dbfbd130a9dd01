// Completes docs/domains.md's deleter domains: a numeric address (no network),
// an in-memory database and a file that exists.
// doc-test-pkg-config: sqlite3
#include <cstdio>

#include <netdb.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include <handoff/handoff.hpp>

int main() {
    const char* host = "127.0.0.1";
    const char* port = "22";
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    sqlite3* raw_db = nullptr;
    if (sqlite3_open(":memory:", &raw_db) != SQLITE_OK) return 1;
    const char* path = "/dev/null";
#include DOC_BLOCK
    std::printf("%s %s %s\n", res ? "address" : "no address", db ? "database" : "no database",
                file ? "file" : "no file");
}
