"""An exclusive lock on a run directory, so two runs never interleave their files.

``fcntl.flock`` on ``<run_dir>/.lock``: the kernel releases it when the holder exits, even
after ``kill -9``, so a crashed run never leaves a stale lock behind. The holder's pid is
written into the file for the refusal message. Where ``fcntl`` does not exist (Windows) the
directory is not locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evalharness.errors import UsageError

__all__ = ["LOCK_FILE", "run_dir_lock"]

LOCK_FILE = ".lock"


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for the block; raise ``UsageError`` if another process does."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(
                f"run directory '{run_dir}' is in use by another evalharness process (pid {holder}); "
                "wait for it to finish or choose another --output"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock
