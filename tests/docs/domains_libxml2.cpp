// Completes docs/domains.md's libxml2 block: a document to work on, freed at
// the end. The test runs it under valgrind: the block, as written, leaks nothing.
// doc-test-pkg-config: libxml-2.0
// doc-test-run: valgrind
#include <cstdio>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <handoff/handoff.hpp>

int main() {
    xmlDocPtr doc = xmlNewDoc(reinterpret_cast<const xmlChar*>("1.0"));
#include DOC_BLOCK
    std::printf("%d bytes: %s", size, reinterpret_cast<const char*>(dump.data()));
    xmlFreeDoc(doc);
    xmlCleanupParser();
}
