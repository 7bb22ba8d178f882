"""Locks on a run directory: one for a whole ``run``, one for each change of its record.

``fcntl.flock`` on a file in the run directory: the kernel releases it when the holder exits,
even after ``kill -9``, so a crashed process never leaves a stale lock behind. The holder's
pid is written into the file for the messages. Where ``fcntl`` does not exist (Windows) the
directory is not locked.

- ``.lock`` (:func:`run_dir_lock`) is held by ``run`` from before the model loads until the
  record is written; a second ``run`` on the same directory is refused at once.
- ``.record.lock`` (:func:`record_lock`) is held only while ``results.json`` is read, merged
  and replaced. ``score --run-dir`` and ``rescore`` (and ``run`` when it writes) wait for it,
  so writers that overlap in time are serialised and none overwrites another's tasks.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evalharness.errors import UsageError

__all__ = ["LOCK_FILE", "RECORD_LOCK_FILE", "ensure_run_dir", "record_lock", "run_dir_lock"]

LOCK_FILE = ".lock"
RECORD_LOCK_FILE = ".record.lock"
RECORD_LOCK_TIMEOUT = 600.0  # seconds; a record update takes well under one


def ensure_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` if needed and prove it writable, before anything expensive runs.

    A file in the way, a read-only file system or a directory without write permission is a
    ``UsageError`` naming the directory; nothing in it is changed.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"run directory '{run_dir}' is a file, not a directory; choose another output directory")
    if run_dir.is_dir() and not run_dir.stat().st_mode & 0o222:  # marked read-only (even for root)
        raise UsageError(f"run directory '{run_dir}' is read-only (mode {run_dir.stat().st_mode & 0o777:o}); choose another output directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"run directory '{run_dir}' is not writable ({exc.strerror or exc}); choose another output directory"
        ) from None


def _open_lock(run_dir: Path, name: str) -> int:
    ensure_run_dir(run_dir)
    try:
        return os.open(run_dir / name, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UsageError(f"cannot lock run directory '{run_dir}' ({exc.strerror or exc}); choose another output directory") from None


def _holder(handle: int) -> str:
    return os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"


def _claim(handle: int) -> None:
    os.ftruncate(handle, 0)
    os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for the block; raise ``UsageError`` if another process does."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    handle = _open_lock(run_dir, LOCK_FILE)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"run directory '{run_dir}' is in use by another evalharness process (pid {_holder(handle)}); "
                "wait for it to finish or choose another --output"
            ) from None
        _claim(handle)
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


@contextmanager
def record_lock(run_dir: Path, *, timeout: float = RECORD_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``results.json`` for one read-modify-write, waiting for other writers to finish."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    handle = _open_lock(run_dir, RECORD_LOCK_FILE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise UsageError(f"cannot lock the run record in '{run_dir}' ({exc.strerror or exc})") from None
                if time.monotonic() > deadline:
                    raise UsageError(
                        f"{run_dir}: the run record is held by another evalharness process (pid {_holder(handle)}) "
                        f"for more than {timeout:g} s; check that process, then try again"
                    ) from None
                time.sleep(0.05)
        _claim(handle)
        yield
    finally:
        os.close(handle)
