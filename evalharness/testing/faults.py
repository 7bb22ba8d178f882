"""Fault injection for tests: picklable hooks that fail the way production does."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["CrashOnce"]


@dataclass(frozen=True)
class CrashOnce:
    """Kill the calling process the first time it is called (as an out-of-memory kill or a
    lost node would), once per ``marker`` file: later calls, in any process, do nothing.
    Given to ``run_sweep(after_evaluation=...)``, it kills a worker before its run is delivered."""

    marker: str

    def __call__(self) -> None:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)
