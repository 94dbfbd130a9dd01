#!/usr/bin/env python3
"""Builds small consumer projects against handoff the ways users do.

usage: run.py SCENARIO SOURCE_ROOT

  vendored    include/handoff/handoff.hpp copied alone, compiled with -I only
  pkgconfig   meson install to a temporary prefix, then pkg-config handoff / handoff-pam
  cmake       the same install, then find_package(handoff COMPONENTS pam)
  meson_wrap  a Meson project with subprojects/handoff.wrap and dependency('handoff')

Each builds app.cpp (core) and, where it applies, pam_app.cpp (handoff-pam)
outside the library's build, runs them, and fails on any error.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CXX = os.environ.get("CXX", "c++")


def run(cmd, **kw):
    print("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def install(root, work):
    prefix = os.path.join(work, "prefix")
    build = os.path.join(work, "lib-build")
    run(["meson", "setup", build, root, "--prefix=" + prefix, "-Dtests=disabled",
         "-Dbench=disabled", "-Dexamples=disabled"], stdout=subprocess.DEVNULL)
    run(["meson", "install", "-C", build], stdout=subprocess.DEVNULL)
    return prefix


def vendored(root, work):
    vendor = os.path.join(work, "third_party", "handoff")
    os.makedirs(vendor)
    shutil.copy(os.path.join(root, "include", "handoff", "handoff.hpp"), vendor)
    exe = os.path.join(work, "app")
    run([CXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I" + os.path.join(work, "third_party"),
         os.path.join(HERE, "app.cpp"), "-o", exe])
    run([exe])


def pkgconfig(root, work):
    prefix = install(root, work)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "share", "pkgconfig"))
    for source, package in (("app.cpp", "handoff"), ("pam_app.cpp", "handoff-pam")):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", package], env=env, check=True,
                               stdout=subprocess.PIPE, universal_newlines=True).stdout.split()
        exe = os.path.join(work, source[:-4])
        run([CXX, "-std=c++17", "-Wall", "-Werror", os.path.join(HERE, source), "-o", exe] + flags)
        run([exe])


def cmake(root, work):
    prefix = install(root, work)
    project = os.path.join(work, "cmake-consumer")
    os.makedirs(project)
    with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
        f.write("""cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
find_package(handoff 0.1 REQUIRED COMPONENTS pam)
add_executable(app %s/app.cpp)
target_link_libraries(app PRIVATE handoff::handoff)
add_executable(pam_app %s/pam_app.cpp)
target_link_libraries(pam_app PRIVATE handoff::pam)
""" % (HERE, HERE))
    build = os.path.join(project, "build")
    run(["cmake", "-S", project, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix],
        stdout=subprocess.DEVNULL)
    run(["cmake", "--build", build], stdout=subprocess.DEVNULL)
    run([os.path.join(build, "app")])
    run([os.path.join(build, "pam_app")])


def meson_wrap(root, work):
    # No network here: the wrap points at a tarball of this checkout, with its hash.
    tarball = os.path.join(work, "handoff-0.1.0.tar.gz")
    skip = {"build", ".git", "subprojects"}
    with tarfile.open(tarball, "w:gz") as tar:
        for entry in sorted(os.listdir(root)):
            if entry not in skip and not entry.startswith("builddir"):
                tar.add(os.path.join(root, entry), arcname=os.path.join("handoff-0.1.0", entry))
    digest = hashlib.sha256(open(tarball, "rb").read()).hexdigest()
    project = os.path.join(work, "meson-consumer")
    os.makedirs(os.path.join(project, "subprojects"))
    with open(os.path.join(project, "subprojects", "handoff.wrap"), "w") as f:
        f.write("""[wrap-file]
directory = handoff-0.1.0
source_url = file://%s
source_filename = handoff-0.1.0.tar.gz
source_hash = %s

[provide]
dependency_names = handoff, handoff-pam
""" % (tarball, digest))
    with open(os.path.join(project, "meson.build"), "w") as f:
        f.write("""project('consumer', 'cpp', default_options: ['cpp_std=c++17', 'werror=true'])
handoff_dep = dependency('handoff')
handoff_pam_dep = dependency('handoff-pam')
app = executable('app', '%s/app.cpp', dependencies: handoff_dep)
pam_app = executable('pam_app', '%s/pam_app.cpp', dependencies: handoff_pam_dep)
""" % (HERE, HERE))
    build = os.path.join(project, "build")
    run(["meson", "setup", build, project], stdout=subprocess.DEVNULL)
    run(["ninja", "-C", build], stdout=subprocess.DEVNULL)
    # The subproject built no tests, benchmarks or examples of its own.
    built = subprocess.run(["meson", "introspect", "--targets", build], check=True,
                           stdout=subprocess.PIPE, universal_newlines=True).stdout
    if "test_malloc_array" in built or "pamcheck" in built:
        print("the handoff subproject built its own tests or examples")
        return 1
    run([os.path.join(build, "app")])
    run([os.path.join(build, "pam_app")])
    return 0


def main(argv):
    scenario, root = argv[1], os.path.abspath(argv[2])
    with tempfile.TemporaryDirectory() as work:
        return {"vendored": vendored, "pkgconfig": pkgconfig, "cmake": cmake,
                "meson_wrap": meson_wrap}[scenario](root, work) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
