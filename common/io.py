"""Atomic output: nothing half-written ever sits under results/.

Every writer goes to a temporary name in the destination folder and renames it into place (rename is atomic
on one filesystem), so an interrupted run leaves either the old file or the new one, never a torn one.

A destination that cannot be written (it is a directory, it sits under a file, the disk is full, the
filesystem is read-only) raises OutputError: one line naming the destination and the cause, never the
temporary's name. The old file stays as it was.

Temporaries are named ``.<name>.tmp.<pid>@<host>.<random>``. A run killed with ``kill -9`` cannot remove its
own, so every writer first removes the stale ones of its destination: those of a process that no longer
runs on this host, or (other hosts, older versions' names) untouched for STALE_AFTER_S seconds.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from common.cli import InputError

STALE_AFTER_S = 3600
# below this much free space after a failed write, the failure is put down to a full disk: some writers
# (torch.save) report ENOSPC only as an opaque error of their own
LOW_SPACE_BYTES = 1 << 20
_CAUSES = {
    errno.ENOSPC: "no space left on device: the disk is full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a parent is not a directory",
    errno.EFBIG: "file too large for the file system",
    errno.EIO: "input/output error",
}


class OutputError(InputError, OSError):
    """An output that cannot be written; the message names the destination and the cause (an OSError too,
    so callers that handle filesystem failures keep doing so). ``cause``: the cause alone."""

    def __init__(self, message: str, cause: str | None = None):
        super().__init__(message)
        self.cause = cause


# ---------------------------------------------------------------------------------------------- checks
def _blocking_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a directory (a file in the way), else None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Fail now, in one line, if ``path`` cannot become a file: it is a directory or sits under a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: {what} is a directory (give a file name)")
    blocker = _blocking_ancestor(path)
    if blocker is not None:
        raise OutputError(f"{path}: cannot write the {what}: {blocker} is a file, not a directory")
    return path


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Fail now, in one line, if ``path`` cannot become a directory: it is a file or sits under one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: {what} is a file, not a directory")
    blocker = _blocking_ancestor(path)
    if blocker is not None:
        raise OutputError(f"{path}: cannot write the {what}: {blocker} is a file, not a directory")
    return path


def write_failure(path: Path, error: BaseException, where: Path | None = None, own: Path | None = None,
                  guess_full: bool = True) -> OutputError | None:
    """The one-line OutputError for a failed write of ``path``, or None when ``error`` is no filesystem
    problem of that write (a bug in the writer, an input file another part of the body failed to read).

    ``where``: a path on the same filesystem, for the free-space test; ``own``: the temporary being written
    (an OSError naming another file is not this write's); ``guess_full``: put an opaque RuntimeError down
    to a full disk when almost no space is left (torch.save reports ENOSPC so)."""
    if isinstance(error, OutputError):   # a write inside this one (info.json in a folder): name this one
        return OutputError(f"{path}: cannot write ({error.cause})", error.cause) if error.cause else error
    always = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)   # only ever a write's fault
    cause = None
    for e in (error, error.__cause__, error.__context__):
        if isinstance(e, OSError) and e.errno in _CAUSES:
            named = e.filename is not None and own is not None and not str(e.filename).startswith(str(own))
            if named and e.errno not in always:
                return None
            cause = _CAUSES[e.errno]
            break
    if cause is None and guess_full and isinstance(error, (OSError, RuntimeError)):
        try:
            if shutil.disk_usage(where or path.parent).free < LOW_SPACE_BYTES:
                cause = _CAUSES[errno.ENOSPC]
        except OSError:
            pass
    if cause is None and isinstance(error, OSError) and (error.filename is None or own is None
                                                          or str(error.filename).startswith(str(own))):
        cause = error.strerror or str(error)
    return OutputError(f"{path}: cannot write ({cause})", cause) if cause else None


def check_replaceable_dir(path: str | os.PathLike, marker: str | None = None,
                          what: str = "output folder") -> Path:
    """check_output_dir, and (with ``marker``) refuse an existing non-empty folder that lacks the marker file
    every folder this writer makes holds: atomic_dir replaces the folder whole, and ``--pred /data/VSPW_480p``
    must never delete a dataset."""
    path = check_output_dir(path, what)
    if marker and path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise OutputError(f"{path}: {what} exists and holds no {marker}, so it is not one this command wrote; "
                          "refusing to replace it (give a new folder or delete it)")
    return path


def make_dirs(path: str | os.PathLike, what: str = "output folder") -> Path:
    """mkdir -p with the one-line error of check_output_dir / write_failure."""
    path = check_output_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (write_failure(path, e, _existing_ancestor(path))
               or OutputError(f"{path}: cannot create the {what} ({e.strerror})")) from None
    return path


def _existing_ancestor(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


# ---------------------------------------------------------------------------------------------- temporaries
_OWNER = re.compile(r"\.tmp\.(?P<pid>\d+)@(?P<host>[^.]+)\.")
_LEGACY = re.compile(r"\.tmp\.[A-Za-z0-9_]{8}|\.[A-Za-z0-9_]{8}\.tmp$")   # tempfile.mkstemp / mkdtemp names


def host_tag() -> str:
    """This machine's name as temporaries carry it."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temporary_name(name: str) -> str:
    return f".{name}.tmp.{os.getpid()}@{host_tag()}.{secrets.token_hex(4)}"


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_change(p: Path) -> float:
    """mtime of a file; for a folder the newest of it and its direct entries (a folder being filled)."""
    t = p.lstat().st_mtime
    if p.is_dir() and not p.is_symlink():
        with os.scandir(p) as it:
            for e in it:
                with contextlib.suppress(OSError):
                    t = max(t, e.stat(follow_symlinks=False).st_mtime)
    return t


def is_stale_temporary(p: Path, now: float | None = None) -> bool:
    m = _OWNER.search(p.name)
    if m is not None and m["host"] == host_tag():
        pid = int(m["pid"])
        if pid == os.getpid():
            return False
        if not _pid_running(pid):
            return True
    elif m is None and not _LEGACY.search(p.name):
        return False
    try:
        return (now or time.time()) - _last_change(p) > STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove stale temporaries in ``folder`` (of destination ``name`` only, or of every destination);
    returns what was removed. A folder that does not exist has none."""
    folder = Path(folder)
    prefix = f".{name}." if name else "."
    removed = []
    try:
        entries = [Path(e.path) for e in os.scandir(folder) if e.name.startswith(prefix) and ".tmp" in e.name]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    now = time.time()
    for p in entries:
        if is_stale_temporary(p, now):
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------- writers
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    ``suffix`` keeps the extension a writer sniffs (PIL, torch.save, matplotlib), default: path's own.
    A filesystem failure is re-raised as OutputError naming ``path`` (see the module docstring).
    """
    path = check_output_file(path)
    make_dirs(path.parent)
    remove_stale_temporaries(path.parent, path.name)
    tmp = path.parent / (temporary_name(path.name) + (suffix if suffix is not None else path.suffix))
    try:
        tmp.touch(exist_ok=False)
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        failure = write_failure(path, e, own=tmp) if isinstance(e, (OSError, RuntimeError)) else None
        with contextlib.suppress(OSError):
            tmp.unlink()
        if failure is not None:
            raise failure from None
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    # numpy scalars/arrays and paths appear in results; plain JSON has no type for them
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole.

    ``marker``: a file every folder this writer makes contains (e.g. info.json). An existing non-empty
    ``path`` without it is refused, not deleted: ``--pred /data/VSPW_480p`` must never remove a dataset.
    """
    path = check_replaceable_dir(path, marker)
    make_dirs(path.parent)
    remove_stale_temporaries(path.parent, path.name)
    tmp = path.parent / temporary_name(path.name)
    try:
        tmp.mkdir()
        yield tmp
        if path.exists():
            old = tmp.with_name(tmp.name + ".old")
            os.replace(path, old)       # the old folder stays whole until the new one is in place
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        # the body does more than write (infer runs a model): no guessing from the free space
        failure = write_failure(path, e, own=tmp, guess_full=False) if isinstance(e, OSError) else None
        shutil.rmtree(tmp, ignore_errors=True)
        if failure is not None:
            raise failure from None
        raise
