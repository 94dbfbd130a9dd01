#!/usr/bin/env python3
"""Uses handoff the ways a C++ user does, from a clean clone of HEAD.

usage: run.py SCENARIO SOURCE_ROOT

  vendored            handoff.hpp copied alone (-I only); the PAM headers copied
                      beside it (-I, -lpam)
  install_meson       meson install (tests, bench, examples disabled; nothing
                      built), then pkg-config and CMake find_package
  install_cmake       cmake --install --prefix, then pkg-config and find_package
  install_identical   both installs to one prefix (DESTDIR): the same files,
                      bytes and modes
  cmake_subdirectory  add_subdirectory(handoff): targets only, nothing built
                      or installed
  cmake_fetchcontent  README's FetchContent lines, filled in with the release
                      that docs/release.md's `tools/release` command makes
                      (a file:// address); a CMake warning fails it
  meson_dist_wrap     the wrap tools/release wrote (checked equal to the one
                      README and docs/release.md show, filled in) and
                      README's meson.build lines
  meson_no_cpp_std    a Meson project that forgets cpp_std, built by clang++
                      (C++14 by default), with handoff as a subproject: setup
                      stops with handoff's own message (C++17 needed)

The release tarball is checked to hold exactly `git ls-files`.

Every consumer builds app.cpp against the core (handoff::handoff or the like)
and pam_app.cpp plus one translation unit per include/handoff/pam*.hpp
against the PAM side (handoff::pam or the like), with -Wall -Wextra -Werror,
and runs both; pam_app runs a real transaction through pam_start_confdir.

The tests work on a clone of HEAD, as CI does: uncommitted changes are not
part of them (a note says so). Outside a git checkout they are skipped (77),
or fail when HANDOFF_CONSUMERS_REQUIRED is set (tools/check sets it).
They never use the network. Builds they start run these tests again; there
HANDOFF_IN_CONSUMER_TEST is set and they are skipped, so nothing recurses.
"""
import filecmp
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

CXX = os.environ.get("CXX", "c++")
NESTED = "HANDOFF_IN_CONSUMER_TEST"
SKIP = 77
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


class Failed(Exception):
    pass


def run(cmd, cwd=None, env=None, quiet=False):
    print("$ " + " ".join(cmd) + ("   (in %s)" % cwd if cwd else ""), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    if not quiet or proc.returncode != 0:
        print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise Failed("%s exited with %d" % (cmd[0], proc.returncode))
    return proc.stdout


def expect(condition, what):
    if not condition:
        raise Failed(what)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Source:
    """A clone of the repository's HEAD and what the consumers need from it."""

    def __init__(self, root, work, name="handoff"):
        self.dir = os.path.join(work, name)
        head = run(["git", "-C", root, "rev-parse", "HEAD"], quiet=True).strip()
        if run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"], quiet=True):
            print("note: uncommitted changes are not part of this test (it uses HEAD %s)" % head)
        run(["git", "clone", "-q", "--no-checkout", root, self.dir])
        run(["git", "-C", self.dir, "checkout", "-q", "--detach", head])
        header = open(os.path.join(self.dir, "include", "handoff", "handoff.hpp")).read()
        self.version = re.search(r'#define HANDOFF_VERSION "([0-9.]+)"', header).group(1)
        self.consumers = os.path.join(self.dir, "tests", "consumers")
        self.headers = sorted(os.listdir(os.path.join(self.dir, "include", "handoff")))
        self.pam_headers = [h for h in self.headers if re.match(r"pam.*\.hpp$", h)]
        expect("pam.hpp" in self.pam_headers, "no include/handoff/pam.hpp in the clone")

    def programs(self, dest):
        """app.cpp, pam_app.cpp and one file per PAM header in dest; returns
        (core sources, PAM sources)."""
        os.makedirs(dest, exist_ok=True)
        for name in ("app.cpp", "pam_app.cpp"):
            shutil.copy(os.path.join(self.consumers, name), dest)
        pam_sources = ["pam_app.cpp"]
        for header in self.pam_headers:
            name = "include_" + header[:-4] + ".cpp"
            with open(os.path.join(dest, name), "w") as f:
                f.write("// Each PAM header compiles on its own and links beside the others.\n"
                        "#include <handoff/%s>\n" % header)
            pam_sources.append(name)
        return ["app.cpp"], pam_sources


def pam_confdir(work):
    confdir = os.path.join(work, "pam.d")
    os.makedirs(confdir, exist_ok=True)
    with open(os.path.join(confdir, "handoff-consumer"), "w") as f:
        f.write("auth required pam_echo.so handoff consumer %u\n"
                "auth required pam_permit.so\n")
    return confdir


def run_programs(src, work, app, pam_app):
    out = run([app])
    expect("handoff %s: works 3" % src.version in out,
           "app did not print the version of the source (%s)" % src.version)
    out = run([pam_app, pam_confdir(work)])
    expect("adapter: ok" in out and "transaction via pam_start_confdir: ok" in out,
           "pam_app did not run both parts")


def compile_run(src, work, where, cflags_core, cflags_pam):
    """The plain compiler route: what README says for vendoring and pkg-config."""
    core, pam_sources = src.programs(where)
    app, pam_app = os.path.join(where, "app"), os.path.join(where, "pam_app")
    run([CXX, "-std=c++17"] + WARNINGS + core + ["-o", app] + cflags_core, cwd=where)
    run([CXX, "-std=c++17"] + WARNINGS + pam_sources + ["-o", pam_app] + cflags_pam, cwd=where)
    run_programs(src, work, app, pam_app)


def cmake_consumer(src, work, name, preamble, extra_cmake=()):
    """A CMake project whose `preamble` makes handoff::handoff and handoff::pam."""
    project = os.path.join(work, name)
    core, pam_sources = src.programs(project)
    with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.16)\n"
                "project(consumer CXX)\n"
                "# Below C++17 on purpose: handoff::handoff must raise it.\n"
                "set(CMAKE_CXX_STANDARD 14)\n"
                + preamble +
                "add_executable(app %s)\n"
                "target_link_libraries(app PRIVATE handoff::handoff)\n"
                "add_executable(pam_app %s)\n"
                "target_link_libraries(pam_app PRIVATE handoff::pam)\n"
                "target_compile_options(app PRIVATE %s)\n"
                "target_compile_options(pam_app PRIVATE %s)\n"
                % (" ".join(core), " ".join(pam_sources), " ".join(WARNINGS), " ".join(WARNINGS)))
    build = os.path.join(project, "build")
    run(["cmake", "-S", project, "-B", build, "-Werror=dev", "-Werror=deprecated"]
        + list(extra_cmake))
    run(["cmake", "--build", build])
    run_programs(src, work, os.path.join(build, "app"), os.path.join(build, "pam_app"))
    return project, build


def find_package_preamble(version):
    major = int(version.split(".")[0])
    return ("# The version file and the components are part of the package: check them.\n"
            "find_package(handoff %d QUIET)\n"
            "if(handoff_FOUND)\n"
            "  message(FATAL_ERROR \"handoff %s accepted a request for %d\")\n"
            "endif()\n"
            "find_package(handoff COMPONENTS no_such_part QUIET)\n"
            "if(handoff_FOUND)\n"
            "  message(FATAL_ERROR \"handoff accepted an unknown required component\")\n"
            "endif()\n"
            "find_package(handoff %s EXACT REQUIRED COMPONENTS pam)\n"
            % (major + 1, version, major + 1, version))


def installed_files(prefix):
    found = {}
    for dirpath, _, files in os.walk(prefix):
        for name in files:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, prefix)] = path
    return found


def check_install(src, prefix):
    """Exactly the headers, the two .pc files and the CMake package."""
    want = {os.path.join("include", "handoff", h) for h in src.headers}
    want |= {"share/pkgconfig/handoff.pc", "share/pkgconfig/handoff-pam.pc",
             "share/cmake/handoff/handoffConfig.cmake",
             "share/cmake/handoff/handoffConfigVersion.cmake"}
    got = set(installed_files(prefix))
    expect(got == want, "installed %s, wanted %s" % (sorted(got - want), sorted(want - got)))


def use_install(src, work, prefix, tag):
    check_install(src, prefix)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "share", "pkgconfig"))

    def flags(package):
        out = subprocess.run(["pkg-config", "--cflags", "--libs", package], env=env,
                             check=True, stdout=subprocess.PIPE, universal_newlines=True)
        return out.stdout.split()

    compile_run(src, work, os.path.join(work, tag + "-pkgconfig"), flags("handoff"),
                flags("handoff-pam"))
    cmake_consumer(src, work, tag + "-find-package", find_package_preamble(src.version),
                   ["-DCMAKE_PREFIX_PATH=" + prefix])


def setup_without_targets(src, build, extra):
    run(["meson", "setup", build, src.dir, "--fatal-meson-warnings", "-Dtests=disabled",
         "-Dbench=disabled", "-Dexamples=disabled"] + extra, quiet=True)
    # The documented install command builds nothing.
    targets = json.loads(run(["meson", "introspect", "--targets", build], quiet=True))
    expect(targets == [], "an install without tests, bench and examples has targets: %s"
           % [t["name"] for t in targets])


# --- scenarios ---------------------------------------------------------------

def vendored(src, work):
    # handoff.hpp alone: third_party/handoff/handoff.hpp, -Ithird_party.
    core = os.path.join(work, "core", "third_party", "handoff")
    os.makedirs(core)
    shutil.copy(os.path.join(src.dir, "include", "handoff", "handoff.hpp"), core)
    where = os.path.join(work, "core")
    core_sources, _ = src.programs(where)
    run([CXX, "-std=c++17"] + WARNINGS + ["-Ithird_party"] + core_sources + ["-o", "app"],
        cwd=where)
    run([os.path.join(where, "app")])
    # The PAM side: handoff.hpp and every pam*.hpp, -Ithird_party -pthread -lpam (README).
    pam = os.path.join(work, "pam", "third_party", "handoff")
    os.makedirs(pam)
    for header in ["handoff.hpp"] + src.pam_headers:
        shutil.copy(os.path.join(src.dir, "include", "handoff", header), pam)
    compile_run(src, work, os.path.join(work, "pam"), ["-Ithird_party", "-pthread"],
                ["-Ithird_party", "-pthread", "-lpam"])


def install_meson(src, work):
    prefix = os.path.join(work, "prefix")
    build = os.path.join(work, "lib-build")
    setup_without_targets(src, build, ["--prefix=" + prefix])
    run(["meson", "install", "-C", build], quiet=True)
    use_install(src, work, prefix, "meson")


def install_cmake(src, work):
    prefix = os.path.join(work, "prefix")
    build = os.path.join(work, "lib-build")
    # Configured for the default prefix, installed elsewhere: the .pc files follow.
    run(["cmake", "-S", src.dir, "-B", build, "-Werror=dev", "-Werror=deprecated"], quiet=True)
    out = run(["cmake", "--build", build])
    expect("Building" not in out, "the CMake build of handoff compiled something")
    run(["cmake", "--install", build, "--prefix", prefix])
    use_install(src, work, prefix, "cmake")


def install_identical(src, work):
    prefix = "/opt/handoff-consumer-test"
    meson_root, cmake_root = os.path.join(work, "by-meson"), os.path.join(work, "by-cmake")
    build = os.path.join(work, "meson-build")
    setup_without_targets(src, build, ["--prefix=" + prefix])
    run(["meson", "install", "-C", build, "--destdir", meson_root], quiet=True)
    build = os.path.join(work, "cmake-build")
    run(["cmake", "-S", src.dir, "-B", build, "-DCMAKE_INSTALL_PREFIX=" + prefix], quiet=True)
    run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=cmake_root), quiet=True)
    by_meson = installed_files(meson_root + prefix)
    by_cmake = installed_files(cmake_root + prefix)
    check_install(src, meson_root + prefix)
    expect(sorted(by_meson) == sorted(by_cmake), "the installs differ in their files: %s"
           % sorted(set(by_meson) ^ set(by_cmake)))
    for name in sorted(by_meson):
        a, b = by_meson[name], by_cmake[name]
        if not filecmp.cmp(a, b, shallow=False):
            subprocess.run(["diff", "-u", a, b])
            raise Failed("%s differs between the Meson and CMake installs" % name)
        mode_a, mode_b = stat.S_IMODE(os.stat(a).st_mode), stat.S_IMODE(os.stat(b).st_mode)
        expect(mode_a == mode_b, "%s: mode %o by Meson, %o by CMake" % (name, mode_a, mode_b))
        print("same: " + name)


def cmake_subdirectory(src, work):
    # The usual layout: the library as a directory (or git submodule) of the project.
    project = os.path.join(work, "subdir-consumer")
    os.makedirs(os.path.join(project, "third_party"))
    shutil.move(src.dir, os.path.join(project, "third_party", "handoff"))
    src.dir = os.path.join(project, "third_party", "handoff")
    src.consumers = os.path.join(src.dir, "tests", "consumers")
    preamble = ("add_subdirectory(third_party/handoff)\n"
                "# handoff adds INTERFACE targets and nothing else.\n"
                "get_property(_targets DIRECTORY third_party/handoff PROPERTY BUILDSYSTEM_TARGETS)\n"
                "foreach(_t IN LISTS _targets)\n"
                "  get_target_property(_type ${_t} TYPE)\n"
                "  if(NOT _type STREQUAL \"INTERFACE_LIBRARY\")\n"
                "    message(FATAL_ERROR \"handoff added ${_t} (${_type})\")\n"
                "  endif()\n"
                "endforeach()\n"
                "message(STATUS \"handoff targets: ${_targets}\")\n")
    _, build = cmake_consumer(src, work, "subdir-consumer", preamble)
    # As a subproject handoff installs nothing unless HANDOFF_INSTALL is set.
    prefix = os.path.join(work, "prefix")
    run(["cmake", "--install", build, "--prefix", prefix])
    files = installed_files(prefix) if os.path.isdir(prefix) else {}
    expect(not files, "add_subdirectory(handoff) installed files: %s" % sorted(files))


def doc_block(src, doc, tag):
    """The block of the clone's doc marked `<!-- doc-test: extracted by
    tests/consumers/run.py as TAG -->` (tests/docs/doc_blocks.py checks that
    every block of the docs is marked and that this file names the tag)."""
    lines = open(os.path.join(src.dir, doc), encoding="utf-8").read().splitlines()
    marker = "<!-- doc-test: extracted by tests/consumers/run.py as %s -->" % tag
    for i, line in enumerate(lines):
        if line.strip() == marker and i + 1 < len(lines):
            fence = lines[i + 1]
            indent = fence[:len(fence) - len(fence.lstrip())]
            end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
            expect(end is not None, "%s: the block marked %r never ends" % (doc, tag))
            return "\n".join(l[len(indent):] for l in lines[i + 2:end]) + "\n"
    raise Failed("%s: no block marked %r" % (doc, tag))


def fill_in(text, version, url, digest):
    """The docs' placeholders replaced by a release's values."""
    text = re.sub(r"<the hash in [^>]*>", digest, text)
    return text.replace("https://<where the release is published>", url).replace("X.Y.Z", version)


def dist_tarball(src, work):
    """The release as docs/release.md makes it: its `tools/release` command run
    as written there, with a file:// address. Returns the tarball's path and
    hash and the wrap tools/release wrote, after checking that the wrap is the
    one README and docs/release.md show, filled in."""
    out = os.path.join(work, "release")
    url = "file://" + out
    command = fill_in(doc_block(src, "docs/release.md", "release-command"), src.version, url, "")
    run(["bash", "-euo", "pipefail", "-c", command], cwd=src.dir,
        env=dict(os.environ, HANDOFF_RELEASE_DIR=out))
    name = "handoff-%s.tar.xz" % src.version
    tarball = os.path.join(out, name)
    with open(tarball + ".sha256sum") as f:
        digest = f.read().split()[0]
    expect(digest == sha256(tarball), "the .sha256sum does not match the tarball")
    wrap = open(os.path.join(out, "handoff.wrap")).read()
    for doc, tag in (("README.md", "readme-wrap"), ("docs/release.md", "release-wrap")):
        shown = fill_in(doc_block(src, doc, tag), src.version, url, digest)
        expect(wrap == shown, "tools/release wrote the wrap\n%s\nbut %s shows\n%s"
               % (wrap, doc, shown))
    # The tarball holds exactly the committed files.
    tracked = set(run(["git", "-C", src.dir, "ls-files"], quiet=True).split())
    with tarfile.open(tarball) as tar:
        packed = {os.path.relpath(m.name, "handoff-" + src.version) for m in tar.getmembers()
                  if m.isfile()}
    expect(packed == tracked, "the tarball differs from git ls-files: %s"
           % sorted(packed ^ tracked))
    return tarball, digest, wrap


def cmake_fetchcontent(src, work):
    tarball, digest, _ = dist_tarball(src, work)
    # README's lines up to FetchContent_MakeAvailable, filled in with what
    # tools/release printed; -Werror=dev fails on a policy warning (CMP0135).
    block = fill_in(doc_block(src, "README.md", "readme-fetchcontent"), src.version,
                    "file://" + os.path.dirname(tarball), digest)
    lines = block.splitlines()
    last = next(i for i, l in enumerate(lines) if l.startswith("FetchContent_MakeAvailable"))
    cmake_consumer(src, work, "fetchcontent-consumer", "\n".join(lines[:last + 1]) + "\n")


def meson_dist_wrap(src, work):
    _, _, wrap = dist_tarball(src, work)
    project = os.path.join(work, "wrap-consumer")
    core, pam_sources = src.programs(project)
    os.makedirs(os.path.join(project, "subprojects"))
    # The wrap tools/release wrote, as a user pastes it; README's meson.build.
    with open(os.path.join(project, "subprojects", "handoff.wrap"), "w") as f:
        f.write(wrap)
    with open(os.path.join(project, "meson.build"), "w") as f:
        f.write(doc_block(src, "README.md", "readme-meson") +
                "executable('app', %s, dependencies: handoff_dep, cpp_args: %s)\n"
                "executable('pam_app', %s, dependencies: handoff_pam_dep, cpp_args: %s)\n"
                % (core, WARNINGS, pam_sources, WARNINGS))
    consumer_build = os.path.join(project, "build")
    run(["meson", "setup", consumer_build, project, "--fatal-meson-warnings"])
    run(["meson", "compile", "-C", consumer_build])
    targets = json.loads(run(["meson", "introspect", "--targets", consumer_build], quiet=True))
    expect(sorted(t["name"] for t in targets) == ["app", "pam_app"],
           "the build has other targets than app and pam_app: %s" % [t["name"] for t in targets])
    run_programs(src, work, os.path.join(consumer_build, "app"),
                 os.path.join(consumer_build, "pam_app"))


def meson_no_cpp_std(src, work):
    project = os.path.join(work, "no-std-consumer")
    os.makedirs(os.path.join(project, "subprojects"))
    shutil.move(src.dir, os.path.join(project, "subprojects", "handoff"))
    with open(os.path.join(project, "meson.build"), "w") as f:
        f.write("project('app', 'cpp')   # no cpp_std: clang++ compiles C++14\n"
                "handoff_dep = dependency('handoff')\n"
                "executable('app', 'app.cpp', dependencies: handoff_dep)\n")
    with open(os.path.join(project, "app.cpp"), "w") as f:
        f.write("#include <handoff/handoff.hpp>\nint main() {}\n")
    proc = subprocess.run(["meson", "setup", os.path.join(project, "build"), project],
                          env=dict(os.environ, CXX="clang++"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    print(proc.stdout, end="")
    expect(proc.returncode != 0, "meson setup accepted a C++14 build of handoff")
    expect("handoff needs C++17 or later" in proc.stdout,
           "meson setup did not say that handoff needs C++17")
    expect("Could not get define" not in proc.stdout, "meson setup failed on a compiler check")


SCENARIOS = {f.__name__: f for f in (vendored, install_meson, install_cmake, install_identical,
                                     cmake_subdirectory, cmake_fetchcontent, meson_dist_wrap,
                                     meson_no_cpp_std)}


def main(argv):
    if len(argv) != 3 or argv[1] not in SCENARIOS:
        print(__doc__)
        return 2
    if os.environ.get(NESTED):
        print("skipped: already inside a consumer test's build")
        return SKIP
    root = os.path.abspath(argv[2])
    top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True)
    if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != os.path.realpath(root):
        print("%s is not a git checkout (these tests use a clone of HEAD)" % root)
        # tools/check sets this: there a skip would hide every route.
        return 1 if os.environ.get("HANDOFF_CONSUMERS_REQUIRED") else SKIP
    os.environ[NESTED] = "1"
    with tempfile.TemporaryDirectory(prefix="handoff-consumer-") as work:
        try:
            SCENARIOS[argv[1]](Source(root, work), work)
        except (Failed, subprocess.CalledProcessError) as e:
            print("FAILED: %s" % e)
            return 1
    print("ok: " + argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
