#!/usr/bin/env python3
"""Writes the fenced code block that follows a marker comment in a Markdown
file, so a test can compile what the README shows.

usage: extract_readme_block.py README MARKER OUTPUT

Fails (exit 1) when the marker or its block is missing, so a README edit that
drops the example breaks the build rather than the test silently.
"""
import sys


def main():
    readme, marker, output = sys.argv[1:4]
    lines = open(readme, encoding="utf-8").read().splitlines()
    # The marker of tests/docs/doc_blocks.py: "<!-- doc-test: extracted by FILE as MARKER -->".
    for i, line in enumerate(lines):
        if line.startswith("<!-- doc-test: extracted by ") and line.endswith(" as %s -->" % marker):
            break
    else:
        sys.exit("%s: no marker %r" % (readme, marker))
    if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
        sys.exit("%s: the marker %r is not followed by a code block" % (readme, marker))
    block = []
    for line in lines[i + 2:]:
        if line.startswith("```"):
            break
        block.append(line)
    else:
        sys.exit("%s: the block after %r never ends" % (readme, marker))
    with open(output, "w", encoding="utf-8") as f:
        f.write("// Generated from %s by %s; edit the README.\n" % (readme, sys.argv[0]))
        f.write("\n".join(block) + "\n")


if __name__ == "__main__":
    main()
