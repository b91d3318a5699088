"""One writer per results folder: two pipeline runs (two clones, two users) pointed at the same
``--config results=`` folder would overwrite each other's models and tables.

    hold_results_lock(folder)      # at the start of a run (the Snakefile's onstart); ResultsLocked if taken
    release_results_lock(folder)   # at the end (also automatic when the process exits, even on kill -9)

The lock is an flock(2) on ``FOLDER/.vss-bench.lock``, held by the process for as long as it runs: the
kernel drops it when the process dies, so a killed run never leaves a stale lock behind. The file records
who holds it (pid, host, working directory, start time), which is what the refusal prints. Snakemake's own
lock guards one working directory (one clone); this one guards the shared output folder.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from common.cli import InputError
from common.io import make_dirs

LOCK_NAME = ".vss-bench.lock"
_HELD: dict[str, int] = {}   # resolved folder -> open file descriptor holding the lock


class ResultsLocked(InputError):
    """Another live process holds the results folder; the message says who."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} (working directory {info.get('cwd')}, since "
            f"{info.get('started')})")


def hold_results_lock(folder: str | os.PathLike) -> Path:
    """Take the lock of ``folder`` for this process (again: a no-op); ResultsLocked, one line, if another
    process has it. Returns the lock file."""
    folder = make_dirs(folder, "results folder")
    key = str(folder.resolve())
    path = folder / LOCK_NAME
    if key in _HELD:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ResultsLocked(f"{folder}: results folder in use by {_holder(path)}; two runs writing one folder "
                            "would mix their files: wait for it, or give this run another --config results=")
    except OSError as e:   # a filesystem without locks: say so rather than run unguarded in silence
        os.close(fd)
        raise ResultsLocked(f"{path}: cannot lock the results folder ({e.strerror})") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "cwd": os.getcwd(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:500]}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    _HELD[key] = fd
    return path


def release_results_lock(folder: str | os.PathLike) -> None:
    """Give the lock back (the file stays: removing it could let two waiters both win)."""
    fd = _HELD.pop(str(Path(folder).resolve()), None)
    if fd is not None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def hold_or_exit(folder: str | os.PathLike) -> None:
    """For workflow hooks: hold the lock, or print the one-line refusal and exit with status 1."""
    try:
        hold_results_lock(folder)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
