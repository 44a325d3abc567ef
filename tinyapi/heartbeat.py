"""gunicorn's worker heartbeat, kept in memory: nothing to write, no temporary directory needed.

Each worker touches a file (os.utime on its descriptor) and the master reads its mtime (fstat)
to find a worker that hangs. gunicorn makes that file with tempfile.mkstemp in worker_tmp_dir
or the temporary directory, so a read-only container with no writable /tmp could not start a
worker ("No usable temporary directory found"). A memfd is a file with no path: the same two
calls work on it. Where memfd_create is refused (a seccomp profile, a kernel before 3.17),
gunicorn's own file is made instead."""

from __future__ import annotations

import os

from gunicorn.workers.workertmp import WorkerTmp


class Heartbeat(WorkerTmp):
    def __init__(self, cfg) -> None:
        try:
            fd = os.memfd_create("gunicorn-heartbeat", os.MFD_CLOEXEC)
        except OSError:
            super().__init__(cfg)
            return
        try:
            # A worker that runs as another user must still be able to touch it.
            if cfg.uid != os.geteuid() or cfg.gid != os.getegid():
                os.fchown(fd, cfg.uid, cfg.gid)
            self._tmp = os.fdopen(fd, "w+b", 0)
        except Exception:
            os.close(fd)
            raise
