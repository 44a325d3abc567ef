"""The kit's own interpreter (build/recipe/interpreter.py): what it builds in and leaves out,
its pinned sources, how it says no, what the SBOM says of it, and TLS as the frozen binary
does it with its own OpenSSL, against local servers with a test CA."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from harness import staticx_archive
from harness.paths import ROOT
from recipe import interpreter

RECIPE = interpreter.__file__


def setup_local_sections() -> dict[str, list[str]]:
    """Setup.local's modules by section (*static*, *shared*, *disabled*)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in Path(interpreter.SETUP_LOCAL).read_text().splitlines():
        line = line.split("#")[0].strip()
        if re.fullmatch(r"\*\w+\*", line):
            current = sections.setdefault(line.strip("*"), [])
        elif line:
            current.append(line.split()[0])
    return sections


# --- the recipe, without building -------------------------------------------------------------


def test_setup_local_builds_in_exactly_the_modules_the_recipe_checks():
    assert sorted(setup_local_sections()["static"]) == sorted(interpreter.BUILTIN)


def test_hashlib_stays_on_its_builtin_digests():
    """_hashlib is never built (the spec leaves it out too), and the built-in digests are in."""
    assert "_hashlib" in setup_local_sections()["disabled"]
    assert "'_hashlib'" in (ROOT / "build" / "tinyapi.spec").read_text()
    assert {"_md5", "_sha1", "_sha256", "_sha512", "_sha3", "_blake2"} <= set(interpreter.BUILTIN)


def test_sources_are_debians_and_pinned():
    for name, (path, digest) in interpreter.SOURCES.items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest), name
        assert path.startswith(("/debian/pool/main/", "/debian-security/pool/updates/main/"))
    openssl, cpython, debian, musl = (interpreter.SOURCES[n][0] for n in interpreter.SOURCES)
    assert f"openssl_{interpreter.OPENSSL_VERSION}.orig" in openssl
    assert f"python3.11_{interpreter.CPYTHON_VERSION}.orig" in cpython
    assert f"{interpreter.CPYTHON_DEBIAN_VERSION}.debian.tar.xz" in debian
    assert f"musl_{interpreter.MUSL_VERSION}.orig" in musl


def test_openssl_keeps_its_assembly_and_drops_old_protocols():
    options = interpreter.openssl_options(interpreter.target_of(""), interpreter.TAKEN)
    assert "no-asm" not in options
    assert {"no-ssl3", "no-tls1", "no-tls1_1", "no-shared"} <= set(options)


def test_a_lever_left_out_leaves_its_options_out_and_only_them():
    """--without NAME builds what the kit builds minus that lever's options; -Os gives way to
    -O2, not to no optimisation at all."""
    target = interpreter.target_of("")
    kit = interpreter.cpython_options(target, interpreter.TAKEN)
    without = set(interpreter.TAKEN) - {"size-optimized", "no-docstrings"}
    options = interpreter.cpython_options(target, without)
    assert set(kit) - set(options) == {
        "--without-doc-strings",
        "CFLAGS=-Os -ffunction-sections -fdata-sections",
    }
    assert "CFLAGS=-O2 -ffunction-sections -fdata-sections" in options
    with_lto = interpreter.cpython_options(target, {*interpreter.TAKEN, "lto"})
    assert set(with_lto) - set(kit) == {"--with-lto"}


def test_without_builtin_modules_setup_local_keeps_its_other_rules():
    kit = interpreter.setup_local(interpreter.TAKEN)
    without = interpreter.setup_local(set(interpreter.TAKEN) - {"builtin-modules"})
    assert "*static*" in kit and "\n_ssl _ssl.c" in kit
    assert "*static*" not in without and "_ssl _ssl.c" not in without
    assert "\npyexpat pyexpat.c" in without and "\n_hashlib" in without


def test_core_cflags_check_fails_loudly_on_another_definition(tmp_path):
    makefile = tmp_path / "Makefile.pre.in"
    makefile.write_text("PY_CORE_CFLAGS=\t$(PY_STDMODULE_CFLAGS) -DPy_BUILD_CORE\n")
    interpreter.check_core_cflags(str(makefile))  # CPython 3.11's
    makefile.write_text("PY_CORE_CFLAGS=\t$(PY_STDMODULE_CFLAGS) -DPy_BUILD_CORE -DNEW\n")
    with pytest.raises(interpreter.Failure, match="update the core-O2 lever"):
        interpreter.check_core_cflags(str(makefile))


def test_musls_math_objects_are_its_makefiles(tmp_path):
    """An architecture's own version of a function replaces the generic one, as musl's
    Makefile does; every other source gives its generic object."""
    (tmp_path / "config.mak").write_text("ARCH = x86_64\n")
    for name in ("src/math/sqrt.c", "src/math/sin.c", "src/math/x86_64/sqrt.c", "README"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert interpreter.musl_math(str(tmp_path)) == [
        "obj/src/math/sin.o",
        "obj/src/math/x86_64/sqrt.o",
    ]


def test_a_killed_builds_leftovers_are_cleared(tmp_path):
    work = tmp_path / "build"
    (work / "openssl").mkdir(parents=True)
    (work / "openssl" / "libcrypto.a").write_bytes(b"half")
    (tmp_path / "build.stale").mkdir()
    interpreter.fresh(str(work))
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["build"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--jobs", "many"], "invalid int value: 'many'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--without", "lto"], "argument --without: invalid choice: 'lto'"),
    ],
)
def test_a_bad_option_is_one_line(args, expected):
    done = subprocess.run(
        [sys.executable, RECIPE, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and expected in done.stderr
    assert done.stderr.startswith("interpreter: ")


def test_levers_are_taken_from_the_command_line():
    done = subprocess.run(
        [sys.executable, RECIPE, "--missing", "--without", "core-O2", "--with", "lto"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""


def test_help_says_what_it_builds():
    done = subprocess.run(
        [sys.executable, RECIPE, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "CPython 3.11 and OpenSSL 3.0" in done.stdout and "--prefix" in done.stdout


# --- the frozen binary ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_binary_holds_no_extension_module_of_the_interpreter(binary):
    """The service's modules are inside libpython: no lib-dynload, no libssl or libcrypto;
    the one extension module left is MarkupSafe's own. No libm either."""
    with staticx_archive.open_archive(str(binary)) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    assert not [n for n in names if "lib-dynload" in n]
    assert not [n for n in names if re.search(r"lib(ssl|crypto)\.so", n)]
    extensions = [n for n in names if re.search(r"\.cpython-311-.*\.so$", n)]
    assert [os.path.dirname(n).rsplit("/", 1)[-1] for n in extensions] == ["markupsafe"]
    # musl's math functions are linked into libpython: nothing needs glibc's libm.
    assert not [n for n in names if os.path.basename(n).startswith("libm.so")]


# Each of these math calls fails: with musl's libm as with glibc's, Python says so the same way.
MATH_ERRORS = """
import math
for f, args in ((math.sqrt, (-1,)), (math.exp, (1000,)), (math.log, (0,)), (math.acos, (2,)),
                (math.lgamma, (-1,)), (math.pow, (0, -1)), (math.fmod, (1, 0)),
                (math.atanh, (1,)), (math.cosh, (1e6,)), (math.ldexp, (1.0, 10**4))):
    try:
        print(f.__name__, f(*args))
    except (ValueError, OverflowError) as e:
        print(f.__name__, type(e).__name__, e)
"""


@pytest.mark.slow
def test_math_fails_as_with_glibcs_libm(binary):
    """The kit's interpreter (musl's math functions) against the one running the tests
    (glibc's libm): the same exception and message for each domain and range error."""
    kit = ROOT / "dist" / "interpreter" / "python" / "bin" / "python3"
    ours, glibcs = (
        subprocess.run([python, "-c", MATH_ERRORS], capture_output=True, text=True, check=True)
        for python in (str(kit), sys.executable)
    )
    assert ours.stdout == glibcs.stdout and ours.stdout.count("Error") == 10, ours.stdout


@pytest.mark.slow
def test_sbom_gives_cpython_and_openssl_with_their_pedigree(sbom):
    components = {c["name"]: c for c in sbom["components"]}
    cpython, openssl = components["cpython"], components["openssl"]
    assert cpython["version"] == interpreter.CPYTHON_VERSION
    assert openssl["version"] == interpreter.OPENSSL_VERSION
    assert cpython["licenses"] == [{"license": {"id": "PSF-2.0"}}]
    assert openssl["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    pins = {digest for _, digest in interpreter.SOURCES.values()}
    for component in (cpython, openssl):
        hashes = {a["hashes"][0]["content"] for a in component["pedigree"]["ancestors"]}
        assert hashes <= pins and hashes
    # Debian's backported fixes, each by name; the first is the series' first kept.
    patches = [p["diff"]["url"] for p in cpython["pedigree"]["patches"]]
    assert patches[0].endswith(f"#debian/patches/{interpreter.FIRST_DEBIAN_PATCH}")
    assert len(patches) > 20 and all(
        p["type"] == "backport" for p in cpython["pedigree"]["patches"]
    )
    assert "--without-doc-strings" in cpython["pedigree"]["notes"]
    assert "no-tls1_1" in openssl["pedigree"]["notes"]
    musl = components["musl"]
    assert musl["version"] == interpreter.MUSL_VERSION
    assert musl["licenses"] == [{"license": {"id": "MIT"}}]
    for component in (openssl, musl):
        linked = [p["value"] for p in component["properties"] if p["name"] == "tinyapi:file"]
        assert linked and all("libpython3.11.so" in v and "(linked in)" in v for v in linked)


# --- TLS, as the binary's health checks do it -------------------------------------------------


def health(binary: Path, start_server, ca_file: str, first: str, second: str) -> list[dict]:
    """The binary's /healthcheck results with its two checks aimed at first and second."""
    server = start_server(
        command=lambda *args: [str(binary), *args],
        TINYAPI_HEALTHCHECK_CA_FILE=ca_file,
        TINYAPI_HEALTHCHECK_HC1_URL=first,
        TINYAPI_HEALTHCHECK_HC2_URL=second,
    )
    return json.loads(server.get("/healthcheck").body)


@pytest.mark.slow
def test_tls_1_3_and_1_2_with_the_certificate_verified(
    binary, start_server, tls_target, test_ca, ca_file
):
    modern = tls_target(test_ca, "127.0.0.1")
    older = tls_target(test_ca, "127.0.0.1", maximum=ssl.TLSVersion.TLSv1_2)
    results = health(binary, start_server, ca_file, modern.url("/ok"), older.url("/ok"))
    assert [r["status"] for r in results] == [1, 1], results
    assert modern.tls_versions == ["TLSv1.3"]
    assert older.tls_versions == ["TLSv1.2"]


@pytest.mark.slow
def test_tls_refuses_another_ca_and_another_address(
    binary, start_server, tls_target, test_ca, ca_file
):
    stranger = tls_target(trustme.CA(), "127.0.0.1")
    elsewhere = tls_target(test_ca, "127.0.0.2")
    results = health(binary, start_server, ca_file, stranger.url("/ok"), elsewhere.url("/ok"))
    assert [r["status"] for r in results] == [3, 3], results
    assert (
        "certificate verify failed: unable to get local issuer certificate"
        in (results[0]["verbose"])
    )
    assert (
        "IP address mismatch, certificate is not valid for '127.0.0.1'" in (results[1]["verbose"])
    )


@pytest.mark.slow
def test_tls_refuses_another_host_name(binary, start_server, tls_target, test_ca, ca_file):
    only_ip = tls_target(test_ca, "127.0.0.1")
    named = tls_target(test_ca, "localhost")
    results = health(
        binary,
        start_server,
        ca_file,
        only_ip.url("/ok", "localhost"),
        named.url("/ok", "localhost"),
    )
    assert results[0]["status"] == 3, results
    assert "Hostname mismatch, certificate is not valid for 'localhost'" in results[0]["verbose"]
    assert results[1]["status"] == 1, results  # the same host, named in its certificate
