// handoff: memory that crosses into C, owned the C way.
// SPDX-License-Identifier: MIT
//
// One header, no dependencies beyond the C and C++ standard libraries. It can be
// copied into a project alone.
//
// Sections, in the order a reader needs them:
//   1. configuration and errors      (errc, result<T>)
//   2. allocation domains            (libc, allocator_domain, deleter_domain)
//   3. c_unique_ptr                  (one object or an adopted C pointer)
//   4. malloc_array, malloc_vector   (pointer + length, element policies; growth)
//   5. C strings                     (c_strdup, c_string_list)
//   6. secrets                       (secure_wipe, secure_c_string, secret_string)
//   7. out-parameters                (out_ptr, inout_ptr, out_array)
//
// What the types check, and what they cannot. Every owner names its domain in
// its type, so moving or assigning an owner into an owner of another domain, or
// passing it to a function whose parameter names another domain, does not
// compile. A raw pointer carries no domain: memory that leaves an owner as a T*
// (get(), release()) or enters one as a T* (adopt(), reset(p), a pointer
// constructor) is checked by nobody, which is why each of those calls has a
// Safety paragraph.
#ifndef HANDOFF_HANDOFF_HPP
#define HANDOFF_HANDOFF_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "handoff needs C++17 or later (compile with -std=c++17 or newer)"
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#if __has_include(<span>) && __cplusplus > 201703L
#include <span>
#endif
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#include <stdexcept>
#define HANDOFF_HAS_EXCEPTIONS 1
#else
#define HANDOFF_HAS_EXCEPTIONS 0
#endif

// GCC predicts a branch to `return NULL` unlikely, but has no such rule for a
// branch that returns an empty owner; this hint gives both the same layout.
// Clang predicts them alike already.
#if defined(__GNUC__) && !defined(__clang__)
#define HANDOFF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HANDOFF_UNLIKELY(x) (x)
#endif

#define HANDOFF_VERSION_MAJOR 0
#define HANDOFF_VERSION_MINOR 2
#define HANDOFF_VERSION_PATCH 0
#define HANDOFF_VERSION "0.2.0"

// GCC can pair an allocation function with its deallocator and warn when the
// result reaches the wrong one (-Wmismatched-dealloc, GCC >= 11).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define HANDOFF_MALLOC_FREED_BY(dealloc) __attribute__((malloc, malloc(dealloc, 1)))
#elif defined(__clang__)
// Clang's static analyser (unix.MismatchedDeallocator) reads ownership_returns.
#define HANDOFF_MALLOC_FREED_BY(dealloc) __attribute__((malloc, ownership_returns(malloc)))
#elif defined(__GNUC__)
#define HANDOFF_MALLOC_FREED_BY(dealloc) __attribute__((malloc))
#else
#define HANDOFF_MALLOC_FREED_BY(dealloc)
#endif

// Clang warns when a reference or pointer returned by an accessor outlives the
// object (or the temporary) it points into. Other compilers ignore it.
#if defined(__has_cpp_attribute)
#if __has_cpp_attribute(clang::lifetimebound)
#define HANDOFF_LIFETIMEBOUND [[clang::lifetimebound]]
#endif
#endif
#ifndef HANDOFF_LIFETIMEBOUND
#define HANDOFF_LIFETIMEBOUND
#endif

// Symbol visibility: with HANDOFF_HIDDEN_VISIBILITY set to 1 (pam_module.hpp
// sets it: a PAM module must export its pam_sm_* functions only), every
// declaration of the library is hidden, so its inline functions, typeinfo and
// vtables stay inside the shared object that uses them. Off by default: an
// exception thrown in one shared object and caught in another needs visible
// typeinfo with libc++.
#if defined(HANDOFF_HIDDEN_VISIBILITY) && defined(__GNUC__)
#if HANDOFF_HIDDEN_VISIBILITY
#pragma GCC visibility push(hidden)
#define HANDOFF_POP_VISIBILITY 1
#endif
#endif

namespace handoff {

// ===========================================================================
// 1. Configuration and errors
// ===========================================================================

// Why a non-throwing operation failed. [[nodiscard]]: every function that
// returns an errc (try_resize, try_append, ...) warns when its result is
// ignored. The throwing forms map these to std::bad_alloc, std::length_error,
// std::invalid_argument and std::logic_error.
enum class [[nodiscard]] errc : unsigned char{
    ok = 0,
    out_of_memory,  // the domain's allocator returned NULL
    too_large,      // n * sizeof(T) (or a length + 1) does not fit in size_t
    embedded_nul,   // a string to become a C string contains '\0'
    null_pointer,   // a NULL C string, or a NULL source with a non-zero count
    no_value,       // a result<T> was built from errc::ok: a success needs a value
};

constexpr const char* to_string(errc e) noexcept {
    switch (e) {
    case errc::ok: return "ok";
    case errc::out_of_memory: return "out of memory";
    case errc::too_large: return "size overflows size_t";
    case errc::embedded_nul: return "embedded NUL in a C string";
    case errc::null_pointer: return "NULL where a string or data was required";
    case errc::no_value: return "result built from errc::ok without a value";
    }
    return "unknown handoff error";
}

// Clang refuses `return errc::ok;` into a result<T> at compile time.
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(diagnose_if)
#define HANDOFF_REFUSE_OK(e)                                                          \
    __attribute__((diagnose_if((e) == ::handoff::errc::ok,                            \
                               "handoff: a result<T> cannot be built from errc::ok; " \
                               "a success needs a value",                             \
                               "error")))
#endif
#endif
#ifndef HANDOFF_REFUSE_OK
#define HANDOFF_REFUSE_OK(e)
#endif

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgcc-compat"  // diagnose_if is Clang's own
#endif

// What every try_ factory returns: an owner (empty on failure) and the reason.
// The owner types are all cheap to default-construct, so no optional is needed.
//
// Success comes only from a value. A result built from an errc is a failure;
// built from errc::ok it is refused: a compile error with Clang when the
// errc is a constant, and with every compiler a failure whose error() is
// errc::no_value.
//
// `*r` on an lvalue gives a reference to the owner; on an rvalue (a temporary
// such as `*try_from(...)`) it gives the owner itself, moved out, so a range-for
// over `*make()` iterates a live object and nothing dangles. `r->` exists on
// lvalues only: on a temporary it could only point into an owner about to be
// destroyed, so it does not compile.
template <class T>
class [[nodiscard]] result {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "handoff: result<T> holds owners, which move without throwing");

public:
    result(T value) noexcept : value_(std::move(value)) {}
    result(errc error) noexcept HANDOFF_REFUSE_OK(error)
        : error_(error == errc::ok ? errc::no_value : error) {}

    explicit operator bool() const noexcept { return error_ == errc::ok; }
    errc error() const noexcept { return error_; }

    T& operator*() & noexcept HANDOFF_LIFETIMEBOUND { return value_; }
    const T& operator*() const& noexcept HANDOFF_LIFETIMEBOUND { return value_; }
    T operator*() && noexcept { return std::move(value_); }
    const T& operator*() const&& = delete;  // would dangle: take the result by value
    T* operator->() & noexcept HANDOFF_LIFETIMEBOUND { return &value_; }
    const T* operator->() const& noexcept HANDOFF_LIFETIMEBOUND { return &value_; }
    // `try_c_strdup("x")->get()` would point into an owner destroyed at the end
    // of the statement: on a temporary, take the owner with `*` first
    // (`(*try_c_strdup("x")).release()`) or name the result.
    T* operator->() && = delete;
    const T* operator->() const&& = delete;

private:
    T value_{};
    errc error_ = errc::ok;
};

#if defined(__clang__)
#pragma clang diagnostic pop
#endif

namespace detail {

#if HANDOFF_HAS_EXCEPTIONS
[[noreturn]] inline void throw_error(errc e) {
    switch (e) {
    case errc::too_large: throw std::length_error("handoff: size overflows size_t");
    case errc::embedded_nul: throw std::invalid_argument("handoff: embedded NUL in a C string");
    case errc::null_pointer:
        throw std::invalid_argument("handoff: NULL where a string or data was required");
    case errc::ok:
    case errc::no_value:
        throw std::logic_error("handoff: result built from errc::ok without a value");
    case errc::out_of_memory: break;
    }
    throw std::bad_alloc();
}

// Unwraps a result for the throwing forms.
template <class T>
T value_or_throw(result<T>&& r) {
    if (!r) throw_error(r.error());
    return std::move(*r);
}
#endif

// n * size without wrapping; false when it would wrap.
constexpr bool checked_multiply(std::size_t n, std::size_t size, std::size_t& out) noexcept {
    if (size != 0 && n > std::numeric_limits<std::size_t>::max() / size) return false;
    out = n * size;
    return true;
}

template <class T>
void* as_void(T* p) noexcept {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): free() takes void*, also for const T
    return const_cast<void*>(static_cast<const volatile void*>(p));
}

}  // namespace detail

// ===========================================================================
// 2. Allocation domains
// ===========================================================================
//
// A domain is a stateless type that names who frees a piece of memory. Owners
// carry their domain in their type, so memory of one domain cannot be handed to
// an owner or an API of another: that is a type mismatch at compile time.
//
// An allocator domain provides
//   static void* allocate(std::size_t bytes) noexcept;          // NULL on failure
//   static void  deallocate(void* p) noexcept;                  // must accept NULL
// and optionally
//   static void* allocate_zeroed(std::size_t n, std::size_t size) noexcept;
//   static void* reallocate(void* p, std::size_t bytes) noexcept;
//   static constexpr std::size_t alignment;                     // guaranteed alignment
// A deleter-only domain provides just `template <class T> static void destroy(T*)`
// and can own C results (freeaddrinfo, sqlite3_close) but never allocate.

// The C library's allocator: malloc / calloc / realloc / free.
struct libc {
    static constexpr std::size_t alignment = alignof(std::max_align_t);
    static void* allocate(std::size_t bytes) noexcept { return std::malloc(bytes); }
    static void* allocate_zeroed(std::size_t n, std::size_t size) noexcept {
        return std::calloc(n, size);
    }
    static void* reallocate(void* p, std::size_t bytes) noexcept { return std::realloc(p, bytes); }
    static void deallocate(void* p) noexcept { std::free(p); }
};

namespace detail {

template <class Size, class Fn>
void* call_allocator(Fn fn, std::size_t bytes) noexcept {
    // Allocators such as sqlite3_malloc take a narrower or signed size.
    if (bytes > static_cast<std::make_unsigned_t<Size>>(std::numeric_limits<Size>::max())) {
        return nullptr;
    }
    return fn(static_cast<Size>(bytes));
}

// The size parameter of an allocator, deduced from a call rather than named in
// a template argument: GCC warns (-Wignored-attributes, an error under
// -Werror) when a function type that carries attributes, such as g_malloc's
// malloc and alloc_size, becomes a template argument.
template <class R, class A, class... Rest>
A first_parameter(R (*)(A, Rest...));
template <class R, class A, class... Rest>
A first_parameter(R (*)(A, Rest...) noexcept);
template <class R, class A, class B>
B second_parameter(R (*)(A, B));
template <class R, class A, class B>
B second_parameter(R (*)(A, B) noexcept);

}  // namespace detail

// A domain for another C library's allocator, declared in one line:
//   using sqlite_domain = handoff::allocator_domain<sqlite3_malloc64, sqlite3_free,
//                                                   sqlite3_realloc64, 8>;
// Alloc(size) and Free(ptr) are required; Realloc(ptr, size) is optional
// (nullptr when the library has none). Alignment is what Alloc guarantees.
// They must be functions: allocators that are function-pointer variables
// (libxml2's xmlMalloc, changed by xmlMemSetup) need a domain written by hand
// whose members call them (docs/domains.md).
template <auto Alloc, auto Free, auto Realloc = nullptr,
          std::size_t Alignment = alignof(std::max_align_t)>
struct allocator_domain {
    static constexpr std::size_t alignment = Alignment;
    static void* allocate(std::size_t bytes) noexcept {
        using size_type = decltype(detail::first_parameter(Alloc));
        return detail::call_allocator<size_type>(
            [](size_type n) noexcept { return static_cast<void*>(Alloc(n)); }, bytes);
    }
    static void deallocate(void* p) noexcept {
        if (p != nullptr) Free(p);
    }
    template <auto R = Realloc, std::enable_if_t<!std::is_null_pointer_v<decltype(R)>, int> = 0>
    static void* reallocate(void* p, std::size_t bytes) noexcept {
        using size_type = decltype(detail::second_parameter(R));
        return detail::call_allocator<size_type>(
            [p](size_type n) noexcept { return static_cast<void*>(R(p, n)); }, bytes);
    }
};

// A domain for C results released by one function, e.g.
//   using addrinfo_domain = handoff::deleter_domain<freeaddrinfo>;
template <auto Free>
struct deleter_domain {
    template <class T>
    static void destroy(T* p) noexcept {
        if (p != nullptr) Free(p);
    }
};

namespace detail {

template <class D, class = void>
struct can_allocate : std::false_type {};
template <class D>
struct can_allocate<D, std::void_t<decltype(D::allocate(std::size_t{})),
                                   decltype(D::deallocate(static_cast<void*>(nullptr)))>>
    : std::true_type {};

template <class D, class = void>
struct can_allocate_zeroed : std::false_type {};
template <class D>
struct can_allocate_zeroed<D,
                           std::void_t<decltype(D::allocate_zeroed(std::size_t{}, std::size_t{}))>>
    : std::true_type {};

template <class D, class = void>
struct can_reallocate : std::false_type {};
template <class D>
struct can_reallocate<
    D, std::void_t<decltype(D::reallocate(static_cast<void*>(nullptr), std::size_t{}))>>
    : std::true_type {};

template <class D, class = void>
struct domain_alignment : std::integral_constant<std::size_t, alignof(std::max_align_t)> {};
template <class D>
struct domain_alignment<D, std::void_t<decltype(D::alignment)>>
    : std::integral_constant<std::size_t, D::alignment> {};

// What every allocating factory requires. A class, not a function, so that
// `check_allocatable<D, T>();` at the top of a factory is checked as soon as
// the factory is instantiated: these messages come first, before any error the
// rest of the body would produce (such as "no member named allocate").
template <class D, class T>
struct check_allocatable {
    static_assert(can_allocate<D>::value,
                  "handoff: this domain only releases memory; it cannot allocate");
    static_assert(!std::is_void_v<T>,
                  "handoff: allocate an object type; own a C void* with adopt<Domain>()");
    static_assert(std::is_void_v<T> || std::is_trivially_destructible_v<T>,
                  "handoff: memory that C frees must hold trivially destructible types");
    static_assert(alignof(std::conditional_t<std::is_void_v<T>, char, T>) <=
                      domain_alignment<D>::value,
                  "handoff: the domain's allocator does not align enough for this type");
    constexpr check_allocatable() noexcept = default;
};

// All-zero bytes are the value-initialised T: what zeroed() and the zero tail
// of a growth produce. Not for member pointers, whose null value on the
// Itanium ABI is -1, not zero bytes. (A class holding a member pointer cannot
// be detected; see docs/api.md.)
template <class T>
constexpr bool zero_bytes_are_value_v = !std::is_member_pointer_v<std::remove_all_extents_t<T>> &&
                                        (std::is_trivially_default_constructible_v<T> ||
                                         std::is_pointer_v<T> || std::is_arithmetic_v<T>);

template <class D>
void* allocate_zeroed(std::size_t n, std::size_t size) noexcept {
    if constexpr (can_allocate_zeroed<D>::value) {
        return D::allocate_zeroed(n, size);
    } else {
        std::size_t bytes = 0;
        if (!checked_multiply(n, size, bytes)) return nullptr;
        void* p = D::allocate(bytes);
        if (p != nullptr) std::memset(p, 0, bytes);
        return p;
    }
}

// Frees one pointer the way its domain says.
template <class D, class T>
void release_to(T* p) noexcept {
    if constexpr (can_allocate<D>::value) {
        D::deallocate(as_void(p));
    } else {
        D::template destroy<T>(p);
    }
}

}  // namespace detail

// ===========================================================================
// 3. c_unique_ptr: one C-allocated object or an adopted C pointer
// ===========================================================================

// Empty, const, noexcept deleter: c_unique_ptr is exactly one pointer wide.
// Deleters of different domains do not convert into each other, so moving an
// owner of one domain into an owner of another does not compile.
template <class T, class Domain>
struct domain_deleter {
    using element_type = std::remove_extent_t<T>;
    // disjunction, not ||: a deleter-only domain may own an incomplete type
    // (sqlite3, FILE), whose destructibility must not even be asked about.
    // void is allowed: c_unique_ptr<void, D> owns a C block of no stated type.
    static_assert(
        std::disjunction<std::negation<detail::can_allocate<Domain>>, std::is_void<element_type>,
                         std::is_trivially_destructible<element_type>>::value,
        "handoff: memory that C frees must hold trivially destructible types");

    void operator()(element_type* p) const noexcept { detail::release_to<Domain>(p); }
};

// Owner of memory that Domain frees. An alias of std::unique_ptr, so get /
// release / reset / operator bool / std::out_ptr all work as usual.
template <class T, class Domain = libc>
using c_unique_ptr = std::unique_ptr<T, domain_deleter<T, Domain>>;

// Allocates one T in Domain and constructs it from args (value-initialised
// when args is empty). Empty result on allocation failure.
template <class T, class Domain = libc, class... Args>
result<c_unique_ptr<T, Domain>> try_make_c_unique(Args&&... args) noexcept {
    detail::check_allocatable<Domain, T>();
    static_assert(std::is_nothrow_constructible_v<T, Args...>,
                  "handoff: try_make_c_unique needs a noexcept constructor");
    void* raw = Domain::allocate(sizeof(T));
    if (raw == nullptr) return errc::out_of_memory;
    return c_unique_ptr<T, Domain>(::new (raw) T(std::forward<Args>(args)...));
}

#if HANDOFF_HAS_EXCEPTIONS
// Throwing form: std::bad_alloc on allocation failure; if T's constructor
// throws, the memory is freed before the exception leaves.
template <class T, class Domain = libc, class... Args>
c_unique_ptr<T, Domain> make_c_unique(Args&&... args) {
    detail::check_allocatable<Domain, T>();
    void* raw = Domain::allocate(sizeof(T));
    if (raw == nullptr) throw std::bad_alloc();
    try {
        return c_unique_ptr<T, Domain>(::new (raw) T(std::forward<Args>(args)...));
    } catch (...) {
        Domain::deallocate(raw);
        throw;
    }
}
#endif

// Takes ownership of a pointer that C allocated in Domain.
// Safety: p is NULL or was returned by Domain's allocator (or by a C function
// documented to hand back memory that Domain frees) and is owned by nobody else.
template <class Domain = libc, class T>
[[nodiscard]] c_unique_ptr<T, Domain> adopt(T* p) noexcept {
    return c_unique_ptr<T, Domain>(p);
}

// ===========================================================================
// 4. malloc_array: a C-allocated array with its length
// ===========================================================================
//
// Element policies say what happens to each element before the buffer is freed
// by the owner (never after release()):
//   no_ownership        elements own nothing (default)
//   owns_pointees       each element is a pointer the same domain frees
//   owns_secret_strings each element is a C string wiped (to its NUL) and freed;
//                       the buffer is wiped too
//   secret_bytes        the buffer is wiped before it is freed
// A user policy provides `static constexpr bool wipe_buffer` and
// `template <class Domain, class T> static void release_element(T&) noexcept`
// (noexcept is checked: it runs in destructors and pop_back, where a throw
// would be std::terminate), and `static constexpr bool owns_elements = true`
// when release_element frees each element with Domain (only such a policy
// may hold the strings c_string_list copies; without it, false is assumed).

struct no_ownership {
    static constexpr bool wipe_buffer = false;
    static constexpr bool owns_elements = false;
    template <class Domain, class T>
    static void release_element(T&) noexcept {}
};

struct owns_pointees {
    static constexpr bool wipe_buffer = false;
    static constexpr bool owns_elements = true;
    template <class Domain, class T>
    static void release_element(T& element) noexcept {
        static_assert(std::is_pointer_v<T>, "handoff: owns_pointees needs pointer elements");
        detail::release_to<Domain>(element);
        element = nullptr;
    }
};

struct secret_bytes {
    static constexpr bool wipe_buffer = true;
    static constexpr bool owns_elements = false;
    template <class Domain, class T>
    static void release_element(T&) noexcept {}
};

struct owns_secret_strings;  // defined with the secrets, below

namespace detail {
// Whether a policy says it frees each element with the array's domain.
template <class Elements, class = void>
struct owns_elements : std::false_type {};
template <class Elements>
struct owns_elements<Elements, std::enable_if_t<Elements::owns_elements>> : std::true_type {};

// What every owner checks of its element policy when it is instantiated.
template <class Elements, class Domain, class T>
constexpr bool releases_without_throwing_v =
    noexcept(Elements::template release_element<Domain>(std::declval<T&>()));
}  // namespace detail

inline void secure_wipe(void* p, std::size_t bytes) noexcept;

// Pointer + length of memory allocated in Domain.
//
// Invariants: size() == 0 exactly when data() == nullptr (a zero-length array
// owns no allocation, so release() of an empty array yields NULL and the C side
// never sees a malloc(0) result); size() * sizeof(T) fits in size_t; every
// element the array allocated itself starts zeroed unless made with
// uninitialized(). The destructor applies the element policy to every element,
// then (for secret policies) wipes the buffer, then frees it with Domain.
template <class T, class Domain = libc, class Elements = no_ownership>
class malloc_array {
    static_assert(detail::can_allocate<Domain>::value,
                  "handoff: malloc_array needs a domain that can allocate and free; a "
                  "deleter-only domain cannot (own a C array with c_unique_ptr<T[], Domain>)");
    static_assert(std::is_trivially_destructible_v<T>,
                  "handoff: memory that C frees must hold trivially destructible types");
    static_assert(!std::is_const_v<T>, "handoff: malloc_array elements must be mutable");
    static_assert(detail::releases_without_throwing_v<Elements, Domain, T>,
                  "handoff: an element policy's release_element must be noexcept (it runs in "
                  "destructors, where a throw is std::terminate)");

public:
    using value_type = T;
    using size_type = std::size_t;
    using iterator = T*;
    using const_iterator = const T*;
    using domain_type = Domain;
    using element_policy = Elements;

    // What release_with_size() hands over.
    struct released {
        T* data;
        std::size_t size;
    };

    constexpr malloc_array() noexcept = default;
    malloc_array(const malloc_array&) = delete;
    malloc_array& operator=(const malloc_array&) = delete;
    malloc_array(malloc_array&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    malloc_array& operator=(malloc_array&& other) noexcept {
        if (this != &other) {
            destroy();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ~malloc_array() { destroy(); }

    // --- factories -----------------------------------------------------------

    // n elements, all bytes zero (calloc). n == 0 gives an empty array.
    static result<malloc_array> try_zeroed(std::size_t n) noexcept {
        detail::check_allocatable<Domain, T>();
        static_assert(detail::zero_bytes_are_value_v<T>,
                      "handoff: zeroed() needs a type whose value is all zero bytes: trivially "
                      "default-constructible, and not a member pointer (its null is not zero)");
        // Shaped like the raw C it replaces (one test for zero and overflow,
        // then the allocation as the last call), so a caller that only takes
        // the pointer compiles to that C: the error is set beside the value,
        // not on a branch of its own.
        if (HANDOFF_UNLIKELY(n == 0 || n > std::numeric_limits<std::size_t>::max() / sizeof(T))) {
            if (n == 0) return malloc_array();
            return errc::too_large;
        }
        void* raw = detail::allocate_zeroed<Domain>(n, sizeof(T));
        result<malloc_array> made = malloc_array(static_cast<T*>(raw), raw == nullptr ? 0 : n);
        if (raw == nullptr) made = errc::out_of_memory;
        return made;
    }

    // n elements left uninitialised (malloc): only for types any bytes are valid for.
    static result<malloc_array> try_uninitialized(std::size_t n) noexcept {
        detail::check_allocatable<Domain, T>();
        static_assert(std::is_trivial_v<T>,
                      "handoff: uninitialized() needs a trivial type; use zeroed()");
        std::size_t bytes = 0;
        if (!detail::checked_multiply(n, sizeof(T), bytes)) return errc::too_large;
        if (n == 0) return malloc_array();
        void* raw = Domain::allocate(bytes);
        if (raw == nullptr) return errc::out_of_memory;
        return malloc_array(static_cast<T*>(raw), n);
    }

    // A copy of [first, first + n). The source may lie inside another array or
    // inside the one being assigned to (`a = *A::try_copied_from(a.data() + 1,
    // 2)`): the copy is complete before anything is freed. A NULL first with
    // n != 0 is refused (errc::null_pointer).
    static result<malloc_array> try_copied_from(const T* first, std::size_t n) noexcept {
        detail::check_allocatable<Domain, T>();
        static_assert(std::is_trivially_copyable_v<T>,
                      "handoff: copied_from() copies bytes: it needs a trivially copyable type");
        static_assert(
            std::is_same_v<Elements, no_ownership> || std::is_same_v<Elements, secret_bytes>,
            "handoff: copying elements that own memory would free them twice");
        std::size_t bytes = 0;
        if (!detail::checked_multiply(n, sizeof(T), bytes)) return errc::too_large;
        if (n == 0) return malloc_array();
        if (first == nullptr) return errc::null_pointer;
        void* raw = Domain::allocate(bytes);
        if (raw == nullptr) return errc::out_of_memory;
        std::memcpy(raw, static_cast<const void*>(first), bytes);
        return malloc_array(static_cast<T*>(raw), n);
    }

    // Takes ownership of n elements at p.
    // Safety: p was allocated by Domain for at least n elements (or is NULL with
    // n == 0), its elements are owned as Elements says, and nobody else frees it.
    // A NULL p with n != 0, or an n whose byte size overflows, gives an empty
    // array and frees nothing.
    static malloc_array adopt(T* p, std::size_t n) noexcept {
        std::size_t bytes = 0;
        // NOLINTNEXTLINE(bugprone-sizeof-expression): T is the element, a pointer for owns_pointees
        if (p == nullptr || n == 0 || !detail::checked_multiply(n, sizeof(T), bytes)) {
            if (p != nullptr && n == 0) detail::release_to<Domain>(p);
            return malloc_array();
        }
        return malloc_array(p, n);
    }

#if HANDOFF_HAS_EXCEPTIONS
    static malloc_array zeroed(std::size_t n) { return detail::value_or_throw(try_zeroed(n)); }
    static malloc_array uninitialized(std::size_t n) {
        return detail::value_or_throw(try_uninitialized(n));
    }
    static malloc_array copied_from(const T* first, std::size_t n) {
        return detail::value_or_throw(try_copied_from(first, n));
    }
#endif

    // --- access --------------------------------------------------------------

    T* data() noexcept HANDOFF_LIFETIMEBOUND { return data_; }
    const T* data() const noexcept HANDOFF_LIFETIMEBOUND { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    bool empty() const noexcept { return size_ == 0; }
    explicit operator bool() const noexcept { return data_ != nullptr; }

    // Unchecked, like std::vector::operator[].
    T& operator[](std::size_t i) noexcept HANDOFF_LIFETIMEBOUND { return data_[i]; }
    const T& operator[](std::size_t i) const noexcept HANDOFF_LIFETIMEBOUND { return data_[i]; }

    iterator begin() noexcept { return data_; }
    iterator end() noexcept { return data_ + size_; }
    const_iterator begin() const noexcept { return data_; }
    const_iterator end() const noexcept { return data_ + size_; }

#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
    std::span<T> span() noexcept HANDOFF_LIFETIMEBOUND { return {data_, size_}; }
    std::span<const T> span() const noexcept HANDOFF_LIFETIMEBOUND { return {data_, size_}; }
#endif

    // --- growth --------------------------------------------------------------

    // Changes the length. Kept elements keep their values; new elements are
    // zero. Shrinking releases the dropped elements and never fails (if the
    // domain's realloc cannot shrink, the larger buffer is kept); resizing to 0
    // frees the buffer. Growing goes through the domain's realloc; on failure
    // nothing changes. Secret policies never realloc: they copy into a new
    // buffer and wipe the old one, so no stray copy of a secret is left behind.
    // Elements move as bytes (realloc, memcpy), so T must be trivially
    // copyable. O(n); for one element at a time, malloc_vector is amortised O(1).
    errc try_resize(std::size_t n) noexcept {
        static_assert(std::is_trivially_copyable_v<T>,
                      "handoff: resize() moves elements with realloc/memcpy: T must be "
                      "trivially copyable");
        static_assert(detail::zero_bytes_are_value_v<T>,
                      "handoff: resize() zeroes new elements: T's value must be all zero bytes "
                      "(trivially default-constructible, not a member pointer)");
        if (n == size_) return errc::ok;
        if (n == 0) {
            destroy();
            return errc::ok;
        }
        if (n < size_) {
            for (std::size_t i = n; i < size_; ++i) {
                Elements::template release_element<Domain>(data_[i]);
            }
            if constexpr (Elements::wipe_buffer) {
                secure_wipe(data_ + n, (size_ - n) * sizeof(T));
            } else if constexpr (detail::can_reallocate<Domain>::value) {
                void* raw = Domain::reallocate(static_cast<void*>(data_), n * sizeof(T));
                if (raw != nullptr) data_ = static_cast<T*>(raw);
            }
            size_ = n;
            return errc::ok;
        }
        std::size_t bytes = 0;
        if (!detail::checked_multiply(n, sizeof(T), bytes)) return errc::too_large;
        if (data_ == nullptr) {
            result<malloc_array> fresh = try_zeroed(n);
            if (!fresh) return fresh.error();
            *this = std::move(*fresh);
            return errc::ok;
        }
        void* raw = nullptr;
        if constexpr (Elements::wipe_buffer || !detail::can_reallocate<Domain>::value) {
            raw = Domain::allocate(bytes);
            if (raw == nullptr) return errc::out_of_memory;
            std::memcpy(raw, static_cast<const void*>(data_), size_bytes());
            if constexpr (Elements::wipe_buffer) secure_wipe(data_, size_bytes());
            Domain::deallocate(static_cast<void*>(data_));
        } else {
            raw = Domain::reallocate(static_cast<void*>(data_), bytes);
            if (raw == nullptr) return errc::out_of_memory;
        }
        std::memset(static_cast<char*>(raw) + size_bytes(), 0, bytes - size_bytes());
        data_ = static_cast<T*>(raw);
        size_ = n;
        return errc::ok;
    }

#if HANDOFF_HAS_EXCEPTIONS
    void resize(std::size_t n) {
        errc e = try_resize(n);
        if (e != errc::ok) detail::throw_error(e);
    }
#endif

    // --- hand-off ------------------------------------------------------------

    // Gives the buffer away; the array becomes empty and frees nothing.
    [[nodiscard]] T* release() && noexcept {
        size_ = 0;
        return std::exchange(data_, nullptr);
    }

    // Gives pointer and length away together.
    [[nodiscard]] released release_with_size() && noexcept {
        released out{data_, size_};
        data_ = nullptr;
        size_ = 0;
        return out;
    }

    // Frees everything now; the array becomes empty.
    void reset() noexcept { destroy(); }

private:
    malloc_array(T* p, std::size_t n) noexcept : data_(p), size_(n) {}

    // An array whose elements own nothing is freed with one call, NULL or
    // not, as raw C frees it (every domain's deallocate accepts NULL). One
    // with work per element, or a wipe, returns at once when it is empty: a
    // handed-off PAM response array then skips free(NULL), 7 instructions per
    // conversation that compilers do not remove when the success and failure
    // paths share this code.
    void destroy() noexcept {
        if constexpr (!std::is_same_v<Elements, no_ownership>) {
            if (data_ == nullptr) return;
        }
        for (std::size_t i = 0; i < size_; ++i) {
            Elements::template release_element<Domain>(data_[i]);
        }
        if constexpr (Elements::wipe_buffer) secure_wipe(data_, size_bytes());
        Domain::deallocate(static_cast<void*>(data_));
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// A growable array in Domain: pointer + length + capacity, with amortised
// O(1) push_back, for building an array of unknown length (lines read one by
// one) that goes to C as pointer + length. The companion of malloc_array,
// which stays exactly pointer + length.
//
// Invariants: capacity() == 0 exactly when data() == nullptr; size() <=
// capacity(); capacity() * sizeof(T) fits in size_t. The spare capacity
// [size(), capacity()) is never read: its bytes are either as the allocator
// gave them (growth does not zero them, which would cost a memset per
// doubling for bytes nobody sees) or zero where an element left the vector
// (a dropped element is zeroed, or wiped for secret policies), so no stale
// element or secret is kept there. Secret policies zero it on growth too, so
// a secret block is all zero past size() when it is freed. Growth copies only the elements (realloc
// copies the block as it is). The element policy releases each element when
// it leaves the vector (pop_back, shrinking resize, clear, reset,
// destruction), never after a hand-off.
// Elements move as bytes (realloc, memcpy): T must be trivially copyable, and
// its value-initialised value all zero bytes.
//
// Hand-off: release_with_size() gives the block as it is (capacity may exceed
// size; C's free() needs no size, and C reads only size() elements);
// to_array() trims it to size() when it can and gives a malloc_array. Either way an empty vector
// hands over NULL (its spare block is freed), the zero-length policy of malloc_array.
template <class T, class Domain = libc, class Elements = no_ownership>
class malloc_vector {
    static_assert(detail::can_allocate<Domain>::value,
                  "handoff: malloc_vector needs a domain that can allocate and free");
    static_assert(std::is_trivially_destructible_v<T>,
                  "handoff: memory that C frees must hold trivially destructible types");
    static_assert(!std::is_const_v<T>, "handoff: malloc_vector elements must be mutable");
    static_assert(detail::releases_without_throwing_v<Elements, Domain, T>,
                  "handoff: an element policy's release_element must be noexcept (it runs in "
                  "destructors, where a throw is std::terminate)");
    static_assert(std::is_trivially_copyable_v<T>,
                  "handoff: malloc_vector moves elements with realloc/memcpy: T must be "
                  "trivially copyable");
    static_assert(detail::zero_bytes_are_value_v<T>,
                  "handoff: malloc_vector zeroes new elements: T's value must be all zero bytes "
                  "(trivially default-constructible, not a member pointer)");
    static_assert(alignof(T) <= detail::domain_alignment<Domain>::value,
                  "handoff: the domain's allocator does not align enough for this type");

public:
    using value_type = T;
    using size_type = std::size_t;
    using iterator = T*;
    using const_iterator = const T*;
    using domain_type = Domain;
    using element_policy = Elements;
    using array_type = malloc_array<T, Domain, Elements>;
    using released = typename array_type::released;

    constexpr malloc_vector() noexcept = default;
    malloc_vector(const malloc_vector&) = delete;
    malloc_vector& operator=(const malloc_vector&) = delete;
    malloc_vector(malloc_vector&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    malloc_vector& operator=(malloc_vector&& other) noexcept {
        if (this != &other) {
            destroy();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            capacity_ = std::exchange(other.capacity_, 0);
        }
        return *this;
    }
    ~malloc_vector() { destroy(); }

    // --- factories -----------------------------------------------------------

    // An empty vector with room for n elements (none allocated when n == 0).
    static result<malloc_vector> try_with_capacity(std::size_t n) noexcept {
        malloc_vector v;
        errc e = v.try_reserve(n);
        if (e != errc::ok) return e;
        return v;
    }

    // Takes a malloc_array's block and elements; capacity() == size().
    static malloc_vector from_array(array_type&& array) noexcept {
        released r = std::move(array).release_with_size();
        malloc_vector v;
        v.data_ = r.data;
        v.size_ = r.size;
        v.capacity_ = r.size;
        return v;
    }

#if HANDOFF_HAS_EXCEPTIONS
    static malloc_vector with_capacity(std::size_t n) {
        return detail::value_or_throw(try_with_capacity(n));
    }
#endif

    // --- access --------------------------------------------------------------

    T* data() noexcept HANDOFF_LIFETIMEBOUND { return data_; }
    const T* data() const noexcept HANDOFF_LIFETIMEBOUND { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }

    // Unchecked, like std::vector::operator[].
    T& operator[](std::size_t i) noexcept HANDOFF_LIFETIMEBOUND { return data_[i]; }
    const T& operator[](std::size_t i) const noexcept HANDOFF_LIFETIMEBOUND { return data_[i]; }

    iterator begin() noexcept { return data_; }
    iterator end() noexcept { return data_ + size_; }
    const_iterator begin() const noexcept { return data_; }
    const_iterator end() const noexcept { return data_ + size_; }

#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
    std::span<T> span() noexcept HANDOFF_LIFETIMEBOUND { return {data_, size_}; }
    std::span<const T> span() const noexcept HANDOFF_LIFETIMEBOUND { return {data_, size_}; }
#endif

    // --- growth --------------------------------------------------------------
    //
    // On failure (out_of_memory, too_large) nothing changes, and an element
    // offered to try_push_back stays the caller's.

    // Room for at least n elements.
    errc try_reserve(std::size_t n) noexcept {
        if (n <= capacity_) return errc::ok;
        if (n > max_elements()) return errc::too_large;
        return reallocate(n);
    }

    // Appends one element. With an owning policy the vector owns it once this
    // returns errc::ok. `value` may be an element of this vector.
    errc try_push_back(const T& value) noexcept {
        T copy = value;  // before growth can move or free the element it names
        if (HANDOFF_UNLIKELY(size_ >= capacity_)) {  // == (size() <= capacity())
            errc e = grow_full();
            if (e != errc::ok) return e;
        }
        std::memcpy(static_cast<void*>(data_ + size_), &copy, sizeof(T));
        ++size_;
        return errc::ok;
    }

    // Appends a copy of [first, first + n), which may lie inside this vector
    // (`v.try_append(v.data(), v.size())` doubles it). Not for owning
    // policies: the copies would be freed twice. A NULL first with n != 0 is
    // refused (errc::null_pointer).
    errc try_append(const T* first, std::size_t n) noexcept {
        static_assert(
            std::is_same_v<Elements, no_ownership> || std::is_same_v<Elements, secret_bytes>,
            "handoff: copying elements that own memory would free them twice");
        if (n == 0) return errc::ok;
        if (first == nullptr) return errc::null_pointer;
        if (n > capacity_ - size_) {
            // Growth may free the source: remember where it is in this block.
            // (Addresses compared as integers: < between unrelated pointers
            // is unspecified, and <functional>'s std::less costs every user.)
            // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
            std::uintptr_t from = reinterpret_cast<std::uintptr_t>(first);
            // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
            std::uintptr_t base = reinterpret_cast<std::uintptr_t>(data_);
            bool inside = data_ != nullptr && from >= base && from - base < capacity_ * sizeof(T);
            std::size_t offset = inside ? (from - base) / sizeof(T) : 0;
            errc e = grow_for(n);
            if (e != errc::ok) return e;
            if (inside) first = data_ + offset;
        }
        std::memmove(static_cast<void*>(data_ + size_), static_cast<const void*>(first),
                     n * sizeof(T));
        size_ += n;
        return errc::ok;
    }

    // Changes the length: new elements are zero; shrinking releases the
    // dropped elements and keeps the capacity (it never fails).
    errc try_resize(std::size_t n) noexcept {
        if (n <= size_) {
            drop_from(n);
            return errc::ok;
        }
        if (n > capacity_) {
            errc e = grow_for(n - size_);
            if (e != errc::ok) return e;
        }
        std::memset(static_cast<void*>(data_ + size_), 0, (n - size_) * sizeof(T));
        size_ = n;
        return errc::ok;
    }

#if HANDOFF_HAS_EXCEPTIONS
    void reserve(std::size_t n) { check(try_reserve(n)); }
    void push_back(const T& value) { check(try_push_back(value)); }
    void append(const T* first, std::size_t n) { check(try_append(first, n)); }
    void resize(std::size_t n) { check(try_resize(n)); }
#endif

    // Releases the last element (nothing when empty).
    void pop_back() noexcept {
        if (size_ != 0) drop_from(size_ - 1);
    }

    // Releases every element; the block is kept for reuse.
    void clear() noexcept { drop_from(0); }

    // Gives the spare capacity back when the domain can (best effort, never
    // fails); an empty vector frees its block.
    void shrink_to_fit() noexcept {
        if (size_ == 0) {
            destroy();
        } else if (capacity_ > size_) {
            (void)reallocate(size_);  // on failure the larger block is kept
        }
    }

    // --- hand-off ------------------------------------------------------------

    // Gives pointer and length away; the block is not trimmed (capacity() may
    // exceed size(); its spare bytes are unspecified and hold no dropped
    // element). An empty vector frees its block and gives {NULL, 0}.
    [[nodiscard]] released release_with_size() && noexcept {
        if (size_ == 0) {
            destroy();
            return released{nullptr, 0};
        }
        released out{data_, size_};
        data_ = nullptr;
        size_ = 0;
        capacity_ = 0;
        return out;
    }

    // Gives the pointer away, as release_with_size() does.
    [[nodiscard]] T* release() && noexcept { return std::move(*this).release_with_size().data; }

    // The elements as a malloc_array, trimmed to size() through the domain's
    // realloc when it has one and the policy is not secret (otherwise, or if
    // the trim fails, the block keeps its spare bytes: C frees it just the
    // same). Never fails; the vector becomes empty.
    [[nodiscard]] array_type to_array() && noexcept {
        if (size_ == 0) {
            destroy();
            return array_type();
        }
        if constexpr (!Elements::wipe_buffer && detail::can_reallocate<Domain>::value) {
            if (capacity_ > size_) {
                void* raw = Domain::reallocate(static_cast<void*>(data_), size_ * sizeof(T));
                if (raw != nullptr) data_ = static_cast<T*>(raw);
            }
        }
        std::size_t n = std::exchange(size_, 0);
        capacity_ = 0;
        return array_type::adopt(std::exchange(data_, nullptr), n);
    }

    // Frees everything now; the vector becomes empty.
    void reset() noexcept { destroy(); }

private:
    static constexpr std::size_t max_elements() noexcept {
        return std::numeric_limits<std::size_t>::max() / sizeof(T);
    }

#if HANDOFF_HAS_EXCEPTIONS
    static void check(errc e) {
        if (e != errc::ok) detail::throw_error(e);
    }
#endif

    // Room for `more` elements past size(), doubling so that a run of
    // push_back is amortised O(1). Called only when size() + more exceeds
    // capacity(). The target never exceeds max_elements(): `needed` is checked
    // against it, `twice` is capped at it, and the minimum of 4 fits.
    errc grow_for(std::size_t more) noexcept {
        static_assert(max_elements() >= 4, "handoff: malloc_vector elements are too large");
        if (more > max_elements() - size_) return errc::too_large;
        std::size_t needed = size_ + more;
        // A capacity over half of max_elements() is over SIZE_MAX / 2 bytes: no
        // allocator gives one, so no test reaches the cap.
        const std::size_t half = max_elements() / 2;
        std::size_t twice = capacity_ > half ? max_elements() : 2 * capacity_;  // LCOV_EXCL_BR_LINE
        std::size_t target = needed > twice ? needed : twice;
        if (target < 4) target = 4;
        return reallocate(target);
    }

    // grow_for(1) of a full block (size() == capacity()): twice the capacity
    // (at least 4), computed from the capacity alone. With no size() + 1 in the
    // growth path to share with push_back's increment, Clang keeps the loop
    // of push_back as short as C's doubling loop.
    errc grow_full() noexcept {
        // Twice a capacity over half of max_elements() is more bytes than
        // SIZE_MAX / 2, which no allocator gives: refused as too large.
        if (capacity_ > max_elements() / 2) return errc::too_large;  // LCOV_EXCL_BR_LINE
        return reallocate(capacity_ == 0 ? 4 : 2 * capacity_);
    }

    // Moves the elements into a block of exactly n >= size() elements (the
    // bytes past size() are left as the allocator gives them, but zeroed for
    // secret policies). Secret policies
    // and domains without realloc allocate, copy and free (wiping first for
    // secrets); nothing changes on failure.
    errc reallocate(std::size_t n) noexcept {
        const std::size_t bytes = n * sizeof(T);
        const std::size_t kept = size_ * sizeof(T);
        void* raw = nullptr;
        if constexpr (Elements::wipe_buffer || !detail::can_reallocate<Domain>::value) {
            raw = Domain::allocate(bytes);
            if (raw == nullptr) return errc::out_of_memory;
            if (kept != 0) std::memcpy(raw, static_cast<const void*>(data_), kept);
            if (data_ != nullptr) {
                if constexpr (Elements::wipe_buffer) secure_wipe(data_, kept);
                Domain::deallocate(static_cast<void*>(data_));
            }
        } else {
            raw = data_ == nullptr ? Domain::allocate(bytes)
                                   : Domain::reallocate(static_cast<void*>(data_), bytes);
            if (raw == nullptr) return errc::out_of_memory;
        }
        if constexpr (Elements::wipe_buffer) {
            // A secret block is all zero past size() whenever it is freed, so
            // a check of every freed byte (or a core dump) finds no garbage.
            std::memset(static_cast<char*>(raw) + kept, 0, bytes - kept);
        }
        data_ = static_cast<T*>(raw);
        capacity_ = n;
        return errc::ok;
    }

    // Releases the elements from index n on and zeroes their bytes (a wipe for
    // secret policies): no dropped element stays in the spare capacity.
    void drop_from(std::size_t n) noexcept {
        if (n >= size_) return;
        for (std::size_t i = n; i < size_; ++i) {
            Elements::template release_element<Domain>(data_[i]);
        }
        if constexpr (Elements::wipe_buffer) {
            secure_wipe(data_ + n, (size_ - n) * sizeof(T));
        } else {
            std::memset(static_cast<void*>(data_ + n), 0, (size_ - n) * sizeof(T));
        }
        size_ = n;
    }

    // As malloc_array's: one call to free, NULL or not, when the elements own
    // nothing; otherwise an empty vector returns at once.
    void destroy() noexcept {
        if constexpr (!std::is_same_v<Elements, no_ownership>) {
            if (data_ == nullptr) return;
        }
        for (std::size_t i = 0; i < size_; ++i) {
            Elements::template release_element<Domain>(data_[i]);
        }
        if constexpr (Elements::wipe_buffer) secure_wipe(data_, size_ * sizeof(T));
        Domain::deallocate(static_cast<void*>(data_));
        data_ = nullptr;
        size_ = 0;
        capacity_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// ===========================================================================
// 5. C strings
// ===========================================================================

namespace detail {
// The copy behind every C string factory: n bytes and a NUL in Domain, or NULL
// when the allocation fails. Inline, so a caller that already knows the bytes
// hold no NUL (a length from strlen) pays for no second scan.
// Safety: [data, data + n) holds no '\0' and n < SIZE_MAX.
template <class Domain>
char* copy_checked_c_string(const char* data, std::size_t n) noexcept {
    void* raw = Domain::allocate(n + 1);
    if (raw == nullptr) return nullptr;
    char* out = static_cast<char*>(raw);
    if (n != 0) std::memcpy(out, data, n);
    out[n] = '\0';
    return out;
}

// The same for a C string whose length the caller measured: its NUL is
// copied with it.
// Safety: s[0] to s[n - 1] are not '\0', s[n] is, and n < SIZE_MAX.
template <class Domain>
char* copy_measured_c_string(const char* s, std::size_t n) noexcept {
    void* raw = Domain::allocate(n + 1);
    if (raw != nullptr) std::memcpy(raw, s, n + 1);
    return static_cast<char*>(raw);
}

// errc::ok when sv can become a C string as it is.
inline errc check_c_string(std::string_view sv) noexcept {
    if (sv.size() == std::numeric_limits<std::size_t>::max()) return errc::too_large;
    if (sv.find('\0') != std::string_view::npos) return errc::embedded_nul;
    return errc::ok;
}
}  // namespace detail

// Copies exactly sv.size() bytes plus a NUL into Domain; the view is never
// rescanned. A view holding '\0' is refused (errc::embedded_nul): C would see a
// shorter string than the caller meant, so it is an error, not a truncation.
template <class Domain = libc>
result<c_unique_ptr<char, Domain>> try_c_strdup(std::string_view sv) noexcept {
    detail::check_allocatable<Domain, char>();
    if (errc e = detail::check_c_string(sv); e != errc::ok) return e;
    char* out = detail::copy_checked_c_string<Domain>(sv.data(), sv.size());
    if (out == nullptr) return errc::out_of_memory;
    return c_unique_ptr<char, Domain>(out);
}

// A C string, which may be NULL (getenv, a C struct's field): NULL is refused
// (errc::null_pointer) instead of reaching strlen. Without this overload a
// NULL const char* would become a std::string_view first, which is undefined.
// One scan, as strdup: the length strlen finds is also the proof that the
// bytes before it hold no '\0', and the copy takes the NUL with it.
template <class Domain = libc>
result<c_unique_ptr<char, Domain>> try_c_strdup(const char* s) noexcept {
    detail::check_allocatable<Domain, char>();
    if (s == nullptr) return errc::null_pointer;
    char* out = detail::copy_measured_c_string<Domain>(s, std::strlen(s));
    if (out == nullptr) return errc::out_of_memory;
    return c_unique_ptr<char, Domain>(out);
}

#if HANDOFF_HAS_EXCEPTIONS
// Throwing form: std::invalid_argument (embedded NUL, NULL), std::length_error,
// std::bad_alloc.
template <class Domain = libc>
c_unique_ptr<char, Domain> c_strdup(std::string_view sv) {
    return detail::value_or_throw(try_c_strdup<Domain>(sv));
}
template <class Domain = libc>
c_unique_ptr<char, Domain> c_strdup(const char* s) {
    return detail::value_or_throw(try_c_strdup<Domain>(s));
}
#endif

// For C code paths that want a raw pointer: malloc'ed copy of sv, or NULL on
// allocation failure or embedded NUL (or a NULL s). GCC pairs the result with
// free() and warns (-Wmismatched-dealloc) when it reaches delete or another
// deallocator.
[[nodiscard]] HANDOFF_MALLOC_FREED_BY(free) inline char* c_strdup_raw(
    std::string_view sv) noexcept {
    return (*try_c_strdup<libc>(sv)).release();
}
[[nodiscard]] HANDOFF_MALLOC_FREED_BY(free) inline char* c_strdup_raw(const char* s) noexcept {
    return (*try_c_strdup<libc>(s)).release();
}

namespace detail {
// One element of a list of strings: a C string, which may be NULL (recorded,
// never given to strlen), or anything a std::string_view is made from
// (std::string, std::string_view).
class string_arg {
public:
    string_arg(const char* s) noexcept
        : view_(s == nullptr ? std::string_view() : std::string_view(s)), null_(s == nullptr) {}
    template <class S, std::enable_if_t<std::is_constructible_v<std::string_view, const S&> &&
                                            !std::is_convertible_v<const S&, const char*>,
                                        int> = 0>
    string_arg(const S& s) noexcept : view_(s) {}

    bool is_null() const noexcept { return null_; }
    std::string_view view() const noexcept { return view_; }

private:
    std::string_view view_;
    bool null_ = false;
};
}  // namespace detail

// A NULL-terminated array of C strings (argv, environ, pam_getenvlist): every
// string and the array are freed with Domain.
//
// Invariants: a list built here always has its NULL terminator, even with no
// strings, so get() can go to any C API that wants a valid argv. Only a
// default-constructed, moved-from, released or NULL-adopted list has get() ==
// nullptr. size() is counted once, when the list is built or adopted.
template <class Domain = libc, class Elements = owns_pointees>
class c_string_list {
    using slots = malloc_array<char*, Domain, Elements>;

public:
    // Iterates the strings as views.
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = std::string_view;

        iterator() noexcept = default;
        explicit iterator(char* const* p) noexcept : p_(p) {}
        std::string_view operator*() const noexcept { return std::string_view(*p_); }
        iterator& operator++() noexcept {
            ++p_;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator old = *this;
            ++p_;
            return old;
        }
        friend bool operator==(iterator a, iterator b) noexcept { return a.p_ == b.p_; }
        friend bool operator!=(iterator a, iterator b) noexcept { return a.p_ != b.p_; }

    private:
        char* const* p_ = nullptr;
    };

    c_string_list() noexcept = default;

    // Builds a list from a forward range (it is walked twice: to count, then
    // to copy) whose elements are C strings (const char*, char*, arrays) or
    // anything a std::string_view is made from. All or nothing: on failure
    // every string made so far is freed. A NULL C string gives
    // errc::null_pointer, a string holding '\0' errc::embedded_nul. The range
    // may be this list's own strings (`l = L::from(l)`): the new list is
    // complete before the old one is freed.
    template <class Range>
    static result<c_string_list> try_from(const Range& strings) noexcept {
        static_assert(detail::owns_elements<Elements>::value,
                      "handoff: c_string_list copies the strings, so its element policy must free "
                      "them (owns_pointees, owns_secret_strings); with this one they would leak");
        std::size_t count = 0;
        for (auto it = std::begin(strings); it != std::end(strings); ++it) ++count;
        if (count == std::numeric_limits<std::size_t>::max()) return errc::too_large;
        result<slots> made = slots::try_zeroed(count + 1);
        if (!made) return made.error();
        std::size_t i = 0;
        for (const auto& s : strings) {
            detail::string_arg arg(s);
            if (arg.is_null()) return errc::null_pointer;  // `made` frees the strings so far
            result<c_unique_ptr<char, Domain>> copy = try_c_strdup<Domain>(arg.view());
            if (!copy) return copy.error();
            (*made)[i++] = copy->release();
        }
        return c_string_list(std::move(*made), count);
    }

    // From a braced list: literals, const char* (NULL refused), std::string,
    // std::string_view.
    static result<c_string_list> try_from(
        std::initializer_list<detail::string_arg> strings) noexcept {
        return try_from<std::initializer_list<detail::string_arg>>(strings);
    }

#if HANDOFF_HAS_EXCEPTIONS
    // Throwing forms: std::invalid_argument (NULL, embedded NUL),
    // std::length_error, std::bad_alloc.
    template <class Range>
    static c_string_list from(const Range& strings) {
        return detail::value_or_throw(try_from(strings));
    }
    static c_string_list from(std::initializer_list<detail::string_arg> strings) {
        return detail::value_or_throw(try_from(strings));
    }
#endif

    // Takes ownership of a NULL-terminated array C handed back.
    // Safety: list is NULL or a NULL-terminated array allocated by Domain whose
    // strings were each allocated by Domain, owned by nobody else.
    static c_string_list adopt(char** list) noexcept {
        if (list == nullptr) return c_string_list();
        std::size_t count = 0;
        while (list[count] != nullptr) ++count;
        return c_string_list(slots::adopt(list, count + 1), count);
    }

    // argv-style C APIs take char** and do not write through it.
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
    char** get() const noexcept HANDOFF_LIFETIMEBOUND { return const_cast<char**>(slots_.data()); }
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    std::string_view operator[](std::size_t i) const noexcept HANDOFF_LIFETIMEBOUND {
        return slots_[i];
    }
    iterator begin() const noexcept { return iterator(slots_.data()); }
    iterator end() const noexcept { return iterator(slots_.data() + count_); }

    // Gives the array (strings included) away; the list becomes empty.
    [[nodiscard]] char** release() && noexcept {
        count_ = 0;
        return std::move(slots_).release();
    }

    void reset() noexcept {
        slots_.reset();
        count_ = 0;
    }

    c_string_list(const c_string_list&) = delete;
    c_string_list& operator=(const c_string_list&) = delete;
    c_string_list(c_string_list&& other) noexcept
        : slots_(std::move(other.slots_)), count_(std::exchange(other.count_, 0)) {}
    c_string_list& operator=(c_string_list&& other) noexcept {
        slots_ = std::move(other.slots_);
        count_ = std::exchange(other.count_, 0);
        return *this;
    }
    ~c_string_list() = default;

private:
    c_string_list(slots s, std::size_t count) noexcept : slots_(std::move(s)), count_(count) {}

    slots slots_;
    std::size_t count_ = 0;
};

// ===========================================================================
// 6. Secrets
// ===========================================================================

// Overwrites bytes with zeros in a way the optimiser may not remove.
inline void secure_wipe(void* p, std::size_t bytes) noexcept {
    if (p == nullptr || bytes == 0) return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    ::explicit_bzero(p, bytes);
#else
    volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
    for (std::size_t i = 0; i < bytes; ++i) v[i] = 0;
#if defined(__GNUC__)
    __asm__ __volatile__("" : : "r"(p) : "memory");
#endif
#endif
}

// Wipes every byte a std::string owns, including its small-string buffer and
// unused capacity, then clears it. The capacity is kept (the bytes are zero).
inline void secure_clear(std::string& s) noexcept {
    s.resize(s.capacity());  // never reallocates: the size reaches the capacity
    secure_wipe(s.data(), s.size());
    s.clear();
}

// Each element is a C string that is wiped up to its NUL and freed, then the
// buffer of pointers is wiped. For replies that carry passwords.
struct owns_secret_strings {
    static constexpr bool wipe_buffer = true;
    static constexpr bool owns_elements = true;
    template <class Domain, class T>
    static void release_element(T& element) noexcept {
        static_assert(std::is_same_v<T, char*>, "handoff: owns_secret_strings needs char*");
        if (element != nullptr) {
            secure_wipe(element, std::strlen(element) + 1);  // up to and including the NUL
            Domain::deallocate(element);
            element = nullptr;
        }
    }
};

// Deleter that wipes a C string up to and including its NUL before freeing.
template <class Domain>
struct secure_string_deleter {
    constexpr secure_string_deleter() noexcept = default;
    // A plain C string of the same domain may become a secure one (it gains a
    // wipe): `secure_c_string<D> s = std::move(plain);`. One of another domain
    // cannot: its deleter does not convert.
    constexpr secure_string_deleter(domain_deleter<char, Domain>) noexcept {}

    void operator()(char* p) const noexcept { owns_secret_strings::release_element<Domain>(p); }
};

// Deleter that wipes sizeof(T) bytes before freeing.
template <class T, class Domain>
struct secure_deleter {
    static_assert(std::is_trivially_destructible_v<T>,
                  "handoff: memory that C frees must hold trivially destructible types");
    void operator()(T* p) const noexcept {
        if (p == nullptr) return;
        secure_wipe(p, sizeof(T));
        Domain::deallocate(detail::as_void(p));
    }
};

// A C string that is wiped before it is freed. release() hands it to C
// unwiped, for APIs (PAM) that take the secret.
template <class Domain = libc>
using secure_c_string = std::unique_ptr<char, secure_string_deleter<Domain>>;

// One object wiped before it is freed.
template <class T, class Domain = libc>
using secure_c_unique_ptr = std::unique_ptr<T, secure_deleter<T, Domain>>;

// A malloc_array wiped before it is freed.
template <class T, class Domain = libc>
using secure_malloc_array = malloc_array<T, Domain, secret_bytes>;

template <class Domain = libc>
result<secure_c_string<Domain>> try_secure_c_strdup(std::string_view sv) noexcept {
    detail::check_allocatable<Domain, char>();
    if (errc e = detail::check_c_string(sv); e != errc::ok) return e;
    char* out = detail::copy_checked_c_string<Domain>(sv.data(), sv.size());
    if (out == nullptr) return errc::out_of_memory;
    return secure_c_string<Domain>(out);
}

// A C string that may be NULL: refused with errc::null_pointer. Scanned once.
template <class Domain = libc>
result<secure_c_string<Domain>> try_secure_c_strdup(const char* s) noexcept {
    detail::check_allocatable<Domain, char>();
    if (s == nullptr) return errc::null_pointer;
    char* out = detail::copy_measured_c_string<Domain>(s, std::strlen(s));
    if (out == nullptr) return errc::out_of_memory;
    return secure_c_string<Domain>(out);
}

#if HANDOFF_HAS_EXCEPTIONS
template <class Domain = libc>
secure_c_string<Domain> secure_c_strdup(std::string_view sv) {
    return detail::value_or_throw(try_secure_c_strdup<Domain>(sv));
}
template <class Domain = libc>
secure_c_string<Domain> secure_c_strdup(const char* s) {
    return detail::value_or_throw(try_secure_c_strdup<Domain>(s));
}
#endif

// A C++-side string for secrets. Its bytes live only in Domain's heap (there is
// no small-string buffer that an allocator never sees), the buffer is always
// NUL-terminated, and every buffer it lets go of (on growth, clear, assignment
// and destruction) is wiped first over its whole capacity. Move-only: a copy of
// a secret should be a visible decision.
template <class Domain = libc>
class basic_secret_string {
public:
    basic_secret_string() noexcept = default;
    basic_secret_string(const basic_secret_string&) = delete;
    basic_secret_string& operator=(const basic_secret_string&) = delete;
    basic_secret_string(basic_secret_string&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    basic_secret_string& operator=(basic_secret_string&& other) noexcept {
        if (this != &other) {
            destroy();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            capacity_ = std::exchange(other.capacity_, 0);
        }
        return *this;
    }
    ~basic_secret_string() { destroy(); }

    static result<basic_secret_string> try_from(std::string_view sv) noexcept {
        basic_secret_string s;
        errc e = s.try_append(sv);
        if (e != errc::ok) return e;
        return s;
    }

    // Room for `capacity` bytes plus the NUL; the old buffer is wiped and freed.
    errc try_reserve(std::size_t capacity) noexcept {
        if (capacity <= capacity_ && data_ != nullptr) return errc::ok;
        if (capacity == std::numeric_limits<std::size_t>::max()) return errc::too_large;
        void* raw = detail::allocate_zeroed<Domain>(capacity + 1, 1);
        if (raw == nullptr) return errc::out_of_memory;
        char* fresh = static_cast<char*>(raw);
        if (data_ != nullptr) std::memcpy(fresh, data_, size_);
        destroy_buffer();
        data_ = fresh;
        capacity_ = capacity;
        return errc::ok;
    }

    // Appends sv, which may view this string itself (`s.append(s.view())`):
    // when the buffer must grow, the bytes are copied into the new buffer
    // before the old one is wiped and freed.
    errc try_append(std::string_view sv) noexcept {
        // LCOV_EXCL_START: no view or string is longer than memory, so no test gets here
        if (sv.size() > std::numeric_limits<std::size_t>::max() - 1 - size_) {
            return errc::too_large;
        }
        // LCOV_EXCL_STOP
        std::size_t needed = size_ + sv.size();
        if (needed > capacity_ || data_ == nullptr) {
            std::size_t grown = capacity_ > needed / 2 ? capacity_ * 2 : needed;
            // LCOV_EXCL_START: doubling wraps only with a capacity over SIZE_MAX / 2 bytes
            if (grown < needed || grown == std::numeric_limits<std::size_t>::max()) {
                grown = needed;
            }
            // LCOV_EXCL_STOP
            return grow_and_append(grown < 15 ? 15 : grown, sv);
        }
        // In place: sv may overlap the spare capacity it is copied into.
        if (!sv.empty()) std::memmove(data_ + size_, sv.data(), sv.size());
        size_ = needed;
        data_[size_] = '\0';
        return errc::ok;
    }

    errc try_push_back(char c) noexcept {
        if (size_ < capacity_) {  // the common case: a byte into spare capacity
            data_[size_] = c;
            data_[++size_] = '\0';
            return errc::ok;
        }
        return try_append(std::string_view(&c, 1));
    }

#if HANDOFF_HAS_EXCEPTIONS
    static basic_secret_string from(std::string_view sv) {
        return detail::value_or_throw(try_from(sv));
    }
    void reserve(std::size_t capacity) {
        errc e = try_reserve(capacity);
        if (e != errc::ok) detail::throw_error(e);
    }
    void append(std::string_view sv) {
        errc e = try_append(sv);
        if (e != errc::ok) detail::throw_error(e);
    }
    void push_back(char c) { append(std::string_view(&c, 1)); }
#endif

    // Wipes the content; the buffer is kept for reuse.
    void clear() noexcept {
        if (data_ != nullptr) secure_wipe(data_, capacity_ + 1);
        size_ = 0;
    }

    // Drops the last byte (a terminal's backspace), wiping it.
    void pop_back() noexcept {
        if (size_ == 0) return;
        --size_;
        secure_wipe(data_ + size_, 1);
    }

    std::string_view view() const noexcept HANDOFF_LIFETIMEBOUND {
        return data_ == nullptr ? std::string_view() : std::string_view(data_, size_);
    }
    const char* c_str() const noexcept HANDOFF_LIFETIMEBOUND {
        return data_ == nullptr ? "" : data_;
    }
    const char* data() const noexcept HANDOFF_LIFETIMEBOUND { return c_str(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }

    // Hands the buffer to C as a secure C string: no copy is made. Refuses
    // (errc::embedded_nul, the string unchanged) when C would see it cut short.
    result<secure_c_string<Domain>> try_release_c_string() && noexcept {
        if (view().find('\0') != std::string_view::npos) return errc::embedded_nul;
        if (data_ == nullptr) {
            errc e = try_reserve(0);
            if (e != errc::ok) return e;
        }
        size_ = 0;
        capacity_ = 0;
        return secure_c_string<Domain>(std::exchange(data_, nullptr));
    }

private:
    // A new buffer of `capacity` bytes holding the content and then sv; sv is
    // read while the old buffer is still alive, whatever it views.
    errc grow_and_append(std::size_t capacity, std::string_view sv) noexcept {
        // try_append, the only caller, passes less than SIZE_MAX; the check keeps
        // `capacity + 1` from wrapping to a zero-byte buffer whatever the caller.
        constexpr std::size_t most = std::numeric_limits<std::size_t>::max();
        if (capacity == most) return errc::too_large;  // LCOV_EXCL_BR_LINE
        void* raw = detail::allocate_zeroed<Domain>(capacity + 1, 1);
        if (raw == nullptr) return errc::out_of_memory;
        char* fresh = static_cast<char*>(raw);
        if (data_ != nullptr) std::memcpy(fresh, data_, size_);
        if (!sv.empty()) std::memcpy(fresh + size_, sv.data(), sv.size());
        destroy_buffer();
        data_ = fresh;
        // fresh is owned by data_ from here; the analyzer loses track of it when
        // the copy loop of pam_async.hpp's take() runs this twice (false positive).
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        capacity_ = capacity;
        size_ += sv.size();
        return errc::ok;
    }

    void destroy_buffer() noexcept {
        if (data_ == nullptr) return;
        secure_wipe(data_, capacity_ + 1);
        Domain::deallocate(data_);
        data_ = nullptr;
    }
    void destroy() noexcept {
        destroy_buffer();
        size_ = 0;
        capacity_ = 0;
    }

    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

using secret_string = basic_secret_string<libc>;

// ===========================================================================
// 7. Out-parameters
// ===========================================================================
//
// For C functions that write an allocated pointer through T** (asprintf,
// getaddrinfo, getline). With a standard library that has std::out_ptr and
// std::inout_ptr (C++23), handoff::out_ptr / inout_ptr are those. Otherwise a
// C++17 fallback with the C++23 semantics, for smart pointers and raw pointers
// alike: out_ptr empties the target first (reset(), or `= Smart()` for a raw
// pointer; LWG 3734) and stores a non-NULL result; inout_ptr passes the
// target's pointer in, always releases a smart pointer afterwards and stores
// the result when it is non-NULL (LWG 3594), so a C function that frees the
// old pointer and writes NULL does not cause a double free; a raw pointer is
// always assigned the result, NULL included (LWG 3897).
//
// Caveat: the target is updated when the temporary is destroyed, at the end of
// the full expression. Do not read it in the same expression:
//   if (asprintf(handoff::out_ptr(p), "%d", 42) < 0 || p == nullptr)  // p not set yet
//   int n = asprintf(handoff::out_ptr(p), "%d", 42); if (n < 0) ...   // right

#if defined(__cpp_lib_out_ptr) && __cpp_lib_out_ptr >= 202106L
#define HANDOFF_USES_STD_OUT_PTR 1
using std::inout_ptr;
using std::inout_ptr_t;
using std::out_ptr;
using std::out_ptr_t;
#else
#define HANDOFF_USES_STD_OUT_PTR 0

namespace detail {
template <class T>
struct type_is {
    using type = T;
};

template <class S, class = void>
struct has_pointer_type : std::false_type {};
template <class S>
struct has_pointer_type<S, std::void_t<typename S::pointer>> : std::true_type {};
template <class S, class = void>
struct has_element_type : std::false_type {};
template <class S>
struct has_element_type<S, std::void_t<typename S::element_type>> : std::true_type {};

// The standard's POINTER_OF_OR(Smart, Or): Smart::pointer, else
// Smart::element_type*, else (a raw pointer) Smart itself, else Or.
template <class Smart, class Or>
constexpr auto pointer_of_or() noexcept {
    if constexpr (has_pointer_type<Smart>::value) {
        return type_is<typename Smart::pointer>{};
    } else if constexpr (has_element_type<Smart>::value) {
        return type_is<typename Smart::element_type*>{};
    } else if constexpr (std::is_pointer_v<Smart>) {
        return type_is<Smart>{};
    } else {
        return type_is<Or>{};
    }
}
template <class Smart, class Or>
using pointer_of_or_t = typename decltype(pointer_of_or<Smart, Or>())::type;

template <class Smart, class = void>
struct can_reset_empty : std::false_type {};
template <class Smart>
struct can_reset_empty<Smart, std::void_t<decltype(std::declval<Smart&>().reset())>>
    : std::true_type {};

template <class Void, class Smart, class... Args>
struct can_reset_with : std::false_type {};
template <class Smart, class... Args>
struct can_reset_with<std::void_t<decltype(std::declval<Smart&>().reset(std::declval<Args>()...))>,
                      Smart, Args...> : std::true_type {};

// Stores p into s as the standard's out_ptr_t / inout_ptr_t destructors do:
// s.reset(p, args...) when that is well-formed, else s = Smart(p, args...).
template <class Smart, class SP, class... Args, std::size_t... I>
void store_pointer(Smart& s, std::tuple<Args...>& args, SP p, std::index_sequence<I...>) {
    if constexpr (can_reset_with<void, Smart, SP, Args...>::value) {
        s.reset(p, std::forward<Args>(std::get<I>(args))...);
    } else {
        s = Smart(p, std::forward<Args>(std::get<I>(args))...);
    }
}
template <class Smart, class SP, class... Args, class P>
void store_pointer(Smart& s, std::tuple<Args...>& args, P p) {
    store_pointer<Smart, SP>(s, args, static_cast<SP>(p), std::index_sequence_for<Args...>{});
}
}  // namespace detail

template <class Smart, class Pointer, class... Args>
class out_ptr_t {
    using stored = detail::pointer_of_or_t<Smart, Pointer>;

public:
    explicit out_ptr_t(Smart& smart, Args... args) noexcept
        : smart_(smart), args_(std::forward<Args>(args)...) {
        if constexpr (detail::can_reset_empty<Smart>::value) {
            smart_.reset();
        } else {
            static_assert(std::is_constructible_v<Smart>,
                          "handoff: out_ptr needs a target with reset() or a default value");
            smart_ = Smart();
        }
    }
    out_ptr_t(const out_ptr_t&) = delete;
    out_ptr_t& operator=(const out_ptr_t&) = delete;
    ~out_ptr_t() {
        if (p_ != nullptr) detail::store_pointer<Smart, stored>(smart_, args_, p_);
    }
    operator Pointer*() const noexcept { return std::addressof(p_); }
    template <class P = Pointer, std::enable_if_t<!std::is_same_v<P, void*>, int> = 0>
    operator void**() const noexcept {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): a C API's void** out-param
        return reinterpret_cast<void**>(std::addressof(p_));
    }

private:
    Smart& smart_;
    std::tuple<Args...> args_;
    mutable Pointer p_{};
};

template <class Smart, class Pointer, class... Args>
class inout_ptr_t {
    using stored = detail::pointer_of_or_t<Smart, Pointer>;

    static Pointer initial(Smart& smart) noexcept {
        if constexpr (std::is_pointer_v<Smart>) {
            return static_cast<Pointer>(smart);
        } else {
            return static_cast<Pointer>(smart.get());
        }
    }

public:
    explicit inout_ptr_t(Smart& smart, Args... args) noexcept
        : smart_(smart), args_(std::forward<Args>(args)...), p_(initial(smart)) {}
    inout_ptr_t(const inout_ptr_t&) = delete;
    inout_ptr_t& operator=(const inout_ptr_t&) = delete;
    ~inout_ptr_t() {
        if constexpr (std::is_pointer_v<Smart>) {
            // A raw pointer takes the result whatever it is (LWG 3897).
            detail::store_pointer<Smart, stored>(smart_, args_, p_);
        } else {
            (void)smart_.release();
            if (p_ != nullptr) detail::store_pointer<Smart, stored>(smart_, args_, p_);
        }
    }
    operator Pointer*() const noexcept { return std::addressof(p_); }
    template <class P = Pointer, std::enable_if_t<!std::is_same_v<P, void*>, int> = 0>
    operator void**() const noexcept {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): a C API's void** out-param
        return reinterpret_cast<void**>(std::addressof(p_));
    }

private:
    Smart& smart_;
    std::tuple<Args...> args_;
    mutable Pointer p_;
};

template <class Pointer = void, class Smart, class... Args>
auto out_ptr(Smart& smart, Args&&... args) {
    using P =
        std::conditional_t<std::is_void_v<Pointer>, detail::pointer_of_or_t<Smart, void>, Pointer>;
    return out_ptr_t<Smart, P, Args&&...>(smart, std::forward<Args>(args)...);
}

template <class Pointer = void, class Smart, class... Args>
auto inout_ptr(Smart& smart, Args&&... args) {
    using P =
        std::conditional_t<std::is_void_v<Pointer>, detail::pointer_of_or_t<Smart, void>, Pointer>;
    return inout_ptr_t<Smart, P, Args&&...>(smart, std::forward<Args>(args)...);
}
#endif

// For C functions that hand back an allocated array through T** and its
// length beside it, either through a pointer or as their return value:
//   std::size_t n = 0;
//   int rc = get_items(handoff::out_array(items, n), &n);           // length written
//   int m = 0;
//   m = ::scandir(dir, handoff::out_array(entries, m), nullptr, ::alphasort);  // returned
// `array` (a malloc_array) is emptied at once, as out_ptr empties its owner.
// When the full expression ends, after the call has written the pointer and
// the length has been stored into `count`, the pointer (if not NULL) is
// adopted with the length then in `count`. A count of zero or less (a failed
// call that wrote a pointer anyway), or one whose bytes do not fit in size_t,
// frees the pointer as adopt(p, 0) does; its elements, of unknown number, are
// not released.
// Safety: the function allocates the array in the array's domain, with
// elements owned as its policy says, and `count` holds its length once the
// full expression ends (the same contract as malloc_array::adopt).
template <class Array, class Count>
class out_array_t {
    using element = typename Array::value_type;
    static_assert(std::is_integral_v<Count> && !std::is_same_v<Count, bool>,
                  "handoff: out_array's count must be an integer variable");

public:
    out_array_t(Array& array, Count& count) noexcept : array_(array), count_(count) {
        array_.reset();
    }
    out_array_t(const out_array_t&) = delete;
    out_array_t& operator=(const out_array_t&) = delete;
    // The array was emptied when this was made; it adopts what C wrote into
    // this object's own slot, freeing what it holds by then (another
    // out_array on the same array in the same call: the last destroyed wins,
    // nothing leaks). C never writes into the array itself, so a read of the
    // array within the full expression sees it empty and whole.
    ~out_array_t() {
        if (p_ != nullptr) array_ = Array::adopt(p_, length());
    }
    operator element**() const noexcept { return std::addressof(p_); }
    template <class P = element*, std::enable_if_t<!std::is_same_v<P, void*>, int> = 0>
    operator void**() const noexcept {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): a C API's void** out-param
        return reinterpret_cast<void**>(std::addressof(p_));
    }

private:
    // The count as a length: 0 for a count of zero or less, and for one whose
    // bytes size_t cannot hold (adopt() would refuse it and leave the block to
    // nobody; 0 frees it instead). The check is compiled only for a Count that
    // can exceed the limit.
    std::size_t length() const noexcept {
        if (!(count_ > 0)) return 0;
        using wide = std::make_unsigned_t<Count>;
        // NOLINTNEXTLINE(bugprone-sizeof-expression): element may be a pointer; its size is meant
        constexpr std::size_t most = std::numeric_limits<std::size_t>::max() / sizeof(element);
        if constexpr (std::numeric_limits<wide>::max() > most) {
            if (static_cast<wide>(count_) > most) return 0;
        }
        return static_cast<std::size_t>(count_);
    }

    Array& array_;
    Count& count_;
    mutable element* p_ = nullptr;
};

template <class Array, class Count>
out_array_t<Array, Count> out_array(Array& array, Count& count) noexcept {
    return out_array_t<Array, Count>(array, count);
}

}  // namespace handoff

#ifdef HANDOFF_POP_VISIBILITY
#pragma GCC visibility pop
#undef HANDOFF_POP_VISIBILITY
#endif

#endif  // HANDOFF_HANDOFF_HPP
