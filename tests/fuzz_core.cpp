// libFuzzer target for the core header: decodes its input into a sequence of
// operations on handoff's owners, runs each one, and after every step checks
// them against reference models (std::string, std::vector). It traps on the
// first disagreement; ASan, UBSan and LeakSanitizer catch the rest.
//
// Owners exercised: basic_secret_string, malloc_array with every element
// policy (no_ownership, secret_bytes, owns_pointees, owns_secret_strings and a
// user policy), c_string_list, c_unique_ptr filled by out_ptr / inout_ptr
// (smart and raw targets), malloc_vector (plain, owning, secret), out_array.
// Operations include aliasing arguments (views into the object itself), moves
// and self-moves, resize to 0 and back, hand-offs to a fake C side, and
// failure injection (the tracked domain fails a chosen allocation).
//
// Invariants checked after every step: each owner agrees with its model;
// malloc_array: size() == 0 exactly when data() == nullptr; malloc_vector:
// capacity() == 0 exactly when data() == nullptr (its spare bytes are not
// read: growth leaves them as the allocator gave them);
// secret_string: NUL-terminated with zero bytes up to its capacity; an
// operation reports out_of_memory only when a failure was injected, and then
// changes nothing. At the end of each input no allocation is live. Secrets
// live in the wipe_checked domain, which aborts on any free of a block that
// was not wiped and on any realloc of a secret.
//
// Input: a sequence of [opcode] [operands...]; missing bytes read as 0.
#include <handoff/handoff.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tracked_domain.hpp"

namespace {

using handoff::errc;
using handoff_test::state;
using handoff_test::tracked;
using handoff_test::wipe_checked;

[[noreturn]] void breach(const char* what, int line) {
    std::fprintf(stderr, "fuzz_core: broken at line %d: %s\n", line, what);
    std::abort();
}
#define EXPECT(condition)                               \
    do {                                                \
        if (!(condition)) breach(#condition, __LINE__); \
    } while (false)

class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool done() const { return pos_ >= size_; }
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::size_t below(std::size_t n) { return n == 0 ? 0 : byte() % n; }
    std::string bytes(std::size_t n) {
        std::string out;
        while (n-- > 0 && pos_ < size_) out.push_back(static_cast<char>(data_[pos_++]));
        return out;
    }
    std::string text() { return bytes(below(24)); }  // may hold NULs

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// --- the fake C side: allocates and frees in the tracked domain -------------

char* c_copy(const std::string& text) {
    char* p = static_cast<char*>(tracked::allocate(text.size() + 1));
    if (p == nullptr) return nullptr;
    std::memcpy(p, text.c_str(), text.size() + 1);
    return p;
}

std::string without_nul(std::string s) {
    for (char& c : s) c = c == '\0' ? '0' : c;
    return s;
}

// asprintf-like: mode 0 allocates, 1 fails without writing, 2 writes NULL.
int c_make_string(char** out, int mode, const std::string& text) {
    if (mode == 1) return -1;
    if (mode == 2) {
        *out = nullptr;
        return 0;
    }
    char* p = c_copy(text);
    if (p == nullptr) return -1;
    *out = p;
    return 0;
}

// getline-like: mode 0 replaces the string by a longer one (freeing the old),
// 1 frees it and writes NULL (LWG 3594), 2 leaves it alone.
int c_edit_string(char** inout, int mode, const std::string& text) {
    if (mode == 2) return 0;
    if (mode == 1) {
        tracked::deallocate(*inout);
        *inout = nullptr;
        return 0;
    }
    std::string grown = (*inout == nullptr ? std::string() : std::string(*inout)) + text;
    char* p = c_copy(grown);
    if (p == nullptr) return -1;
    tracked::deallocate(*inout);
    *inout = p;
    return 0;
}

int* c_ints(std::size_t n) {
    int* p = static_cast<int*>(tracked::allocate(n * sizeof(int)));
    if (p == nullptr) return nullptr;
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<int>(i * 7 + 1);
    return p;
}

// The (T** out, size_t* count) shape. mode 0 succeeds (NULL and 0 for n == 0),
// 1 fails without writing, 2 writes a block and a count of 0, then fails.
int c_get_ints(int** out, std::size_t* count, std::size_t n, int mode) {
    if (mode == 1) return -1;
    if (mode == 2 || n == 0) {
        *out = mode == 2 ? c_ints(1) : nullptr;
        *count = 0;
        return mode == 2 ? -1 : 0;
    }
    int* p = c_ints(n);
    if (p == nullptr) return -1;
    *out = p;
    *count = n;
    return 0;
}

// The scandir shape: the count is returned, -1 on failure (mode 2 leaves a
// stray block behind).
int c_list_ints(int** out, std::size_t n, int mode) {
    if (mode == 1) return -1;
    if (mode == 2) {
        *out = c_ints(1);
        return -1;
    }
    if (n == 0) return 0;
    int* p = c_ints(n);
    if (p == nullptr) return -1;
    *out = p;
    return static_cast<int>(n);
}

// --- owners and models -------------------------------------------------------

struct record {
    char* text;
    int code;
};
// A user element policy: each record owns its text.
struct frees_record_text {
    static constexpr bool wipe_buffer = false;
    template <class Domain>
    static void release_element(record& r) noexcept {
        Domain::deallocate(r.text);
        r.text = nullptr;
    }
};

using secret = handoff::basic_secret_string<wipe_checked>;
using int_array = handoff::malloc_array<int, tracked>;
using byte_array = handoff::secure_malloc_array<unsigned char, wipe_checked>;
using string_array = handoff::malloc_array<char*, tracked, handoff::owns_pointees>;
using secret_strings = handoff::malloc_array<char*, wipe_checked, handoff::owns_secret_strings>;
using record_array = handoff::malloc_array<record, tracked, frees_record_text>;
using list = handoff::c_string_list<tracked>;
using c_string = handoff::c_unique_ptr<char, tracked>;
using int_vector = handoff::malloc_vector<int, tracked>;
using string_vector = handoff::malloc_vector<char*, tracked, handoff::owns_pointees>;
using secret_vector = handoff::malloc_vector<char, wipe_checked, handoff::secret_bytes>;

using optional_strings = std::vector<std::optional<std::string>>;

struct world {
    secret s[2];
    std::string ms[2];
    int_array a[2];
    std::vector<int> ma[2];
    byte_array b;
    std::vector<unsigned char> mb;
    string_array p;
    optional_strings mp;
    secret_strings q;
    optional_strings mq;
    record_array r;
    std::vector<std::pair<std::optional<std::string>, int>> mr;
    list l[2];
    std::optional<std::vector<std::string>> ml[2];
    c_string u;
    std::optional<std::string> mu;
    int_vector v[2];
    std::vector<int> mv[2];
    string_vector vp;
    optional_strings mvp;
    secret_vector vs;
    std::string mvs;
};

// An operation that failed for lack of memory must have met an injected
// failure; any other error must be the expected one.
void expect_failure(errc e, errc expected) {
    EXPECT(e != errc::ok);
    if (e == errc::out_of_memory) {
        EXPECT(state().injected);
    } else {
        EXPECT(e == expected);
    }
}
void expect_oom(errc e) { expect_failure(e, errc::out_of_memory); }

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

// Appending an owner to itself doubles it: beyond this size such appends are
// skipped, so that 256 steps cannot ask for 2^256 bytes.
constexpr std::size_t max_model = 4096;

template <class T>
bool spare_is_zero(const T* data, std::size_t size, std::size_t capacity) {
    const auto* bytes = static_cast<const unsigned char*>(static_cast<const void*>(data));
    for (std::size_t i = size * sizeof(T); i < capacity * sizeof(T); ++i) {
        if (bytes[i] != 0) return false;
    }
    return true;
}

template <class Array>
void check_array_shape(const Array& a, std::size_t model_size) {
    EXPECT(a.size() == model_size);
    EXPECT((a.size() == 0) == (a.data() == nullptr));
}

template <class Vector>
void check_vector_shape(const Vector& v, std::size_t model_size) {
    EXPECT(v.size() == model_size);
    EXPECT(v.size() <= v.capacity());
    EXPECT((v.capacity() == 0) == (v.data() == nullptr));
}

void check_c_string(const char* actual, const std::optional<std::string>& model) {
    EXPECT((actual == nullptr) == !model.has_value());
    if (actual != nullptr) EXPECT(*model == actual);
}

void check(const world& w) {
    for (int i = 0; i < 2; ++i) {
        const secret& s = w.s[i];
        EXPECT(s.view() == w.ms[i]);
        EXPECT(s.size() == w.ms[i].size());
        EXPECT(s.capacity() >= s.size());
        EXPECT(s.c_str()[s.size()] == '\0');
        if (s.capacity() != 0) EXPECT(spare_is_zero(s.c_str(), s.size(), s.capacity() + 1));

        check_array_shape(w.a[i], w.ma[i].size());
        for (std::size_t k = 0; k < w.ma[i].size(); ++k) EXPECT(w.a[i][k] == w.ma[i][k]);

        EXPECT((w.l[i].get() == nullptr) == !w.ml[i].has_value());
        if (w.ml[i]) {
            EXPECT(w.l[i].size() == w.ml[i]->size());
            EXPECT(w.l[i].get()[w.l[i].size()] == nullptr);
            std::size_t k = 0;
            for (std::string_view text : w.l[i]) EXPECT(text == (*w.ml[i])[k++]);
        } else {
            EXPECT(w.l[i].empty());
        }

        check_vector_shape(w.v[i], w.mv[i].size());
        for (std::size_t k = 0; k < w.mv[i].size(); ++k) EXPECT(w.v[i][k] == w.mv[i][k]);
    }
    check_array_shape(w.b, w.mb.size());
    for (std::size_t k = 0; k < w.mb.size(); ++k) EXPECT(w.b[k] == w.mb[k]);
    check_array_shape(w.p, w.mp.size());
    for (std::size_t k = 0; k < w.mp.size(); ++k) check_c_string(w.p[k], w.mp[k]);
    check_array_shape(w.q, w.mq.size());
    for (std::size_t k = 0; k < w.mq.size(); ++k) check_c_string(w.q[k], w.mq[k]);
    check_array_shape(w.r, w.mr.size());
    for (std::size_t k = 0; k < w.mr.size(); ++k) {
        check_c_string(w.r[k].text, w.mr[k].first);
        EXPECT(w.r[k].code == w.mr[k].second);
    }
    check_c_string(w.u.get(), w.mu);
    check_vector_shape(w.vp, w.mvp.size());
    for (std::size_t k = 0; k < w.mvp.size(); ++k) check_c_string(w.vp[k], w.mvp[k]);
    check_vector_shape(w.vs, w.mvs.size());
    EXPECT(std::string(w.vs.data() == nullptr ? "" : w.vs.data(), w.vs.size()) == w.mvs);
    EXPECT(state().overflowed == 0);
}

// Resizes a model the way the owners do: new elements are zero / NULL.
template <class Model>
void resize_model(Model& m, std::size_t n) {
    m.resize(n);
}

// --- operations --------------------------------------------------------------

void secret_ops(world& w, reader& in, unsigned op) {
    std::size_t i = in.below(2);
    std::size_t j = in.below(2);
    secret& s = w.s[i];
    std::string& m = w.ms[i];
    switch (op) {
    case 0: {  // assign from bytes
        std::string text = in.text();
        auto made = secret::try_from(text);
        if (!made) return expect_oom(made.error());
        s = std::move(*made);
        m = text;
        return;
    }
    case 1: {  // append bytes
        std::string text = in.text();
        errc e = s.try_append(text);
        if (e != errc::ok) return expect_oom(e);
        m += text;
        return;
    }
    case 2: {  // append a part of itself: the aliasing case
        if (m.size() > max_model) return;
        std::size_t from = in.below(m.size() + 1);
        std::size_t count = in.below(m.size() - from + 1);
        std::string expected = m + m.substr(from, count);
        errc e = s.try_append(s.view().substr(from, count));
        if (e != errc::ok) return expect_oom(e);
        m = expected;
        return;
    }
    case 3: {  // append the other string, or itself whole
        if (m.size() + w.ms[j].size() > max_model) return;
        std::string expected = m + w.ms[j];
        errc e = s.try_append(w.s[j].view());
        if (e != errc::ok) return expect_oom(e);
        m = expected;
        return;
    }
    case 4: {
        char c = static_cast<char>(in.byte());
        errc e = s.try_push_back(c);
        if (e != errc::ok) return expect_oom(e);
        m.push_back(c);
        return;
    }
    case 5:
        s.pop_back();
        if (!m.empty()) m.pop_back();
        return;
    case 6:
        s.clear();
        m.clear();
        return;
    case 7: {
        errc e = s.try_reserve(in.below(64));
        if (e != errc::ok) return expect_oom(e);
        return;
    }
    case 8: {  // move, self-move included
        secret& from = w.s[j];
        s = std::move(from);
        if (i != j) {
            m = std::exchange(w.ms[j], std::string());
        }
        return;
    }
    default: {  // hand the buffer to C
        auto released = std::move(s).try_release_c_string();
        if (!released) {
            if (has_nul(m)) {
                EXPECT(released.error() == errc::embedded_nul);
            } else {
                expect_oom(released.error());
            }
            return;
        }
        EXPECT(std::string(released->get()) == m);
        m.clear();
        return;  // the secure_c_string wipes it; wipe_checked checks
    }
    }
}

void array_ops(world& w, reader& in, unsigned op) {
    std::size_t i = in.below(2);
    std::size_t j = in.below(2);
    int_array& a = w.a[i];
    std::vector<int>& m = w.ma[i];
    switch (op) {
    case 0: {
        std::size_t n = in.below(33);
        auto made = int_array::try_zeroed(n);
        if (!made) return expect_oom(made.error());
        a = std::move(*made);
        m.assign(n, 0);
        return;
    }
    case 1: {  // resize, often to 0 and back
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(41);
        errc e = a.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        resize_model(m, n);
        return;
    }
    case 2: {
        if (m.empty()) return;
        std::size_t k = in.below(m.size());
        int value = static_cast<int>(in.byte()) - 128;
        a[k] = value;
        m[k] = value;
        return;
    }
    case 3: {  // a copy of a part of an array (itself included) assigned to a[i]
        const std::vector<int>& source = w.ma[j];
        std::size_t from = in.below(source.size() + 1);
        std::size_t count = in.below(source.size() - from + 1);
        const int* first = w.a[j].data() == nullptr ? nullptr : w.a[j].data() + from;
        auto made = int_array::try_copied_from(first, count);
        if (!made) return expect_oom(made.error());
        std::vector<int> expected(source.begin() + static_cast<std::ptrdiff_t>(from),
                                  source.begin() + static_cast<std::ptrdiff_t>(from + count));
        a = std::move(*made);
        m = expected;
        return;
    }
    case 4: {  // move, self-move included
        int_array& from = w.a[j];
        a = std::move(from);
        if (i != j) m = std::exchange(w.ma[j], std::vector<int>());
        return;
    }
    case 5: {  // hand pointer and length to C, which checks and frees them
        auto out = std::move(a).release_with_size();
        EXPECT(out.size == m.size());
        for (std::size_t k = 0; k < out.size; ++k) EXPECT(out.data[k] == m[k]);
        tracked::deallocate(out.data);
        m.clear();
        return;
    }
    case 6: {  // out_array, count through a pointer
        std::size_t n = in.below(9);
        int mode = static_cast<int>(in.below(3));
        std::size_t count = 0;
        int rc = c_get_ints(handoff::out_array(a, count), &count, n, mode);
        m.clear();
        if (rc == 0) {
            for (std::size_t k = 0; k < n; ++k) m.push_back(static_cast<int>(k * 7 + 1));
        }
        return;
    }
    default: {  // out_array, count returned
        std::size_t n = in.below(9);
        int mode = static_cast<int>(in.below(3));
        int count = 0;
        count = c_list_ints(handoff::out_array(a, count), n, mode);
        m.clear();
        if (count > 0) {
            for (std::size_t k = 0; k < n; ++k) m.push_back(static_cast<int>(k * 7 + 1));
        }
        return;
    }
    }
}

void byte_ops(world& w, reader& in, unsigned op) {
    switch (op) {
    case 0: {
        std::size_t n = in.below(33);
        auto made = byte_array::try_zeroed(n);
        if (!made) return expect_oom(made.error());
        w.b = std::move(*made);
        w.mb.assign(n, 0);
        return;
    }
    case 1: {
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(41);
        errc e = w.b.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        resize_model(w.mb, n);
        return;
    }
    case 2: {
        if (w.mb.empty()) return;
        std::size_t k = in.below(w.mb.size());
        unsigned char value = static_cast<unsigned char>(in.byte() | 1);
        w.b[k] = value;
        w.mb[k] = value;
        return;
    }
    default: {  // a copy of its own tail
        std::size_t from = in.below(w.mb.size() + 1);
        const unsigned char* first = w.b.data() == nullptr ? nullptr : w.b.data() + from;
        auto made = byte_array::try_copied_from(first, w.mb.size() - from);
        if (!made) return expect_oom(made.error());
        std::vector<unsigned char> expected(w.mb.begin() + static_cast<std::ptrdiff_t>(from),
                                            w.mb.end());
        w.b = std::move(*made);
        w.mb = expected;
        return;
    }
    }
}

// Arrays whose elements own C strings: owns_pointees, owns_secret_strings.
template <class Array, class Domain>
void owning_array_ops(Array& a, optional_strings& m, reader& in, unsigned op) {
    switch (op) {
    case 0: {
        std::size_t n = in.below(9);
        auto made = Array::try_zeroed(n);
        if (!made) return expect_oom(made.error());
        a = std::move(*made);
        m.assign(n, std::nullopt);
        return;
    }
    case 1: {  // replace one element; the old one is freed the way its policy says
        if (m.empty()) return;
        std::size_t k = in.below(m.size());
        std::string text = in.text();
        auto made = handoff::try_c_strdup<Domain>(text);
        if (!made) {
            return expect_failure(made.error(),
                                  has_nul(text) ? errc::embedded_nul : errc::out_of_memory);
        }
        Array::element_policy::template release_element<Domain>(a[k]);
        a[k] = made->release();
        m[k] = text;
        return;
    }
    case 2: {
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(9);
        errc e = a.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        resize_model(m, n);
        return;
    }
    default: {  // hand everything to C, which checks and frees it
        auto out = std::move(a).release_with_size();
        EXPECT(out.size == m.size());
        for (std::size_t k = 0; k < out.size; ++k) {
            check_c_string(out.data[k], m[k]);
            Array::element_policy::template release_element<Domain>(out.data[k]);
        }
        if (out.data != nullptr) {
            if constexpr (Array::element_policy::wipe_buffer) {
                handoff::secure_wipe(out.data, out.size * sizeof(char*));
            }
            Domain::deallocate(out.data);
        }
        m.clear();
        return;
    }
    }
}

void record_ops(world& w, reader& in, unsigned op) {
    switch (op) {
    case 0: {
        std::size_t n = in.below(9);
        auto made = record_array::try_zeroed(n);
        if (!made) return expect_oom(made.error());
        w.r = std::move(*made);
        w.mr.assign(n, {std::nullopt, 0});
        return;
    }
    case 1: {
        if (w.mr.empty()) return;
        std::size_t k = in.below(w.mr.size());
        std::string text = without_nul(in.text());
        int code = in.byte();
        auto made = handoff::try_c_strdup<tracked>(text);
        if (!made) return expect_oom(made.error());
        frees_record_text::release_element<tracked>(w.r[k]);
        w.r[k] = record{made->release(), code};
        w.mr[k] = {text, code};
        return;
    }
    default: {
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(9);
        errc e = w.r.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        w.mr.resize(n, {std::nullopt, 0});
        return;
    }
    }
}

void list_ops(world& w, reader& in, unsigned op) {
    std::size_t i = in.below(2);
    std::size_t j = in.below(2);
    list& l = w.l[i];
    auto& m = w.ml[i];
    switch (op) {
    case 0: {  // from std::strings, which may hold NULs
        std::vector<std::string> strings(in.below(5));
        bool nul = false;
        for (std::string& s : strings) {
            s = in.text();
            nul = nul || has_nul(s);
        }
        auto made = list::try_from(strings);
        if (!made) return expect_failure(made.error(), errc::embedded_nul);
        EXPECT(!nul);
        l = std::move(*made);
        m = strings;
        return;
    }
    case 1: {  // from C strings, some of which may be NULL
        std::vector<std::string> texts(in.below(5));
        std::vector<const char*> pointers;
        bool null = false;
        for (std::string& s : texts) {
            s = without_nul(in.text());
            bool is_null = in.byte() % 5 == 0;
            null = null || is_null;
            pointers.push_back(is_null ? nullptr : s.c_str());
        }
        auto made = list::try_from(pointers);
        if (!made) return expect_failure(made.error(), errc::null_pointer);
        EXPECT(!null);
        l = std::move(*made);
        m = texts;
        return;
    }
    case 2: {  // from its own strings, or the other list's
        auto made = list::try_from(w.l[j]);
        if (!made) return expect_oom(made.error());
        std::vector<std::string> expected = w.ml[j].value_or(std::vector<std::string>());
        l = std::move(*made);
        m = expected;
        return;
    }
    case 3: {  // move, self-move included
        list& from = w.l[j];
        l = std::move(from);
        if (i != j) m = std::exchange(w.ml[j], std::nullopt);
        return;
    }
    case 4: {  // hand the array to C, which checks and frees it
        std::size_t n = l.size();
        char** raw = std::move(l).release();
        EXPECT((raw == nullptr) == !m.has_value());
        if (raw != nullptr) {
            for (std::size_t k = 0; k < n; ++k) {
                EXPECT((*m)[k] == raw[k]);
                tracked::deallocate(raw[k]);
            }
            EXPECT(raw[n] == nullptr);
            tracked::deallocate(raw);
        }
        m.reset();
        return;
    }
    case 5:
        l.reset();
        m.reset();
        return;
    default: {  // adopt an array C built
        std::size_t n = in.below(4);
        char** raw = static_cast<char**>(tracked::allocate((n + 1) * sizeof(char*)));
        if (raw == nullptr) return;
        std::vector<std::string> texts;
        for (std::size_t k = 0; k < n; ++k) {
            texts.push_back(without_nul(in.text()));
            raw[k] = c_copy(texts.back());
            if (raw[k] == nullptr) {
                for (std::size_t f = 0; f < k; ++f) tracked::deallocate(raw[f]);
                tracked::deallocate(raw);
                return;
            }
        }
        raw[n] = nullptr;
        l = list::adopt(raw);
        m = texts;
        return;
    }
    }
}

void unique_ops(world& w, reader& in, unsigned op) {
    std::string text = without_nul(in.text());
    int mode = static_cast<int>(in.below(3));
    switch (op) {
    case 0: {  // out_ptr into the owner: emptied first, then the result if any
        int rc = c_make_string(handoff::out_ptr(w.u), mode, text);
        w.mu.reset();
        if (rc == 0 && mode == 0) w.mu = text;
        return;
    }
    case 1: {  // inout_ptr: the old pointer goes in, the new one comes back
        std::optional<std::string> old = w.mu;
        int rc = c_edit_string(handoff::inout_ptr(w.u), mode, text);
        if (mode == 1) {
            w.mu.reset();
        } else if (mode == 0 && rc == 0) {
            w.mu = old.value_or(std::string()) + text;
        }
        return;
    }
    case 2: {  // the same through raw pointers, then adopted
        char stale = 's';
        char* raw = &stale;  // not the tracked domain's: adopting it would abort
        int rc = c_make_string(handoff::out_ptr(raw), mode, text);
        EXPECT(rc == 0 || raw == nullptr);
        if (raw != nullptr) {
            char* inout = raw;
            int edit = static_cast<int>(in.below(3));
            int edited = c_edit_string(handoff::inout_ptr(inout), edit, "+");
            if (edited != 0) EXPECT(inout == raw);
            if (edit == 1) EXPECT(inout == nullptr);  // LWG 3897
            raw = inout;
        }
        // The analyzer does not run the destructor of inout_ptr's temporary,
        // which stores the edited string into `inout`; it sees the old one.
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see above
        w.u = handoff::adopt<tracked>(raw);
        w.mu.reset();
        if (raw != nullptr) w.mu = std::string(raw);
        return;
    }
    case 3: {
        auto made = handoff::try_c_strdup<tracked>(text);
        if (!made) return expect_oom(made.error());
        w.u = std::move(*made);
        w.mu = text;
        return;
    }
    default: {  // release to C, which frees it
        char* raw = w.u.release();
        check_c_string(raw, w.mu);
        tracked::deallocate(raw);
        w.mu.reset();
        return;
    }
    }
}

void vector_ops(world& w, reader& in, unsigned op) {
    std::size_t i = in.below(2);
    std::size_t j = in.below(2);
    int_vector& v = w.v[i];
    std::vector<int>& m = w.mv[i];
    switch (op) {
    case 0: {
        int value = in.byte();
        errc e = v.try_push_back(value);
        if (e != errc::ok) return expect_oom(e);
        m.push_back(value);
        return;
    }
    case 1: {  // push_back of one of its own elements
        if (m.empty()) return;
        std::size_t k = in.below(m.size());
        errc e = v.try_push_back(v[k]);
        if (e != errc::ok) return expect_oom(e);
        m.push_back(m[k]);
        return;
    }
    case 2: {  // append a part of itself or of the other vector
        const std::vector<int>& source = w.mv[j];
        if (m.size() + source.size() > max_model) return;
        std::size_t from = in.below(source.size() + 1);
        std::size_t count = in.below(source.size() - from + 1);
        const int* first = w.v[j].data() == nullptr ? nullptr : w.v[j].data() + from;
        std::vector<int> expected = m;
        expected.insert(expected.end(), source.begin() + static_cast<std::ptrdiff_t>(from),
                        source.begin() + static_cast<std::ptrdiff_t>(from + count));
        errc e = v.try_append(first, count);
        if (e != errc::ok) return expect_failure(e, errc::null_pointer);
        m = expected;
        return;
    }
    case 3: {
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(41);
        errc e = v.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        resize_model(m, n);
        return;
    }
    case 4: {
        std::size_t before = v.capacity();
        errc e = v.try_reserve(in.below(50));
        if (e != errc::ok) return expect_oom(e);
        EXPECT(v.capacity() >= before);
        return;
    }
    case 5:
        v.pop_back();
        if (!m.empty()) m.pop_back();
        return;
    case 6:
        v.clear();
        m.clear();
        return;
    case 7:
        v.shrink_to_fit();
        EXPECT(v.capacity() >= v.size());
        return;
    case 8: {  // trimmed hand-off into a malloc_array
        w.a[j] = std::move(v).to_array();
        w.ma[j] = std::exchange(m, std::vector<int>());
        return;
    }
    case 9: {  // untrimmed hand-off to C
        auto out = std::move(v).release_with_size();
        EXPECT(out.size == m.size());
        EXPECT((out.data == nullptr) == (out.size == 0));
        for (std::size_t k = 0; k < out.size; ++k) EXPECT(out.data[k] == m[k]);
        tracked::deallocate(out.data);
        m.clear();
        return;
    }
    case 10: {
        int_vector& from = w.v[j];
        v = std::move(from);
        if (i != j) m = std::exchange(w.mv[j], std::vector<int>());
        return;
    }
    default:
        v = int_vector::from_array(std::move(w.a[j]));
        m = std::exchange(w.ma[j], std::vector<int>());
        return;
    }
}

void string_vector_ops(world& w, reader& in, unsigned op) {
    switch (op) {
    case 0: {
        std::string text = without_nul(in.text());
        auto made = handoff::try_c_strdup<tracked>(text);
        if (!made) return expect_oom(made.error());
        errc e = w.vp.try_push_back(made->get());
        if (e != errc::ok) return expect_oom(e);  // `made` still owns the string
        (void)made->release();
        w.mvp.emplace_back(text);
        return;
    }
    case 1:
        w.vp.pop_back();
        if (!w.mvp.empty()) w.mvp.pop_back();
        return;
    case 2: {
        std::size_t n = in.byte() % 4 == 0 ? 0 : in.below(12);
        errc e = w.vp.try_resize(n);
        if (e != errc::ok) return expect_oom(e);
        resize_model(w.mvp, n);
        return;
    }
    default:  // trimmed hand-off into the owning array
        w.p = std::move(w.vp).to_array();
        w.mp = std::exchange(w.mvp, optional_strings());
        return;
    }
}

void secret_vector_ops(world& w, reader& in, unsigned op) {
    switch (op) {
    case 0: {
        std::string text = in.text();
        errc e = w.vs.try_append(text.data(), text.size());
        if (e != errc::ok) return expect_failure(e, errc::null_pointer);
        w.mvs += text;
        return;
    }
    case 1: {  // append a part of itself
        if (w.mvs.size() > max_model) return;
        std::size_t from = in.below(w.mvs.size() + 1);
        std::size_t count = in.below(w.mvs.size() - from + 1);
        const char* first = w.vs.data() == nullptr ? nullptr : w.vs.data() + from;
        std::string expected = w.mvs + w.mvs.substr(from, count);
        errc e = w.vs.try_append(first, count);
        if (e != errc::ok) return expect_failure(e, errc::null_pointer);
        w.mvs = expected;
        return;
    }
    case 2:
        w.vs.pop_back();
        if (!w.mvs.empty()) w.mvs.pop_back();
        return;
    case 3:
        w.vs.clear();
        w.mvs.clear();
        return;
    case 4: w.vs.shrink_to_fit(); return;
    default: {  // hand to C, which reads, wipes and frees it
        auto out = std::move(w.vs).release_with_size();
        EXPECT(std::string(out.data == nullptr ? "" : out.data, out.size) == w.mvs);
        handoff::secure_wipe(out.data, out.size);
        wipe_checked::deallocate(out.data);  // its spare bytes must already be zero
        w.mvs.clear();
        return;
    }
    }
}

void run(const std::uint8_t* data, std::size_t size) {
    reader in(data, size);
    world w;
    for (int step = 0; step < 256 && !in.done(); ++step) {
        state().injected = false;
        std::uint8_t opcode = in.byte();
        unsigned op = in.byte();
        switch (opcode % 13) {
        case 0: secret_ops(w, in, op % 10); break;
        case 1: array_ops(w, in, op % 8); break;
        case 2: byte_ops(w, in, op % 4); break;
        case 3: owning_array_ops<string_array, tracked>(w.p, w.mp, in, op % 4); break;
        case 4: owning_array_ops<secret_strings, wipe_checked>(w.q, w.mq, in, op % 4); break;
        case 5: record_ops(w, in, op % 3); break;
        case 6: list_ops(w, in, op % 7); break;
        case 7: unique_ops(w, in, op % 5); break;
        case 8: vector_ops(w, in, op % 12); break;
        case 9: string_vector_ops(w, in, op % 4); break;
        case 10: secret_vector_ops(w, in, op % 6); break;
        default:  // fail one of the next few allocations
            state().fail_at = state().allocations + 1 + in.below(4);
            break;
        }
        if (state().injected) state().fail_at = 0;  // one failure per arming
        check(w);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    handoff_test::reset_state();
    run(data, size);
    // Every owner is gone: nothing it allocated may be live.
    EXPECT(state().live_count == 0);
    EXPECT(state().overflowed == 0);
    return 0;
}
