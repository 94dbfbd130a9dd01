// GLib has its own allocator: memory that GLib frees (g_strfreev, GBytes,
// g_free) must come from g_malloc, and GLib's results must go back through
// g_free. One line declares the domain; GLib's attributed allocators
// (G_GNUC_MALLOC, G_GNUC_ALLOC_SIZE) compile without a warning under
// -Wall -Wextra -Werror with GCC and Clang.
//
// The C it replaces:
//   gchar** parts = g_strsplit(csv, ",", -1);      /* g_strfreev, not free */
//   ...; g_strfreev(parts);                        /* and on every early return */
//   guint8* data = g_malloc(cap); ... data = g_realloc(data, cap *= 2); ...
//   GBytes* bytes = g_bytes_new_take(data, len);   /* GBytes g_free()s it */
#include <handoff/handoff.hpp>

#include <glib.h>
#include <cstdio>
#include <cstring>
#include <string>

// g_malloc aborts when memory runs out; g_try_malloc returns NULL, which the
// try_ forms then report as errc::out_of_memory.
using glib_domain = handoff::allocator_domain<g_malloc, g_free, g_realloc>;
using glib_try_domain = handoff::allocator_domain<g_try_malloc, g_free, g_try_realloc>;

int main() {
    // A GLib result adopted: g_strsplit's array and strings are freed as
    // g_strfreev would, with g_free.
    auto parts = handoff::c_string_list<glib_domain>::adopt(g_strsplit("red,green,blue", ",", -1));
    if (parts.size() != 3 || parts[1] != "green") return 1;

    // A list built in C++ and given to GLib, which frees it with g_strfreev.
    auto made = handoff::c_string_list<glib_try_domain>::try_from({"x", "y", "z"});
    if (!made) return 1;
    handoff::c_unique_ptr<gchar, glib_domain> joined(g_strjoinv("+", made->get()));
    g_strfreev(std::move(*made).release());
    if (std::strcmp(joined.get(), "x+y+z") != 0) return 1;

    // Bytes of unknown length grown with g_realloc, then handed to GBytes,
    // which takes the block and g_free()s it.
    handoff::malloc_vector<char, glib_domain> buffer;
    for (const auto& s : parts) {
        if (buffer.try_append(s.data(), s.size()) != handoff::errc::ok) return 1;
        if (buffer.try_push_back(';') != handoff::errc::ok) return 1;
    }
    handoff::malloc_array<char, glib_domain> exact = std::move(buffer).to_array();
    std::size_t length = exact.size();
    GBytes* bytes = g_bytes_new_take(std::move(exact).release(), length);
    gsize size = 0;
    const char* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
    std::string text(data, size);
    g_bytes_unref(bytes);

    std::printf("%s\n", text.c_str());
    return text == "red;green;blue;" ? 0 : 1;
}
