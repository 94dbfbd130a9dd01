#!/usr/bin/env python3
"""What a PAM module built with pam_module.hpp exports (nm -D --defined-only).

  no-handoff         (default visibility) none of handoff's inline functions,
                     typeinfo or vtables: another copy of handoff in the process
                     (the application's, another module's) is never bound to them.
                     The std:: inline code the module instantiates is listed: the
                     compiler exports it under default visibility, whatever a
                     header does.
  entry-points-only  (linked with examples/pam_module/pam_module.map) the
                     pam_sm_* functions and nothing else.

usage: module_exports.py NM MODULE.so MODE
"""
import subprocess
import sys


def main(argv):
    nm, module, mode = argv[1], argv[2], argv[3]
    out = subprocess.run([nm, "-D", "--defined-only", "--format=posix", module],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    names = sorted({line.split()[0] for line in out.splitlines() if line.strip()})
    entries = [n for n in names if n.startswith("pam_sm_")]
    others = [n for n in names if not n.startswith("pam_sm_")]
    print("exported entry points:", " ".join(entries))
    if others:
        demangled = subprocess.run(["c++filt"], input="\n".join(others), check=False,
                                   stdout=subprocess.PIPE, universal_newlines=True).stdout
        print("exported besides them (%d):" % len(others))
        print(demangled)
    if not entries:
        print("FAIL: no pam_sm_* entry point is exported")
        return 1
    if mode == "entry-points-only":
        return 1 if others else 0
    # handoff's mangled names hold "7handoff" (the namespace), typeinfo and
    # vtables included (_ZTIN7handoff..., _ZTVN7handoff...).
    ours = [n for n in others if "7handoff" in n]
    for n in ours:
        print("FAIL: handoff's symbol exported:", n)
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
