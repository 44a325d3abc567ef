"""The interpreter the binary is frozen with: CPython 3.11 and OpenSSL 3.0 built from Debian's
hash-pinned sources for this service. OpenSSL is configured as a TLS 1.2/1.3 client and keeps
its assembly. It is linked into libpython together with the extension modules the service
loads (build/interpreter/Setup.local) and musl's math functions (no glibc libm in the binary).
The interpreter's core is compiled with -O2, the rest with -Os: each such choice is a lever
of LEVERS, which bench/levers.py measures alone. The build lands in PREFIX with a manifest,
PREFIX/tinyapi-interpreter.json. The SBOM reads its components and their pedigree from that
manifest, and a later run with the same inputs reuses the build.

Standard library only, so any Python 3 can run it: the Dockerfile's builder stage runs it
before any venv exists, `make build-venv` runs it on a host.

    python3 build/recipe/interpreter.py [--prefix DIR] [--jobs N] [--arch ARCH]
                                        [--missing | --check]

--arch another architecture than the machine's cross-compiles (Debian's cross gcc, OpenSSL's
target for it, CPython's --host with this Python 3.11 as its build Python): the Dockerfile's
interpreter stage runs on the build machine and hands the result to the target's builder stage,
which runs --check on it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))  # build/recipe
REPO = os.path.dirname(os.path.dirname(HERE))
SETUP_LOCAL = os.path.join(REPO, "build", "interpreter", "Setup.local")
DEFAULT_PREFIX = os.path.join(REPO, "dist", "interpreter", "python")
DOWNLOADS = os.path.join(REPO, "dist", "interpreter", "sources")
MANIFEST = "tinyapi-interpreter.json"
# Overridable for a local mirror of deb.debian.org (the files are checked by sha256 anyway);
# the manifest, and so the SBOM, names the files at Debian's own address whatever served them.
DEBIAN = "http://deb.debian.org"
MIRROR = os.environ.get("TINYAPI_DEBIAN_MIRROR", DEBIAN)

# Debian's sources, pinned. OpenSSL: upstream's 3.0.22 release as Debian's security suite
# ships it (openssl 3.0.22-1~deb12u2 builds from this very file); it is newer than
# bookworm's 3.0.20-1~deb12u2, and Debian's own patches to OpenSSL only adapt its
# packaging. CPython: 3.11.2 with Debian's bookworm patches (3.11.2-6+deb12u8): the
# security fixes of 3.11 backported by Debian. deb12u9's .dsc answers 404 on the mirror.
SOURCES = {
    "openssl": (
        "/debian-security/pool/updates/main/o/openssl/openssl_3.0.22.orig.tar.gz",
        "67ebca7e50d17383028045486653492195b83db95f8558709701bb47b5c1ef81",
    ),
    "cpython": (
        "/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz",
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
    ),
    "cpython-debian": (
        "/debian/pool/main/p/python3.11/python3.11_3.11.2-6+deb12u8.debian.tar.xz",
        "ece2d63c70ac0b7a401fbe6b51b0103be997c294a01a3865549be1862794ba97",
    ),
    # Debian's musl 1.2.3-1 is this file and no patch (its debian.tar.xz has none).
    "musl": (
        "/debian/pool/main/m/musl/musl_1.2.3.orig.tar.gz",
        "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4",
    ),
}
OPENSSL_VERSION = "3.0.22"
CPYTHON_VERSION = "3.11.2"
CPYTHON_DEBIAN_VERSION = "3.11.2-6+deb12u8"
MUSL_VERSION = "1.2.3"
# Debian's series from this patch on: upstream's own fixes (CVEs, two crashes), backported.
# The patches before it fit CPython to Debian's file layout and packaging, not used here.
FIRST_DEBIAN_PATCH = "shutdown-deadlock.diff"

# Always: OpenSSL linked statically into libpython, nothing loaded at run time (no modules,
# engines or legacy provider, no config file read at start).
OPENSSL_OPTIONS = [
    "no-shared", "no-module", "no-dso", "no-engine", "no-legacy", "no-tests",
    "no-ui-console", "no-autoload-config",
]  # fmt: skip
# What a TLS 1.2/1.3 client never uses (the lever openssl-client-only).
OPENSSL_CLIENT_ONLY = (
    "no-comp", "no-async", "no-ssl3", "no-tls1", "no-tls1_1", "no-dtls", "no-srp", "no-psk",
    "no-srtp", "no-sctp", "no-ct", "no-cms", "no-ts", "no-ocsp", "no-idea", "no-camellia",
    "no-seed", "no-bf", "no-cast", "no-rc2", "no-rc4", "no-rc5", "no-md4", "no-mdc2",
    "no-whirlpool", "no-rmd160", "no-aria", "no-sm2", "no-sm3", "no-sm4", "no-gost",
    "no-siphash", "no-ec2m", "no-weak-ssl-ciphers", "no-scrypt",
)  # fmt: skip
OPENSSL_TARGETS = {"x86_64": "linux-x86_64", "aarch64": "linux-aarch64"}
# --arch takes the machine's names and Docker's (TARGETARCH).
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}
# Answers configure cannot find by running a program when cross-compiling (Linux's, both).
CROSS_CONFIG_SITE = "ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n"
# The prefix compiled in; the install is relocatable (CPython finds its home from its own
# path, libpython through $ORIGIN), so PREFIX can be anywhere.
COMPILED_PREFIX = "/opt/tinyapi-python"
# The path to libpython is a DT_RPATH, not a DT_RUNPATH: a RUNPATH on libpython would hide
# staticx's RPATH (on the program that dlopens it) from libpython's own dependencies (libm).
# $ORIGIN passes make ($$), then the shell (\$).
LDFLAGS = ["-Wl,--disable-new-dtags", "-Wl,-rpath,\\$$ORIGIN/../lib"]


@dataclass(frozen=True)
class Lever:
    """A choice the build makes for size or speed, named so that it can be measured alone:
    `--without NAME` builds with it off (`--with NAME` one not taken). `off` are the C flags
    that stand in when it is off."""

    name: str
    what: str
    openssl: tuple[str, ...] = ()  # OpenSSL's Configure options
    cflags: tuple[str, ...] = ()  # OpenSSL's and CPython's C flags
    off: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()  # libpython's link
    configure: tuple[str, ...] = ()  # CPython's configure options
    make: tuple[str, ...] = ()  # CPython's make and make install
    taken: bool = True


LEVERS = [
    Lever(
        "openssl-client-only",
        "OpenSSL without what a TLS 1.2/1.3 client never uses: old protocols, algorithms no "
        "suite of today negotiates, compression, async",
        openssl=OPENSSL_CLIENT_ONLY,
    ),
    Lever(
        "builtin-modules",
        "the extension modules the service loads built into libpython (Setup.local), "
        "instead of one shared object each in lib-dynload",
    ),
    Lever("size-optimized", "-Os (the core aside), instead of -O2", cflags=("-Os",), off=("-O2",)),
    Lever(
        "gc-sections",
        "a section per function and object, and the unreferenced ones dropped at the link",
        cflags=("-ffunction-sections", "-fdata-sections"),
        ldflags=("-Wl,--gc-sections",),
    ),
    Lever(
        "exclude-libs",
        "OpenSSL's symbols kept inside libpython, so that --gc-sections drops what _ssl does "
        "not reach",
        ldflags=("-Wl,--exclude-libs,ALL",),
    ),
    Lever(
        "packed-relocations",
        "relative relocations packed (DT_RELR)",
        ldflags=("-Wl,-z,pack-relative-relocs",),
    ),
    Lever(
        "no-docstrings",
        "the C functions' and types' docstrings left out",
        configure=("--without-doc-strings",),
    ),
    Lever(
        "core-O2",
        "the interpreter's core (Python/, Objects/, Parser/: the eval loop, dicts, strings) at "
        "-O2, the last -O on its command line; -Os there cost a fifth of the requests per "
        "second",
        make=("PY_CORE_CFLAGS=$(PY_STDMODULE_CFLAGS) -DPy_BUILD_CORE -O2",),
    ),
    Lever(
        "musl-libm",
        "the math functions libpython calls taken from musl's libm (src/math, PIC) and linked "
        "in, instead of glibc's libm.so.6 in the binary; their results can differ from glibc's "
        "in the last bits",
    ),
    Lever("lto", "link-time optimisation", configure=("--with-lto",), taken=False),
    Lever(
        "bsymbolic",
        "libpython's calls to its own functions bound at the link, not through the PLT: "
        "smaller and quicker (nothing here interposes them)",
        ldflags=("-Wl,-Bsymbolic-functions",),
    ),
]
LEVER_NAMES = [lever.name for lever in LEVERS]
TAKEN = tuple(lever.name for lever in LEVERS if lever.taken)
# What the core-O2 lever redefines: checked in CPython's Makefile.pre.in before every build.
PY_CORE_CFLAGS = "PY_CORE_CFLAGS=\t$(PY_STDMODULE_CFLAGS) -DPy_BUILD_CORE\n"
# Built into libpython (Setup.local); checked after the build.
BUILTIN = [
    "_bisect", "_blake2", "_contextvars", "_csv", "_datetime", "_decimal", "_heapq", "_json",
    "_md5", "_opcode", "_posixsubprocess", "_queue", "_random", "_sha1", "_sha256", "_sha3",
    "_sha512", "_socket", "_ssl", "_struct", "_typing", "array", "binascii", "fcntl", "grp",
    "math", "mmap", "resource", "select", "unicodedata", "zlib",
]  # fmt: skip
LICENSES = {"cpython": "PSF-2.0", "openssl": "Apache-2.0", "musl": "MIT"}


class Failure(Exception):
    """One line for the user, no traceback."""


def say(what: str) -> None:
    print(f"==> interpreter: {what}", flush=True)


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# What the build needs from the machine: (a command that must succeed, its Debian package).
# libffi and liblzma are for the build's tools, not the service: PyInstaller imports ctypes,
# staticx lzma (both built as shared modules, which the binary leaves out).
HEADERS = [
    ("stdio.h", "libc6-dev"),
    ("zlib.h", "zlib1g-dev"),
    ("ffi.h", "libffi-dev"),
    ("lzma.h", "liblzma-dev"),
]


def header_checks(gcc: str, package_of=lambda package: package) -> list:
    """A check per header of HEADERS that gcc must find, with the package that brings it."""
    return [
        (["sh", "-c", f"echo '#include <{header}>' | {gcc} -E -x c - >/dev/null"], package_of(pkg))
        for header, pkg in HEADERS
    ]


PREREQUISITES = [
    (["gcc", "--version"], "gcc"),
    (["make", "--version"], "make"),
    (["patch", "--version"], "patch"),
    (["perl", "-MFindBin", "-e", "1"], "perl"),  # OpenSSL's Configure; perl-base lacks FindBin
    *header_checks("gcc"),
]
# Imported from the new interpreter after its build: the service's modules (BUILTIN, below) are
# checked to be built in; these, for the build's tools, just to be there.
FOR_THE_TOOLS = ["ctypes", "lzma", "pyexpat", "zlib"]


def missing_packages(target: Target) -> list[str]:
    """The Debian packages the build of target lacks here (":arm64" ones are the target's)."""
    checks = PREREQUISITES
    if target.cross:
        debian = DEBIAN_ARCHES[target.machine]

        def of_target(package: str) -> str:  # Debian's cross libc, the others multiarch
            return f"{package}-{debian}-cross" if package == "libc6-dev" else f"{package}:{debian}"

        checks = [
            ([target.gcc, "--version"], f"gcc-{target.triplet.replace('_', '-')}"),
            *header_checks(target.gcc, of_target),
            *PREREQUISITES,
        ]
    missing = []
    for cmd, package in checks:
        try:
            ok = subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            ok = False
        if not ok and package not in missing:
            missing.append(package)
    return missing


def prerequisites(target: Target) -> None:
    missing = missing_packages(target)
    if missing:
        raise Failure(f"missing: {' '.join(missing)} (install these Debian packages)")
    if target.cross and sys.version_info[:2] != (3, 11):
        version = sys.version.split()[0]
        raise Failure(f"cross-compiling CPython 3.11 needs Python 3.11 to run this, not {version}")


@dataclass(frozen=True)
class Target:
    """The machine the interpreter is for; cross when it is not this one."""

    machine: str
    cross: bool

    @property
    def triplet(self) -> str:
        return f"{self.machine}-linux-gnu"

    @property
    def gcc(self) -> str:
        return f"{self.triplet}-gcc" if self.cross else "gcc"


def target_of(arch: str) -> Target:
    """arch ('' for this machine's) as a Target; one line when there is no build for it."""
    here = platform.machine()
    if here not in OPENSSL_TARGETS:
        raise Failure(f"no build on {here}: only on {', '.join(OPENSSL_TARGETS)}")
    if arch and arch not in ARCHES:
        raise Failure(f"no build for {arch}: only {', '.join(ARCHES)}")
    machine = ARCHES[arch] if arch else here
    return Target(machine, machine != here)


def compiler(target: Target) -> str:
    try:
        out = subprocess.run([target.gcc, "--version"], capture_output=True, text=True)
    except OSError:
        return f"no {target.gcc}"
    return out.stdout.splitlines()[0] if out.returncode == 0 else f"no {target.gcc}"


def inputs_key(target: Target, levers: Collection[str]) -> str:
    """Everything that makes the build's bytes: this file, Setup.local, the compiler, the
    machine, cross or not, the levers, and for a cross build the Python that freezes its
    modules and compiles its stdlib (the sources are pinned in this file)."""
    h = hashlib.sha256()
    for path in (os.path.abspath(__file__), SETUP_LOCAL):
        h.update(bytes.fromhex(sha256_of(path)))
    h.update(f"{compiler(target)}\n{target}\n{sorted(levers)}\n".encode())
    if target.cross:
        h.update(f"{platform.machine()} {sys.version}\n".encode())
    return h.hexdigest()


def fetch(name: str, downloads: str) -> str:
    path, digest = SOURCES[name]
    local = os.path.join(downloads, os.path.basename(path))
    if os.path.exists(local) and sha256_of(local) == digest:
        return local
    os.makedirs(downloads, exist_ok=True)
    url = MIRROR + path
    print(f"    downloading {url}", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(local + ".part", "wb") as f:
            shutil.copyfileobj(resp, f)
    except OSError as e:
        raise Failure(
            f"cannot download {url}: {e} (set TINYAPI_DEBIAN_MIRROR for a mirror)"
        ) from None
    got = sha256_of(local + ".part")
    if got != digest:
        raise Failure(f"{url}: sha256 {got}, pinned {digest}: refusing it")
    os.replace(local + ".part", local)
    return local


def unpack(archive: str, dest: str) -> str:
    """archive's single top directory, unpacked under dest."""
    with tarfile.open(archive) as tar:
        top = {m.name.split("/")[0] for m in tar.getmembers()}
        if len(top) != 1:
            raise Failure(f"{archive}: expected one top directory, found {len(top)}")
        if hasattr(tarfile, "data_filter"):  # 3.11.4 on
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)
    return os.path.join(dest, top.pop())


def step(cmd: list[str], cwd: str, log: str, env: dict[str, str]) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.readlines()[-25:]
        sys.stderr.write("".join(tail))
        raise Failure(f"{cmd[0]} failed in {cwd} (its last lines above; the whole log: {log})")


def debian_patches(debian_dir: str) -> list[str]:
    with open(os.path.join(debian_dir, "patches", "series")) as f:
        series = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    if FIRST_DEBIAN_PATCH not in series:
        raise Failure(f"Debian's series has no {FIRST_DEBIAN_PATCH}: update FIRST_DEBIAN_PATCH")
    return series[series.index(FIRST_DEBIAN_PATCH) :]


def taken(levers: Collection[str], part: str) -> list[str]:
    """One part (openssl, cflags, ...) of the levers in levers, in LEVERS' order; cflags
    with the stand-ins of the levers left off."""
    got: list[str] = []
    for lever in LEVERS:
        if lever.name in levers:
            got += getattr(lever, part)
        elif part == "cflags":
            got += lever.off
    return got


def openssl_options(target: Target, levers: Collection[str]) -> list[str]:
    cross = [f"--cross-compile-prefix={target.triplet}-"] if target.cross else []
    return [
        OPENSSL_TARGETS[target.machine],
        *cross,
        *OPENSSL_OPTIONS,
        *taken(levers, "openssl"),
        *taken(levers, "cflags"),
        "-fPIC",
    ]


def build_openssl(src: str, out: str, target: Target, levers, jobs: int, log: str, env) -> None:
    where = [f"--prefix={out}", "--libdir=lib", "--openssldir=/etc/ssl"]
    step(["./Configure", *openssl_options(target, levers), *where], src, log, env)
    step(["make", f"-j{jobs}", "build_libs"], src, log, env)
    step(["make", "install_dev"], src, log, env)


def musl_math(src: str) -> list[str]:
    """musl's Makefile's objects of src/math for the configured architecture: each generic
    source, or its architecture's version where there is one."""
    with open(os.path.join(src, "config.mak")) as f:
        arch = re.search(r"^ARCH = (\S+)$", f.read(), re.M)[1]
    objects = {}
    for directory in ("src/math", f"src/math/{arch}"):
        for name in sorted(os.listdir(os.path.join(src, directory))):
            stem, ext = os.path.splitext(name)
            if ext in (".c", ".s", ".S"):
                objects[stem] = f"obj/{directory}/{stem}.o"
    return sorted(objects.values())


def musl_options(target: Target, levers: Collection[str]) -> list[str]:
    cross = [f"CROSS_COMPILE={target.triplet}-"] if target.cross else []
    return [
        f"--target={target.machine}-linux-musl",
        "--disable-shared",
        f"CC={target.gcc}",
        "CFLAGS=" + " ".join([*taken(levers, "cflags"), "-fPIC"]),
        *cross,
    ]


def build_libm(src: str, target: Target, levers, jobs: int, log: str, env) -> str:
    """musl's math functions as a static archive of PIC objects, for --with-libm."""
    step(["./configure", *musl_options(target, levers)], src, log, env)
    objects = musl_math(src)
    step(["make", f"-j{jobs}", *objects], src, log, env)
    archive = os.path.join(src, "libm-musl.a")
    ar = f"{target.triplet}-ar" if target.cross else "ar"
    step([ar, "rcsD", archive, *objects], src, log, env)
    return archive


def cpython_options(target: Target, levers: Collection[str]) -> list[str]:
    options = [
        f"--prefix={COMPILED_PREFIX}",
        "--enable-shared",  # PyInstaller needs a libpython
        *taken(levers, "configure"),
        "--with-ensurepip=no",
        "--disable-test-modules",
        "OPT=-DNDEBUG -fwrapv -Wall",
        "CFLAGS=" + " ".join(taken(levers, "cflags")),
        "LDFLAGS=" + " ".join([*taken(levers, "ldflags"), *LDFLAGS]),
    ]
    if not target.cross:
        return options
    build = f"--build={platform.machine()}-linux-gnu"
    return [
        *options,
        build,
        f"--host={target.triplet}",
        f"--with-build-python={sys.executable}",
    ]


def setup_local(levers: Collection[str]) -> str:
    """Setup.local, whose *static* section is the builtin-modules lever: without it, those
    modules are built as shared objects (its pyexpat rule and disabled modules still hold)."""
    with open(SETUP_LOCAL) as f:
        text = f.read()
    if "builtin-modules" in levers:
        return text
    return re.sub(r"^\*static\*$.*?(?=^\*)", "", text, count=1, flags=re.M | re.S)


def check_core_cflags(makefile_pre_in: str) -> None:
    """core-O2 redefines PY_CORE_CFLAGS: CPython's definition must still be the one it
    repeats, or the core would lose flags without a word."""
    with open(makefile_pre_in) as f:
        if PY_CORE_CFLAGS not in f.read():
            raise Failure(
                f"{makefile_pre_in} no longer has {PY_CORE_CFLAGS.strip()!r}: "
                "update the core-O2 lever to its new definition"
            )


def build_cpython(
    src: str,
    debian: str,
    openssl: str,
    libm: str | None,
    stage_dir: str,
    target: Target,
    levers,
    jobs: int,
    log: str,
    env,
) -> tuple[list[str], list[str]]:
    patches = debian_patches(debian)
    for name in patches:
        patch = os.path.join(debian, "patches", name)
        step(["patch", "-p1", "-s", "-f", "--fuzz=0", "-i", patch], src, log, env)
    with open(os.path.join(src, "Modules", "Setup.local"), "w") as f:
        f.write(setup_local(levers))
    if "core-O2" in levers:
        check_core_cflags(os.path.join(src, "Makefile.pre.in"))
    options = [*cpython_options(target, levers), f"--with-openssl={openssl}"]
    if libm:
        options.append(f"--with-libm={libm}")
    if target.cross:
        site = os.path.join(src, "config.site-cross")
        with open(site, "w") as f:
            f.write(CROSS_CONFIG_SITE)
        # The target's .pc files (libffi), not this machine's.
        pkgconfig = f"/usr/lib/{target.triplet}/pkgconfig:/usr/share/pkgconfig"
        env = dict(env, CONFIG_SITE=site, PKG_CONFIG_LIBDIR=pkgconfig)
    step(["./configure", *options], src, log, env)
    make = taken(levers, "make")
    step(["make", f"-j{jobs}", *make], src, log, env)
    step(["make", "install", f"DESTDIR={stage_dir}", *make], src, log, env)
    return patches, [*options, *make]


def check(prefix: str, levers: Collection[str] = TAKEN) -> None:
    """The service's modules are built in (with that lever), the tools' can be imported, ssl
    is this OpenSSL, and glibc's libm is loaded or not, as the levers say: asked of the new
    interpreter with every symbol bound at its start (a math function musl-libm lacked would
    fail here, not at its first call)."""
    code = (
        f"import ssl, sys, {', '.join(FOR_THE_TOOLS)}; "
        "libm = 'libm.so.6' in open('/proc/self/maps').read(); "
        "assert libm == (sys.argv[1] == 'glibc'), f'glibc libm loaded: {libm}'; "
        "missing = set(sys.argv[2:]) - set(sys.builtin_module_names); "
        "assert not missing, f'not built in: {sorted(missing)}'; print(ssl.OPENSSL_VERSION)"
    )
    python = os.path.join(prefix, "bin", "python3")
    libm = "musl" if "musl-libm" in levers else "glibc"
    builtin = BUILTIN if "builtin-modules" in levers else []
    proc = subprocess.run(
        [python, "-c", code, libm, *builtin],
        capture_output=True,
        text=True,
        env=dict(os.environ, LD_BIND_NOW="1"),
    )
    if proc.returncode != 0 or OPENSSL_VERSION not in proc.stdout:
        raise Failure(f"the new interpreter fails its check: {proc.stderr.strip()[-300:]}")


def check_built(prefix: str) -> None:
    """--check: a cross-built interpreter, checked where it runs."""
    manifest = read_manifest(prefix)
    built = manifest.get("machine")
    if built is None:
        raise Failure(f"{prefix} has no {MANIFEST}: not an interpreter this recipe built")
    if built != platform.machine():
        raise Failure(f"{prefix} is for {built}: check it on {built}, not {platform.machine()}")
    check(prefix, manifest.get("levers", TAKEN))
    say(f"{prefix} checked: {len(BUILTIN)} modules built in, OpenSSL {OPENSSL_VERSION}")


def read_manifest(prefix: str) -> dict:
    with contextlib.suppress(OSError, ValueError), open(os.path.join(prefix, MANIFEST)) as f:
        return json.load(f)
    return {}


def fresh(work: str) -> None:
    """An empty work directory. A killed build's make processes can outlive it and still
    write into the old one: it is moved aside before it is removed."""
    stale = work + ".stale"
    shutil.rmtree(stale, ignore_errors=True)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.rename(work, stale)
        shutil.rmtree(stale, ignore_errors=True)
        os.makedirs(work)
    except OSError as e:
        raise Failure(
            f"cannot empty {work}: {e.strerror} (is a killed build's make still running?)"
        ) from None


def build(prefix: str, jobs: int, target: Target, levers: Collection[str] = TAKEN) -> None:
    prerequisites(target)
    key = inputs_key(target, levers)
    if read_manifest(prefix).get("key") == key:
        say(f"{prefix} is up to date")
        return
    env = dict(os.environ, LC_ALL="C", TZ="UTC")
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    began = time.monotonic()
    downloads = os.environ.get("TINYAPI_INTERPRETER_DOWNLOADS", DOWNLOADS)
    used = [name for name in SOURCES if name != "musl" or "musl-libm" in levers]
    say(f"fetching Debian's sources ({', '.join(used)}), sha256-pinned")
    archives = {name: fetch(name, downloads) for name in used}
    # One fixed build directory: its path is compiled into OpenSSL's and sysconfig's build
    # flags, so two builds anywhere give the same bytes. Hence also the lock.
    work = os.path.join(tempfile.gettempdir(), "tinyapi-interpreter-build")
    lock_path = work + ".lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh(work)
        log = os.path.join(work, "build.log")
        ossl_src = unpack(archives["openssl"], work)
        ossl = os.path.join(work, "openssl")
        what = f"for {target.machine}, cross-compiled" if target.cross else "configure + make"
        say(f"OpenSSL {OPENSSL_VERSION}: {what}, {jobs} jobs (~2 min on 2 cores)")
        build_openssl(ossl_src, ossl, target, levers, jobs, log, env)
        libm = None
        if "musl-libm" in levers:
            say(f"musl {MUSL_VERSION}'s math functions, for libpython")
            libm_src = unpack(archives["musl"], work)
            libm = build_libm(libm_src, target, levers, jobs, log, env)
        py_src = unpack(archives["cpython"], work)
        debian = unpack(archives["cpython-debian"], work)
        say(f"CPython {CPYTHON_VERSION} + Debian's fixes: {what} (~3 min on 2 cores)")
        stage_dir = os.path.join(work, "stage")
        patches, py_options = build_cpython(
            py_src, debian, ossl, libm, stage_dir, target, levers, jobs, log, env
        )
        installed = stage_dir + COMPILED_PREFIX
        # No tests, no idle, no tkinter sources: what the build's venv can do without.
        for extra in ("idlelib", "test", "tkinter", "turtledemo", "lib2to3"):
            shutil.rmtree(os.path.join(installed, "lib", "python3.11", extra), True)
        manifest = {
            "key": key,
            "machine": target.machine,
            "cross": target.cross,
            "compiler": compiler(target),
            "levers": [name for name in LEVER_NAMES if name in levers],
            "components": [
                {
                    "name": "openssl",
                    "version": OPENSSL_VERSION,
                    "license": LICENSES["openssl"],
                    "sources": [source_entry("openssl")],
                    "patches": [],
                    "configure": openssl_options(target, levers),
                },
                {
                    "name": "cpython",
                    "version": CPYTHON_VERSION,
                    "debian_version": CPYTHON_DEBIAN_VERSION,
                    "license": LICENSES["cpython"],
                    "sources": [source_entry("cpython"), source_entry("cpython-debian")],
                    "patches": patches,
                    "configure": [
                        o
                        for o in py_options
                        if not o.startswith(
                            ("--with-openssl=", "--with-build-python=", "--with-libm=")
                        )
                    ],
                    "builtin_modules": BUILTIN if "builtin-modules" in levers else [],
                },
            ],
        }
        if libm:
            manifest["components"].append(
                {
                    "name": "musl",
                    "version": MUSL_VERSION,
                    "license": LICENSES["musl"],
                    "sources": [source_entry("musl")],
                    "patches": [],
                    "configure": musl_options(target, levers),
                }
            )
        with open(os.path.join(installed, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
        if target.cross:
            say(f"not checked here: {target.machine} runs --check on it")
        else:
            check(installed, levers)
        if os.path.exists(prefix):
            shutil.rmtree(prefix)
        os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
        shutil.move(installed, prefix)
        shutil.rmtree(work, ignore_errors=True)
    say(f"{prefix} in {time.monotonic() - began:.0f} s")


def source_entry(name: str) -> dict:
    path, digest = SOURCES[name]
    return {"url": DEBIAN + path, "sha256": digest}


class Parser(argparse.ArgumentParser):
    """A user's mistake is one line on stderr and exit status 2, not the usage."""

    def error(self, message):
        self.exit(2, f"interpreter: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="build/recipe/interpreter.py",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="where the interpreter goes (default: dist/interpreter/python)",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 2, help="make's jobs (default: the cores)"
    )
    parser.add_argument(
        "--arch",
        default="",
        help="build for it: x86_64/amd64 or aarch64/arm64 (default: this machine's)",
    )
    for flag, which, what in (
        ("--without", TAKEN, "leave out a lever the build takes"),
        ("--with", [n for n in LEVER_NAMES if n not in TAKEN], "add one it does not take"),
    ):
        parser.add_argument(
            flag,
            action="append",
            default=[],
            choices=which,
            metavar="LEVER",
            help=f"to measure it (bench/levers.py): {what}: {', '.join(which)}",
            dest=flag[2:] + "_levers",
        )
    parser.add_argument(
        "--missing",
        action="store_true",
        help="only print the Debian packages the build lacks here, on one line",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check the interpreter at --prefix, on the machine it is for",
    )
    opts = parser.parse_args(argv)
    prefix = os.path.abspath(opts.prefix)
    levers = (set(TAKEN) - set(opts.without_levers)) | set(opts.with_levers)
    try:
        if opts.missing:
            print(" ".join(missing_packages(target_of(opts.arch))))
        elif opts.check:
            check_built(prefix)
        else:
            build(prefix, max(1, opts.jobs), target_of(opts.arch), levers)
    except Failure as e:
        print(f"interpreter: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
