"""What the run ran on: package versions, hardware and the evalharness source revision."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from evalharness.jsonvalues import JSONObject
from evalharness.metrics.base import package_version

__all__ = ["capture_environment", "source_revision"]

_PACKAGES = (
    "evalharness", "torch", "transformers", "tokenizers", "datasets", "evaluate", "sacrebleu",
    "rouge-score", "scikit-learn", "scipy", "numpy", "pandas", "pydantic",
)


def source_revision() -> str | None:
    """The git commit of an evalharness checkout (with ``+dirty``), None for a wheel."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def capture_environment(device: str | None = None) -> JSONObject:
    environment: JSONObject = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in _PACKAGES},
        "evalharness_revision": source_revision(),
    }
    if "torch" in sys.modules:
        import torch

        environment["torch_cuda"] = torch.version.cuda
        environment["torch_threads"] = torch.get_num_threads()
        if device and device.startswith("cuda") and torch.cuda.is_available():
            environment["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return environment
