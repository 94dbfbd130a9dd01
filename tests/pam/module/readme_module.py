#!/usr/bin/env python3
"""Writes the C++ module printed in README.md's "Writing a PAM module" section.

usage: readme_module.py README.md OUTPUT.cpp

The first ```cpp block of that section is copied as it is, so the module the
README shows is the module the tests build and run. Fails when the section or
its block is missing, or when the block reaches 30 lines (the README promises
a module of under 30).
"""
import sys

SECTION = "## Writing a PAM module"
LIMIT = 30


def extract(text):
    lines = text.splitlines()
    try:
        start = lines.index(SECTION)
    except ValueError:
        sys.exit("readme_module.py: no section %r in the README" % SECTION)
    block = None
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if lines[i].strip() == "```cpp":
            end = lines.index("```", i + 1)
            block = lines[i + 1:end]
            break
    if block is None:
        sys.exit("readme_module.py: no ```cpp block in %r" % SECTION)
    if len(block) >= LIMIT:
        sys.exit("readme_module.py: the README's module has %d lines, not under %d"
                 % (len(block), LIMIT))
    return "\n".join(block) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        code = extract(f.read())
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("// Generated from README.md by tests/pam/module/readme_module.py.\n")
        f.write(code)
