#!/usr/bin/env python3
"""Runs every code block of README.md and docs/*.md as written.

usage: doc_blocks.py SOURCE_ROOT [--list] [--only=DOC:LINE]...

Every fenced block must follow a marker comment on the line just before it:

  <!-- doc-test: program NAME -->      a complete C++ program: built by g++ and
                                       clang++, C++17 and C++20, under STRICT,
                                       and run (in the PAM environment below)
  <!-- doc-test: output NAME -->       what program NAME prints, compared
  <!-- doc-test: fragment FILE -->     FILE (in tests/docs/) completes the block:
                                       it has `#include DOC_BLOCK` where the
                                       block goes; built like a program (a .c
                                       FILE by gcc and clang, C11) and run.
                                       FILE may say `// doc-test-pkg-config: P..`
                                       (flags after the sources) and
                                       `// doc-test-run: valgrind`
  <!-- doc-test: shell SCENARIO -->    run by bash -euo pipefail in a directory
                                       SCENARIO prepares, once with `c++` being
                                       g++ and once clang++; then checked
  <!-- doc-test: cmake SCENARIO -->    the block is a CMakeLists.txt: configured
                                       with -Werror=dev, built, and its app run
  <!-- doc-test: extracted by FILE [as TAG] -->
                                       another test takes the block from here
                                       (FILE must exist and name TAG)
  <!-- doc-test: not run: REASON -->   installs packages, needs root, a terminal
                                       or the network; the reason says which

A block without a marker fails the test, so a new example cannot go untested.
--list prints the blocks and their markers and runs nothing; --only runs the
blocks whose DOC:LINE contains the text given.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wconversion", "-Wshadow"]
CXX_BUILDS = [(c, s) for c in ("g++", "clang++") for s in ("c++17", "c++20")]
C_BUILDS = [(c, "c11") for c in ("gcc", "clang")]
MARKER = re.compile(r"^\s*<!-- doc-test: (.*?) -->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


class Failed(Exception):
    pass


SETUP = threading.Lock()  # the install and the PATH directories are shared


class Block:
    def __init__(self, doc, line, lang, marker, text):
        self.doc, self.line, self.lang, self.marker, self.text = doc, line, lang, marker, text

    def where(self):
        return "%s:%d" % (self.doc, self.line)


def blocks_of(root, doc):
    """The fenced blocks of one Markdown file with the marker before each."""
    lines = open(os.path.join(root, doc), encoding="utf-8").read().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise Failed("%s:%d: the block never ends" % (doc, start + 1))
        i += 1
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        found.append(Block(doc, start + 1, lang, marker.group(1) if marker else None,
                           "\n".join(body) + "\n"))
    return found


def all_blocks(root):
    docs = ["README.md"] + sorted(os.path.join("docs", d)
                                  for d in os.listdir(os.path.join(root, "docs"))
                                  if d.endswith(".md"))
    return [b for d in docs for b in blocks_of(root, d)]


def run(cmd, cwd=None, env=None, inp=None):
    """Runs cmd; returns its standard output (and its standard error, on failure)."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=inp, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        raise Failed("$ %s%s\n%s%s(exit %d)" % (" ".join(cmd), "   (in %s)" % cwd if cwd else "",
                                                proc.stdout, proc.stderr, proc.returncode))
    return proc.stdout


class Env:
    """The PAM environment every program runs in: pam_wrapper with a service
    "login" (pam_matrix; alice's password is "secret"), as docs/testing.md
    describes; and a service "handoff-consumer" for tests/consumers/pam_app.cpp."""

    def __init__(self, root, work):
        self.root, self.work = root, work
        modules = run(["pkg-config", "--variable=modules", "pam_wrapper"]).strip()
        self.wrapper = os.path.join(os.path.dirname(modules), "libpam_wrapper.so")
        self.services = os.path.join(work, "services")
        os.makedirs(self.services)
        passdb = os.path.join(work, "passdb")
        with open(passdb, "w") as f:
            f.write("alice:secret:login\n")
        with open(os.path.join(self.services, "login"), "w") as f:
            for kind in ("auth", "account"):
                f.write("%s required %s/pam_matrix.so passdb=%s\n" % (kind, modules, passdb))
        with open(os.path.join(self.services, "other"), "w") as f:
            f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
        with open(os.path.join(self.services, "handoff-consumer"), "w") as f:
            f.write("auth required pam_echo.so handoff consumer %u\n"
                    "auth required pam_permit.so\n")

    def pam(self):
        return dict(os.environ, LD_PRELOAD=self.wrapper, PAM_WRAPPER="1",
                    PAM_WRAPPER_SERVICE_DIR=self.services, PAM_WRAPPER_DISABLE_DEEPBIND="1",
                    UID_WRAPPER_DISABLE_DEEPBIND="1")


def needs_pam(text):
    return "<handoff/pam" in text or "<security/pam" in text


def build_and_run(env, name, source, extra_text, where, pkg=(), valgrind=False):
    """Builds source with every compiler and standard, runs each binary, and
    returns the output of the first (all must agree)."""
    is_c = source.endswith(".c")
    libs = []
    if needs_pam(extra_text):
        libs += ["-pthread", "-lpam"]
    if pkg:
        libs += run(["pkg-config", "--cflags", "--libs"] + list(pkg)).split()
    outputs = []
    for compiler, std in (C_BUILDS if is_c else CXX_BUILDS):
        exe = os.path.join(where, "%s-%s-%s" % (name, compiler, std))
        run([compiler, "-std=" + std] + STRICT +
            ["-I", os.path.join(env.root, "include"), source, "-o", exe] + libs)
        cmd = [exe]
        if valgrind:
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect,possible"] + cmd
        outputs.append(run(cmd, env=env.pam()))
    if any(o != outputs[0] for o in outputs):
        raise Failed("%s: the builds print different things:\n%s" % (name, "\n".join(outputs)))
    return outputs[0]


# --- block kinds -------------------------------------------------------------

def program(env, block, name, outputs):
    where = os.path.join(env.work, "program-" + name)
    os.makedirs(where)
    source = os.path.join(where, name + ".cpp")
    with open(source, "w") as f:
        f.write(block.text)
    out = build_and_run(env, name, source, block.text, where)
    want = outputs.get(name)
    if want is not None and out != want:
        raise Failed("%s prints\n%s\nbut the output block after it says\n%s" % (name, out, want))
    return "builds and runs (g++, clang++; C++17, C++20)" + (", output as shown" if want else "")


def fragment(env, block, path):
    full = os.path.join(env.root, path)
    if not os.path.isfile(full):
        raise Failed("no file %s" % path)
    text = open(full, encoding="utf-8").read()
    if "DOC_BLOCK" not in text:
        raise Failed("%s does not #include DOC_BLOCK" % path)
    name = os.path.splitext(os.path.basename(path))[0]
    where = os.path.join(env.work, "fragment-" + name)
    os.makedirs(where)
    inc = os.path.join(where, "block.inc")
    with open(inc, "w") as f:
        f.write(block.text)
    source = os.path.join(where, os.path.basename(path))
    with open(source, "w") as f:
        f.write('#define DOC_BLOCK "%s"\n' % inc)
        f.write('#line 1 "%s"\n' % path)
        f.write(text)
    pkg = []
    for m in re.finditer(r"^// doc-test-pkg-config: (.*)$", text, re.M):
        pkg += m.group(1).split()
    valgrind = re.search(r"^// doc-test-run: valgrind$", text, re.M) is not None
    build_and_run(env, name, source, text + block.text, where, pkg, valgrind)
    return "completed by %s, builds and runs%s" % (path, " under valgrind" if valgrind else "")


def copy_source(env, dest):
    """The committed files of the source tree (what a clone or a tarball has)."""
    files = run(["git", "-C", env.root, "ls-files"]).split()
    for rel in files:
        if rel.startswith(("bench/", "tests/fuzz_core_corpus/", "tests/pam/fuzz_corpus/")):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(env.root, rel), os.path.join(dest, rel))


def installed_prefix(env):
    with SETUP:
        return _installed_prefix(env)


def _installed_prefix(env):
    prefix = os.path.join(env.work, "prefix")
    if not os.path.isdir(prefix):
        build = os.path.join(env.work, "install-build")
        run(["meson", "setup", build, env.root, "--prefix=" + prefix, "-Dtests=disabled",
             "-Dbench=disabled", "-Dexamples=disabled"])
        run(["meson", "install", "-C", build])
    return prefix


def compilers_named_cxx(env):
    """PATH directories in which `c++` is g++, then clang++."""
    dirs = []
    with SETUP:
        for compiler in ("g++", "clang++"):
            d = os.path.join(env.work, "bin-" + compiler)
            if not os.path.isdir(d):
                os.makedirs(d)
                os.symlink(shutil.which(compiler), os.path.join(d, "c++"))
            dirs.append((compiler, d))
    return dirs


def shell(env, block, scenario, programs):
    quickstart = programs.get("quickstart")
    if quickstart is None:
        raise Failed("no program quickstart in README.md for the shell blocks")
    pam_app = os.path.join(env.root, "tests", "consumers", "pam_app.cpp")
    results = []
    for compiler, bindir in compilers_named_cxx(env):
        where = os.path.join(env.work, "shell-%s-%d-%s" % (scenario, block.line, compiler))
        os.makedirs(where)
        shell_env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        check = []  # (program, args, what it must print)
        if scenario == "vendored-core":
            os.makedirs(os.path.join(where, "third_party", "handoff"))
            os.makedirs(os.path.join(where, "src"))
            shutil.copy(os.path.join(env.root, "include", "handoff", "handoff.hpp"),
                        os.path.join(where, "third_party", "handoff"))
            shutil.copy(quickstart[0], os.path.join(where, "src", "main.cpp"))
            check.append(("a.out", [], quickstart[1]))
        elif scenario == "vendored-pam":
            shutil.copytree(os.path.join(env.root, "include"),
                            os.path.join(where, "handoff", "include"))
            project = os.path.join(where, "your-project")
            os.makedirs(os.path.join(project, "third_party", "handoff"))
            os.makedirs(os.path.join(project, "src"))
            shutil.copy(pam_app, os.path.join(project, "src", "login.cpp"))
            check.append((os.path.join("your-project", "a.out"), [env.services],
                          "transaction via pam_start_confdir: ok"))
        elif scenario == "installed":
            prefix = installed_prefix(env)
            shell_env["PKG_CONFIG_PATH"] = os.path.join(prefix, "share", "pkgconfig")
            shutil.copy(quickstart[0], os.path.join(where, "main.cpp"))
            shutil.copy(pam_app, os.path.join(where, "login.cpp"))
            # The block builds main.cpp, then login.cpp: a.out is the last.
            check.append(("a.out", [env.services], "transaction via pam_start_confdir: ok"))
        else:
            raise Failed("unknown shell scenario %r" % scenario)
        run(["bash", "-euo", "pipefail", "-c", block.text], cwd=where, env=shell_env)
        for exe, args, want in check:
            out = run([os.path.join(where, exe)] + args, env=env.pam())
            if want not in out:
                raise Failed("%s (c++ = %s) printed\n%s\nnot %r" % (exe, compiler, out, want))
        results.append(compiler)
    return "runs as written with c++ = " + " and ".join(results)


def cmake(env, block, scenario, programs):
    quickstart = programs["quickstart"]
    where = os.path.join(env.work, "cmake-%s-%d" % (scenario, block.line))
    os.makedirs(where)
    shutil.copy(quickstart[0], os.path.join(where, "main.cpp"))
    with open(os.path.join(where, "CMakeLists.txt"), "w") as f:
        f.write(block.text)
    args = []
    if scenario == "subdirectory":
        copy_source(env, os.path.join(where, "third_party", "handoff"))
    elif scenario == "installed":
        args.append("-DCMAKE_PREFIX_PATH=" + installed_prefix(env))
    else:
        raise Failed("unknown cmake scenario %r" % scenario)
    build = os.path.join(where, "build")
    out = run(["cmake", "-S", where, "-B", build, "-Werror=dev", "-Werror=deprecated"] + args)
    if "Warning" in out:
        raise Failed("cmake warns:\n" + out)
    run(["cmake", "--build", build])
    out = run([os.path.join(build, "app")])
    if out != quickstart[1]:
        raise Failed("app printed\n%s\nnot\n%s" % (out, quickstart[1]))
    return "configures without a warning, builds main.cpp (the quick start), runs"


def extracted(env, block, rest):
    m = re.match(r"^(\S+)(?: as (.+))?$", rest)
    if not m:
        raise Failed("say `extracted by FILE [as TAG]`")
    path, tag = m.group(1), m.group(2)
    full = os.path.join(env.root, path)
    if not os.path.isfile(full):
        raise Failed("no file %s" % path)
    if tag and tag not in open(full, encoding="utf-8").read():
        raise Failed("%s does not name %r" % (path, tag))
    return "taken from here by " + path


def main():
    if os.environ.get("HANDOFF_IN_CONSUMER_TEST"):
        print("skipped: run by the consumer tests' build of a clone (it runs in the outer one)")
        return 77
    root = os.path.abspath(sys.argv[1])
    only = [a[len("--only="):] for a in sys.argv[2:] if a.startswith("--only=")]
    blocks = all_blocks(root)
    unmarked = [b for b in blocks if b.marker is None]
    if "--list" in sys.argv:
        for b in blocks:
            print("%-22s %-6s %s" % (b.where(), b.lang or "-", b.marker or "UNMARKED"))
        return 0
    failures = ["%s: a ```%s block with no `<!-- doc-test: ... -->` marker before it"
                % (b.where(), b.lang) for b in unmarked]
    work = tempfile.mkdtemp(prefix="handoff-doc-blocks-")
    try:
        env = Env(root, work)
        outputs = {}
        for b in blocks:
            if b.marker and b.marker.startswith("output "):
                outputs[b.marker.split()[1]] = b.text
        # Programs first: shell and CMake blocks build the quick start as main.cpp.
        programs = {}
        jobs = []
        for b in blocks:
            if not b.marker:
                continue
            kind, _, rest = b.marker.partition(" ")
            if kind == "program":
                path = os.path.join(work, rest + ".cpp")
                with open(path, "w") as f:
                    f.write(b.text)
                programs[rest] = (path, outputs.get(rest, ""))
            if not only or any(o in b.where() for o in only):
                jobs.append((b, kind, rest))

        def one(job):
            b, kind, rest = job
            if kind == "program":
                return program(env, b, rest, outputs)
            if kind == "output":
                if rest not in programs:
                    raise Failed("output of %r, but there is no program %r" % (rest, rest))
                return "the output of " + rest
            if kind == "fragment":
                return fragment(env, b, rest)
            if kind == "shell":
                return shell(env, b, rest, programs)
            if kind == "cmake":
                return cmake(env, b, rest, programs)
            if kind == "extracted" and rest.startswith("by "):
                return extracted(env, b, rest[3:])
            if kind == "not" and rest.startswith("run: ") and len(rest) > 10:
                return "not run: " + rest[5:]
            raise Failed("unknown marker %r" % b.marker)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = [(job[0], pool.submit(one, job)) for job in jobs]
            for b, fut in futures:
                try:
                    print("ok   %s (%s): %s" % (b.where(), b.lang or "-", fut.result()), flush=True)
                except Failed as e:
                    print("FAIL %s (%s): %s" % (b.where(), b.lang or "-", e), flush=True)
                    failures.append("%s: %s" % (b.where(), str(e).splitlines()[0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("%d blocks, %d failed" % (len(blocks), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
