"""The files of a run directory: atomic writes and content-addressed samples.

Every file is written to a temporary name, flushed, fsynced and renamed into place, so a
reader (or a crash) sees the old content or all of the new, never a prefix. Temporary files
get the mode a plain ``open`` would have given (``0o666`` less the umask), not ``mkstemp``'s
``0o600``, so a run directory shared with a group stays readable by it.

Samples files are named by the sha256 of their bytes (``samples/<task>.<sha256>.jsonl``):
new samples never overwrite the ones the current ``results.json`` names, so the record and
its samples change together when ``results.json`` is replaced, and a reader can tell a
samples file that was modified after the run from the name the record gives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from evalharness.errors import RecordError

__all__ = [
    "SAMPLES_DIR",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_mode",
    "samples_digest",
    "samples_path",
    "write_samples",
]

SAMPLES_DIR = "samples"
_HASHED_NAME = re.compile(r"\.([0-9a-f]{64})\.jsonl$")


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (no race with threads)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file."""
    return 0o666 & ~_umask()


def _fsync_directory(directory: Path) -> None:
    # The rename itself must survive a power loss; not every platform can open a directory.
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either its old content or all of the new.

    An ``OSError`` (full disk, read-only file system, a directory in the way) leaves no
    temporary file behind and is re-raised naming ``path``.
    """
    path = Path(path)
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as stream:
            if hasattr(os, "fchmod"):  # POSIX: mkstemp's 0600 becomes what open() would give
                os.fchmod(stream.fileno(), file_mode())
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror or str(exc), exc.filename or str(path)) from exc
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
    _fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def samples_path(run_dir: Path, task_name: str) -> Path:
    """``samples/glue/sst2.jsonl``: where a task's samples live (before the content hash is
    added to the name); task names never leave the run directory."""
    relative = Path(SAMPLES_DIR, *task_name.split("/")).with_suffix(".jsonl")
    resolved = (run_dir / relative).resolve()
    if not resolved.is_relative_to((run_dir / SAMPLES_DIR).resolve()):
        raise RecordError(f"task name '{task_name}' would write outside the run directory")
    return run_dir / relative


def samples_digest(relative: str) -> str | None:
    """The sha256 a samples file name promises, or None for a name without one (records
    written before samples were content-addressed)."""
    match = _HASHED_NAME.search(relative)
    return match.group(1) if match else None


def write_samples(run_dir: Path, task_name: str, rows: Iterable[Mapping[str, object]]) -> str:
    """Write one JSON line per example and return the file's path relative to ``run_dir``.

    The name carries the content's sha256, so writing never replaces a file that the
    current record names (unless the content is identical).
    """
    lines = (json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) for row in rows)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    base = samples_path(run_dir, task_name)
    path = base.with_name(f"{base.stem}.{digest}.jsonl")
    atomic_write_bytes(path, data)
    return path.relative_to(run_dir).as_posix()
