"""Which experiment trackers ``--log-to`` knows, parsed without importing any of them (the
option is registered at CLI start-up, which must stay fast)."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass

from evalharness.errors import UsageError, did_you_mean

__all__ = ["TRACKER_PACKAGES", "Tracker", "check_tracker", "parse_log_to"]

# tracker -> (the package that must be importable, how to install it)
TRACKER_PACKAGES: dict[str, tuple[str, str]] = {
    "mlflow": ("mlflow", "pip install 'evalharness[mlflow]'"),
    "wandb": ("wandb", "pip install wandb"),
    "trackio": ("trackio", "pip install trackio"),
}


@dataclass(frozen=True)
class Tracker:
    kind: str  # mlflow, wandb or trackio
    target: str | None  # MLflow tracking URI or folder, or a W&B / Trackio project

    def __str__(self) -> str:
        return self.kind + (f":{self.target}" if self.target else "")


def parse_log_to(text: str) -> Tracker:
    """``mlflow``, ``mlflow:URI``, ``wandb[:PROJECT]``, ``trackio[:PROJECT]`` (argparse type)."""
    kind, _, target = text.partition(":")
    if kind not in TRACKER_PACKAGES:
        known = ", ".join(TRACKER_PACKAGES)
        raise argparse.ArgumentTypeError(f"unknown tracker '{kind}'{did_you_mean(kind, TRACKER_PACKAGES)} (known: {known})")
    return Tracker(kind, target.strip() or None)


def check_tracker(tracker: Tracker) -> None:
    """Refuse, before any work, a tracker whose package is not installed."""
    module, install = TRACKER_PACKAGES[tracker.kind]
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"--log-to {tracker}: the '{module}' package is not installed ({install})")
