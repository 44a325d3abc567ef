"""The bootloader of dist/tinyapi: staticx's, built by the recipe (build/recipe/bootloader.py)
from the pinned sdist with build/patches/staticx/. Its compile table against the sdist's SCons
files, the patch series against the sdist, and the patched bootloader at work: /bin/sh bundled
with each compression (`python build bundle`), the bundle dir unpacked once and reused, its
safety rules, the signals it forwards and gives back, a stop while it unpacks.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.paths import ROOT
from harness.testing import PRIVATE_MOUNTS, needs_root, signals_in, unusable_tmp_line
from recipe import bootloader, sources
from recipe.env import build_env

BUILD = [sys.executable, str(ROOT / "build")]


# --- its build: the sdist's own recipe, the patch series ---------------------------------------


def scons_sources(tree: Path) -> dict[str, list[str]]:
    """{library: its sources} as the (patched) sdist's SCons files build the bootloader: the
    directories SConstruct builds in its bootloader loop, each SConscript's StaticLibrary or
    Program target and sources, as paths from the tree's root."""
    construct = ast.parse((tree / "SConstruct").read_text())
    loop = next(
        node
        for node in ast.walk(construct)
        if isinstance(node, ast.For) and "bootloader_env" in ast.unparse(node.iter)
    )
    subdirs = [
        call.args[0].value
        for call in ast.walk(loop)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "BuildSubdir"
    ]
    built = {}
    for subdir in subdirs:
        script = ast.parse((tree / subdir / "SConscript").read_text())
        for call in ast.walk(script):
            if not isinstance(call, ast.Call):
                continue
            if getattr(call.func, "attr", None) not in ("StaticLibrary", "Program"):
                continue
            args = {
                kw.arg: ast.literal_eval(kw.value)
                for kw in call.keywords
                if kw.arg in ("target", "source")
            }
            built[args["target"]] = [f"{subdir}/{name}" for name in args["source"]]
    return built


@pytest.mark.slow
def test_the_compile_table_is_the_sdists_scons_build():
    """bootloader.LIBRARIES compiles what the sdist's SConstruct and SConscripts (after the
    patches, which add libzstd) compile, file for file: a file added upstream fails here by
    name. (slow: the first run downloads the pinned sdists into dist/bootloader/sources.)"""
    with tempfile.TemporaryDirectory(prefix="tinyapi-scons-") as scratch:
        tree, version = sources.patched_tree(scratch, build_env())
        scons = scons_sources(Path(tree))
    table = {library: list(files) for library, (_, files) in bootloader.LIBRARIES.items()}
    assert set(scons) == set(table), (
        f"staticx {version} builds {sorted(scons)}, the recipe {sorted(table)}"
    )
    for library, files in scons.items():
        missing = sorted(set(files) - set(table[library]))
        extra = sorted(set(table[library]) - set(files))
        assert not missing, (
            f"staticx {version} compiles {missing} into {library}: the recipe does not"
        )
        assert not extra, f"the recipe compiles {extra} into {library}: staticx {version} does not"


@pytest.mark.slow
def test_patch_series_applies_to_the_pinned_sdist():
    done = subprocess.run(
        [*BUILD, "check-patches"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    count = len(sources.patch_series())
    assert f"==> {count} patches of build/patches/staticx/ apply to staticx 0.14.2" in done.stdout


@pytest.mark.slow
def test_a_patch_that_no_longer_applies_is_one_line_naming_it(tmp_path):
    series = sorted((ROOT / "build" / "patches" / "staticx").glob("*.patch"))
    broken = tmp_path / "patches"
    broken.mkdir()
    for patch in series:
        (broken / patch.name).write_text(patch.read_text())
    # A context line that the sdist does not have (upstream moved on), in the last patch that
    # has this one: the series stops at it, and the line names it.
    context = "\n #include <sys/wait.h>\n"
    last = [broken / p.name for p in series if context in p.read_text()][-1]
    last.write_text(last.read_text().replace(context, "\n #include <sys/changed.h>\n", 1))
    done = subprocess.run(
        [*BUILD, "check-patches", "--patches", str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"build: {last} no longer applies to staticx 0.14.2: "), (
        done.stderr
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# --- at work: /bin/sh bundled behind it ---------------------------------------------------------


SHELL = os.path.realpath("/bin/sh")  # a small dynamic program to bundle: dash


@pytest.fixture(scope="module")
def bundled_shell(binary, tmp_path_factory):
    """/bin/sh bundled by staticx behind our bootloader, once per compression."""
    out = tmp_path_factory.mktemp("bundled")
    programs = {}
    for compression in ("zstd", "xz", "none"):
        programs[compression] = out / f"sh-{compression}"
        done = subprocess.run(
            [*BUILD, "bundle", SHELL, str(programs[compression]), "--compression", compression],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return programs


def run_bundled(program: Path, tmpdir: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(program), "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmpdir)},
    )


@pytest.mark.slow
@pytest.mark.parametrize("compression", ["zstd", "xz", "none"])
def test_bootloader_reads_each_compression_and_reuses_its_dir(bundled_shell, compression, tmp_path):
    """zstd (ours), and upstream's xz and uncompressed archives; the bundle dir is made once,
    private, and used again by the next run."""
    from harness import staticx_archive

    program = bundled_shell[compression]
    assert staticx_archive.compression(staticx_archive.section(str(program))) == compression
    first = run_bundled(program, tmp_path, 'echo "hello from $STATICX_BUNDLE_DIR"')
    assert first.returncode == 0, first.stderr
    made = list(tmp_path.iterdir())
    assert len(made) == 1 and re.fullmatch(
        rf"staticx-{os.geteuid()}-[0-9a-f]{{16}}", made[0].name
    ), made
    assert first.stdout == f"hello from {made[0]}\n"
    assert made[0].stat().st_mode & 0o7777 == 0o700
    again = run_bundled(program, tmp_path, "echo again")
    assert (again.returncode, again.stdout) == (0, "again\n")
    assert list(tmp_path.iterdir()) == made


def bundle_dir_name(program: Path, tmp_path: Path) -> str:
    """The name the bootloader gives this program's bundle dir (learnt from a run elsewhere)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    assert run_bundled(program, probe, "true").returncode == 0
    (name,) = [p.name for p in probe.iterdir()]
    return name


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("squatter", ["symlink", "other-user", "mode-0755", "file"])
def test_a_bundle_dir_name_taken_by_someone_else_is_not_used(bundled_shell, tmp_path, squatter):
    """A shared /tmp: another user may have made the name first. The bootloader then falls back
    to a private temporary dir, removed at exit, and leaves the squatter as it found it."""
    needs_root()  # to make a directory owned by another user
    program = bundled_shell["zstd"]
    name = bundle_dir_name(program, tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    taken = shared / name
    if squatter == "symlink":
        taken.symlink_to(target)
    elif squatter == "file":
        taken.write_text("")
    else:
        taken.mkdir()
        taken.chmod(0o700 if squatter == "other-user" else 0o755)
        if squatter == "other-user":
            os.chown(taken, 65534, 65534)
    done = run_bundled(program, shared, 'echo "ran from $STATICX_BUNDLE_DIR"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ran from {shared}/staticx-") and name not in done.stdout
    assert [p.name for p in shared.iterdir()] == [name]  # the fallback dir was removed at exit
    assert list(target.iterdir()) == []  # nothing written through the symlink
    if taken.is_dir() and not taken.is_symlink():
        assert list(taken.iterdir()) == []


@pytest.mark.slow
def test_partial_dirs_of_killed_runs_are_removed_but_not_one_in_progress(bundled_shell, tmp_path):
    import fcntl

    program = bundled_shell["zstd"]
    uid = os.geteuid()
    stale = tmp_path / f"staticx-{uid}-0123456789abcdef.Ab12Cd"  # a run killed while extracting
    busy = tmp_path / f"staticx-{uid}-0123456789abcdef.Ef34Gh"  # a run extracting right now
    for partial in (stale, busy):
        partial.mkdir(mode=0o700)
        (partial / "libc.so.6").write_text("half")
    other = tmp_path / f"staticx-{uid + 1}-0123456789abcdef.Ij56Kl"  # another user's: not ours
    other.mkdir(mode=0o700)
    lock = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert run_bundled(program, tmp_path, "true").returncode == 0
    finally:
        os.close(lock)
    names = {p.name for p in tmp_path.iterdir()}
    assert stale.name not in names
    assert {busy.name, other.name} <= names
    assert len([n for n in names if "." not in n]) == 1  # and the bundle dir itself


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["HUP", "USR1", "USR2", "TTIN", "TTOU", "WINCH", "QUIT", "TERM"])
def test_fallback_parent_forwards_every_signal(bundled_shell, tmp_path, sig):
    """When the bundle dir cannot be reused, the bootloader stays as the program's parent (to
    remove its private dir at exit): every signal it gets must reach the program."""
    program = bundled_shell["zstd"]
    name = bundle_dir_name(program, tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / name).symlink_to("/nonexistent")  # forces the fallback
    script = f'trap "echo got {sig}; exit 7" {sig}; echo ready; while :; do sleep 0.05; done'
    proc = subprocess.Popen(
        [str(program), "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(shared)},
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        assert proc.wait(timeout=30) == 7
        assert proc.stdout.read() == f"got {sig}\n"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert [p.name for p in shared.iterdir()] == [name]


def stopped_while_extracting(
    cmd: list[str], tmpdir: Path, bootloader_pid
) -> tuple[subprocess.Popen, int] | None:
    """Start cmd (dist/tinyapi, a first start in the empty tmpdir) and SIGSTOP its bootloader as
    soon as its partial bundle dir shows: (the process, the bootloader's pid), stopped while it
    is still extracting, or None when the extraction was over before the stop landed."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmpdir)},
    )
    try:
        while proc.poll() is None:
            names = os.listdir(tmpdir)
            if any("." in n for n in names):
                pid = bootloader_pid(proc)
                if pid is None:
                    continue
                os.kill(pid, signal.SIGSTOP)
                names = os.listdir(tmpdir)
                if any("." in n for n in names) and not any("." not in n for n in names):
                    return proc, pid
                break
            if names:  # renamed into place before we saw it
                break
    except BaseException:
        proc.kill()
        raise
    proc.kill()
    proc.wait()
    return None


def unshare_child(proc: subprocess.Popen) -> int | None:
    """The pid (in our namespace) of unshare --fork's child, PID 1 of its new namespace."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


@pytest.mark.slow
@pytest.mark.parametrize("as_pid1", [False, True], ids=["process", "pid1"])
def test_a_stop_while_extracting_ends_the_bootloader_and_the_next_start_serves(
    binary, start_server, tmp_path, as_pid1
):
    """`docker stop` during a first start: SIGTERM while the bootloader still extracts. As PID 1
    (a container's, here a new PID namespace's) the kernel drops a signal that has no handler,
    and the stop waited out its timeout. It ends at once: by the signal (a process) or with
    status 143 (PID 1, where the kernel does not let the signal end it). The next start removes
    the partial dir it left, and serves."""
    if as_pid1:
        needs_root()  # unshare --pid
        cmd = ["unshare", "--pid", "--fork", "--kill-child", str(binary), "--version"]
        bootloader_pid, status = unshare_child, 128 + signal.SIGTERM
    else:
        cmd = [str(binary), "--version"]
        bootloader_pid, status = (lambda proc: proc.pid), -signal.SIGTERM
    for attempt in range(20):
        tmpdir = tmp_path / f"tmp{attempt}"
        tmpdir.mkdir()
        caught = stopped_while_extracting(cmd, tmpdir, bootloader_pid)
        if caught:
            break
    else:
        pytest.fail("never caught the bootloader while it extracted, in 20 first starts")
    proc, pid = caught
    try:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
        assert proc.wait(timeout=30) == status
    finally:
        proc.kill()
        proc.wait()
    (partial,) = os.listdir(tmpdir)
    assert "." in partial  # extraction was cut short: no bundle dir was renamed into place
    server = start_server(command=lambda *args: [str(binary), *args], TMPDIR=str(tmpdir))
    assert server.get("/alwaysok").status == 200
    assert [n for n in os.listdir(tmpdir) if "." in n] == []


def given_signal_state(ignored) -> None:
    """In the child before its exec: every signal at its default but `ignored`, whatever this
    process inherited (an ignored disposition survives exec, and a runner may pass some on)."""
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        try:
            signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # one the C library reserves for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


@pytest.mark.slow
@pytest.mark.parametrize("ignored", [(), (signal.SIGINT, signal.SIGQUIT)], ids=["none", "INT-QUIT"])
def test_the_program_gets_the_signal_state_the_bootloader_was_given(
    bundled_shell, tmp_path, ignored
):
    """The bootloader catches the stop signals while it extracts, then puts them back: the
    program ignores what its caller ignored (a shell's background job ignores INT and QUIT),
    and nothing is left blocked. The same as /bin/sh run directly, at a first start and again."""
    script = "exec grep -E '^Sig(Blk|Ign)' /proc/self/status"  # what the shell was given

    def state(program):
        done = subprocess.run(
            [str(program), "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)},
            preexec_fn=lambda: given_signal_state(ignored),
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    direct = state(SHELL)
    assert "SigBlk:\t0000000000000000\n" in direct
    # The two this test sets (the C library's own real-time ones may come ignored from the
    # runner, and cannot be reset from Python: the comparisons below hold them too).
    assert {signal.SIGINT, signal.SIGQUIT} & signals_in(direct, "SigIgn") == set(ignored)
    assert state(bundled_shell["zstd"]) == direct  # a first start: extracted, then exec
    assert state(bundled_shell["zstd"]) == direct  # again: the bundle dir reused


@pytest.mark.slow
@pytest.mark.parametrize(("options", "why"), [("ro", "read-only"), ("noexec", "mounted noexec")])
def test_a_tmpdir_it_cannot_run_from_is_one_line_and_nothing_written(binary, options, why):
    """TMPDIR a tmpfs mounted ro or noexec (in a private mount namespace): one line with the
    cause and the way out, status 2, and nothing left in it."""
    script = (
        f"mount -t tmpfs -o {options} none /mnt && TMPDIR=/mnt {binary}; "
        'echo "status $?" >&2; ls -A /mnt'
    )
    done = subprocess.run(
        [*PRIVATE_MOUNTS, "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == ""  # nothing in /mnt
    assert done.stderr == unusable_tmp_line("/mnt", why) + "status 2\n"
