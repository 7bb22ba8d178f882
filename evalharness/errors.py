"""Project errors.

Everything a user can fix (a bad task file, missing data, an unusable checkpoint, a malformed
prediction file or record) raises a subclass of :class:`EvalHarnessError`. The CLI prints the
message without a traceback and exits with ``exit_code`` (2). Anything else is a bug and exits 1.
Messages name the offending file, field or example and say what was expected.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable

__all__ = [
    "DataError",
    "EvalHarnessError",
    "IncomparableRunsError",
    "Interrupted",
    "MetricInputError",
    "ModelError",
    "RecordError",
    "SpecError",
    "UnsupportedTaskError",
    "UsageError",
    "did_you_mean",
    "environment_fault",
]


class EvalHarnessError(Exception):
    """Base class for errors caused by user input; shown without a traceback."""

    exit_code = 2


class UsageError(EvalHarnessError):
    """Bad command-line arguments or option combinations."""


class SpecError(EvalHarnessError):
    """A task spec, policy or leaderboard definition is invalid."""


class DataError(EvalHarnessError):
    """Evaluation data is missing, unreadable or does not match its task spec."""


class ModelError(EvalHarnessError):
    """A checkpoint cannot be found, loaded or used."""


class UnsupportedTaskError(ModelError):
    """The checkpoint's kind cannot answer the task (e.g. perplexity with a classifier)."""


class MetricInputError(EvalHarnessError):
    """Predictions or references handed to a metric are unusable (empty, misaligned, NaN...)."""


class RecordError(EvalHarnessError):
    """A run record is missing, corrupted, of an unknown schema version or incompatible."""


class IncomparableRunsError(RecordError):
    """Numbers compared or put in one column were not computed alike (other examples, data,
    signatures or prompt formats), so comparing them would be meaningless."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or SIGTERM (how Slurm and Kubernetes pre-empt jobs), turned into one exception.

    A ``KeyboardInterrupt`` rather than an :class:`EvalHarnessError`, so that no handler of
    user mistakes (e.g. "skip this task") swallows it. The CLI prints ``detail`` (how to
    resume) and exits ``128 + signal number``: 130 for Ctrl-C, 143 for SIGTERM.
    """

    def __init__(self, signal_number: int = 2, detail: str = "") -> None:
        super().__init__(signal_number, detail)
        self.signal_number = signal_number
        self.detail = detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number

    @classmethod
    def wrap(cls, exc: KeyboardInterrupt, detail: str) -> Interrupted:
        """The same interruption, now saying what was kept and how to resume."""
        return cls(getattr(exc, "signal_number", 2), detail)


# OSErrors that say something about the user's machine, not about evalharness.
_ENVIRONMENT_FAULTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the permissions",
    errno.EPERM: "operation not permitted: write elsewhere or fix the permissions",
    errno.ENOTDIR: "a file is where a directory should be",
    errno.EISDIR: "a directory is where a file should be",
    errno.EEXIST: "a file is in the way",
    errno.ENOENT: "no such file or directory",
    errno.EIO: "input/output error from the storage",
    errno.ENAMETOOLONG: "the file name is too long",
}


def environment_fault(exc: OSError) -> str | None:
    """``file: what happened (what to do)`` for an OSError the user's machine caused (a full
    disk, a read-only location, a file in the way); None for one that would be a bug."""
    hint = _ENVIRONMENT_FAULTS.get(exc.errno) if exc.errno is not None else None
    if hint is None:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc} ({hint})"


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option, or ``""`` when none is close."""
    options = list(options)
    # Abbreviations first ('acc' -> 'accuracy', not the equally close 'mcc'), then typos.
    matches = sorted((o for o in options if o.lower().startswith(name.lower())), key=len)[:1] if len(name) >= 2 else []
    if not matches:
        matches = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
