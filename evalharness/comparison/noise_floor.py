"""Gate margins against a run's measured noise floor (``noise.json``, written by
``evalharness noise``): a limit a rerun at another batch size or seed can already cross
cannot tell a regression from noise, so the gate warns about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalharness.errors import RecordError

__all__ = ["noise_floors", "noise_warning"]


def _read(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "noise.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != "evalharness.noise/1":
            raise ValueError(f"schema {data.get('schema')!r}")
        return data
    except (ValueError, AttributeError) as exc:
        raise RecordError(f"{path}: not a noise.json this evalharness reads ({exc}); rerun `evalharness noise`") from None


def noise_floors(*run_dirs: Path | None) -> dict[tuple[str, str], tuple[float, str]]:
    """(task, metric) -> (the largest measured floor, the run it was measured on)."""
    floors: dict[tuple[str, str], tuple[float, str]] = {}
    for run_dir in run_dirs:
        data = _read(Path(run_dir)) if run_dir is not None else None
        for task, entry in (data or {}).get("tasks", {}).items():
            for key, metric in entry.get("metrics", {}).items():
                floor = metric.get("floor")
                if isinstance(floor, (int, float)) and floor > floors.get((task, key), (-1.0, ""))[0]:
                    floors[(task, key)] = (float(floor), str(run_dir))
    return floors


def noise_warning(threshold: float | None, floor: tuple[float, str] | None) -> str | None:
    """The warning for a threshold at or below the noise floor, or None."""
    if threshold is None or floor is None or threshold > floor[0]:
        return None
    return (
        f"the limit {threshold:.4g} is not above the noise floor {floor[0]:.4g} measured by `evalharness noise` on {floor[1]} "
        "(reruns at other batch sizes or seeds moved the value that much): set it above the noise"
    )
