// Allocation domains: libc, one-line allocator domains, deleter-only domains.
#include <handoff/handoff.hpp>

#include "doctest.hpp"

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "tracked_domain.hpp"

namespace {

// A fake C library with its own allocator, signed size like sqlite3_malloc.
// A domain is a type without state: what it counts is global.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int fake_live = 0;
void* fake_malloc(int n) {
    ++fake_live;
    return std::malloc(static_cast<std::size_t>(n));
}
void* fake_realloc(void* p, int n) {
    if (p == nullptr) ++fake_live;
    return std::realloc(p, static_cast<std::size_t>(n));
}
void fake_free(void* p) {
    if (p != nullptr) --fake_live;
    std::free(p);
}
using fake_domain = handoff::allocator_domain<fake_malloc, fake_free, fake_realloc, 8>;
using fake_no_realloc = handoff::allocator_domain<fake_malloc, fake_free>;

struct widget {
    int id;
};
// A domain is a type without state: what it counts is global.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int widgets_destroyed = 0;
void destroy_widget(widget* w) {
    ++widgets_destroyed;
    std::free(w);
}
using widget_domain = handoff::deleter_domain<destroy_widget>;

}  // namespace

TEST_CASE("libc domain allocates and frees with malloc and free") {
    void* p = handoff::libc::allocate(16);
    REQUIRE(p != nullptr);
    handoff::libc::deallocate(p);
    void* z = handoff::libc::allocate_zeroed(4, 4);
    REQUIRE(z != nullptr);
    CHECK(static_cast<unsigned char*>(z)[15] == 0);
    handoff::libc::deallocate(z);
}

TEST_CASE("allocator_domain routes allocation and free to the named functions") {
    fake_live = 0;
    {
        auto s = handoff::try_c_strdup<fake_domain>("hello");
        REQUIRE(s);
        CHECK(fake_live == 1);
        CHECK(std::string_view(s->get()) == "hello");
    }
    CHECK(fake_live == 0);
}

TEST_CASE("allocator_domain refuses sizes its allocator cannot express") {
    fake_live = 0;
    std::size_t too_big = static_cast<std::size_t>(std::numeric_limits<int>::max()) + 1;
    CHECK(fake_domain::allocate(too_big) == nullptr);
    CHECK(fake_live == 0);
}

TEST_CASE("allocator_domain grows through its realloc when it has one") {
    fake_live = 0;
    {
        auto a = *handoff::malloc_array<int, fake_domain>::try_zeroed(2);
        a[0] = 7;
        REQUIRE(a.try_resize(100) == handoff::errc::ok);
        CHECK(a[0] == 7);
        CHECK(a[99] == 0);
        CHECK(fake_live == 1);
    }
    CHECK(fake_live == 0);
}

TEST_CASE("allocator_domain without realloc grows by allocate, copy and free") {
    fake_live = 0;
    {
        auto a = *handoff::malloc_array<int, fake_no_realloc>::try_zeroed(2);
        a[1] = 9;
        REQUIRE(a.try_resize(50) == handoff::errc::ok);
        CHECK(a[1] == 9);
        CHECK(a[49] == 0);
        CHECK(fake_live == 1);
    }
    CHECK(fake_live == 0);
}

TEST_CASE("deleter_domain releases with its function") {
    widgets_destroyed = 0;
    {
        auto* raw = static_cast<widget*>(std::malloc(sizeof(widget)));
        REQUIRE(raw != nullptr);
        auto w = handoff::adopt<widget_domain>(raw);
        CHECK(w.get() == raw);
    }
    CHECK(widgets_destroyed == 1);
}

TEST_CASE("deleter_domain does not call its function for NULL") {
    widgets_destroyed = 0;
    { handoff::c_unique_ptr<widget, widget_domain> w; }
    CHECK(widgets_destroyed == 0);
}

namespace {
// An opaque C handle: declared, never defined, like sqlite3 or FILE.
struct opaque_handle;
// A domain is a type without state: what it counts is global.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int opaque_closed = 0;
void close_opaque(opaque_handle* h) {
    ++opaque_closed;
    std::free(h);
}
}  // namespace

TEST_CASE("a deleter-only domain owns an opaque, incomplete C type") {
    opaque_closed = 0;
    {
        auto* h = static_cast<opaque_handle*>(std::malloc(16));
        REQUIRE(h != nullptr);
        handoff::c_unique_ptr<opaque_handle, handoff::deleter_domain<close_opaque>> owner(h);
        CHECK(owner.get() == h);
    }
    CHECK(opaque_closed == 1);
}

TEST_CASE("owners of different domains are different types") {
    CHECK_FALSE(std::is_convertible_v<handoff::c_unique_ptr<char, handoff_test::tracked>&&,
                                      handoff::c_unique_ptr<char>>);
    CHECK_FALSE(std::is_assignable_v<handoff::malloc_array<int>&,
                                     handoff::malloc_array<int, handoff_test::tracked>&&>);
}
