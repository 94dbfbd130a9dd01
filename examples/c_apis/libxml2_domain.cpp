// libxml2's allocators are function-pointer variables (xmlMalloc, xmlFree,
// xmlRealloc), set by xmlMemSetup and, in some builds, macros. They cannot be
// template arguments, so allocator_domain cannot name them: the idiom is a
// domain written by hand whose members call them, read at each call.
//
// The C it replaces:
//   xmlChar* name = xmlMalloc(len + 1);           /* not malloc! */
//   memcpy(name, src, len); name[len] = 0;
//   xmlNodePtr node = xmlNewDocNodeEatName(doc, NULL, name, NULL);  /* eats name */
//   xmlChar* text; int size;
//   xmlDocDumpMemory(doc, &text, &size); ...; xmlFree(text);       /* not free! */
#include <handoff/handoff.hpp>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlmemory.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

struct xml_domain {
    static void* allocate(std::size_t bytes) noexcept { return xmlMalloc(bytes); }
    static void* reallocate(void* p, std::size_t bytes) noexcept { return xmlRealloc(p, bytes); }
    static void deallocate(void* p) noexcept {
        if (p != nullptr) xmlFree(p);
    }
};

using xml_doc = handoff::c_unique_ptr<xmlDoc, handoff::deleter_domain<xmlFreeDoc>>;

namespace {
// libxml2's strings are UTF-8 in unsigned char (xmlChar): these casts are the
// whole conversion.
const xmlChar* xml_text(const char* s) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
    return reinterpret_cast<const xmlChar*>(s);
}
xmlChar* xml_text(char* s) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
    return reinterpret_cast<xmlChar*>(s);
}
const char* c_text(const xmlChar* s) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): see above
    return reinterpret_cast<const char*>(s);
}

// Counting hooks installed with xmlMemSetup, to show that the domain follows
// whatever allocator libxml2 uses when it is called. They are C functions
// without a context: what they count is global.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
int hooked_allocations = 0;
void* counting_malloc(std::size_t n) {
    ++hooked_allocations;
    return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n) {
    ++hooked_allocations;
    return std::realloc(p, n);
}
char* counting_strdup(const char* s) {
    ++hooked_allocations;
    return ::strdup(s);
}
}  // namespace

int main() {
    if (xmlMemSetup(std::free, counting_malloc, counting_realloc, counting_strdup) != 0) return 1;
    xml_doc doc(xmlNewDoc(xml_text("1.0")));
    if (!doc) return 1;

    // A name built in libxml2's domain and eaten by the node.
    int before = hooked_allocations;
    auto name = handoff::try_c_strdup<xml_domain>("greeting");
    if (!name || hooked_allocations != before + 1) return 1;
    xmlNodePtr root =
        xmlNewDocNodeEatName(doc.get(), nullptr, xml_text(std::move(*name).release()), nullptr);
    if (root == nullptr) return 1;
    xmlDocSetRootElement(doc.get(), root);
    xmlNodeSetContent(root, xml_text("hello"));

    // A result freed with xmlFree, adopted.
    auto content = handoff::adopt<xml_domain>(xmlNodeGetContent(root));
    if (!content || std::strcmp(c_text(content.get()), "hello") != 0) {
        return 1;
    }

    // xmlDocDumpMemory writes a buffer through xmlChar** and its length
    // through int*: out_array fills a malloc_array from the pair.
    handoff::malloc_array<xmlChar, xml_domain> dump;
    int size = 0;
    xmlDocDumpMemory(doc.get(), handoff::out_array(dump, size), &size);
    if (dump.empty() || static_cast<int>(dump.size()) != size) return 1;
    std::string_view text(c_text(dump.data()), dump.size());
    std::printf("%.*s", static_cast<int>(text.size()), text.data());
    return text.find("<greeting>hello</greeting>") != std::string_view::npos ? 0 : 1;
}
