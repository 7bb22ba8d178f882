"""Gate margins against a run's measured noise floor (``noise.json``, written by
``evalharness noise``): a limit a rerun at another batch size or seed can already cross
cannot tell a regression from noise, so the gate warns about it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from evalharness.errors import RecordError
from evalharness.jsonvalues import JSONObject, expect_object, finite_number

__all__ = ["noise_floors", "noise_warning"]


def _read(run_dir: Path) -> tuple[Path, JSONObject] | None:
    path = run_dir / "noise.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        data, problem = None, str(exc)
    else:
        problem = "not a JSON object" if not isinstance(data, dict) else f"schema {data.get('schema')!r}"
    if not isinstance(data, dict) or data.get("schema") != "evalharness.noise/1":
        raise RecordError(f"{path}: not a noise.json this evalharness reads ({problem}); rerun `evalharness noise`")
    return path, data


def _floors(path: Path, data: JSONObject) -> Iterator[tuple[str, str, float]]:
    """(task, metric key, recorded floor) of every metric of a noise.json with one (a null floor:
    none measured); a part of the wrong JSON type, or a floor that is not a finite number, is
    refused naming it."""
    for task, entry in expect_object(data.get("tasks", {}), f"{path}: tasks", error=RecordError).items():
        metrics = expect_object(entry, f"{path}: tasks.{task}", error=RecordError).get("metrics", {})
        for key, metric in expect_object(metrics, f"{path}: tasks.{task}.metrics", error=RecordError).items():
            where = f"{path}: tasks.{task}.metrics.{key}"
            floor = expect_object(metric, where, error=RecordError).get("floor")
            if floor is None:
                continue
            number = finite_number(floor)
            if number is None:
                raise RecordError(f"{where}.floor: expected a finite number, got {floor!r}")
            yield task, key, number


def noise_floors(*run_dirs: Path | None) -> dict[tuple[str, str], tuple[float, str]]:
    """(task, metric) -> (the largest measured floor, the run it was measured on)."""
    floors: dict[tuple[str, str], tuple[float, str]] = {}
    for run_dir in run_dirs:
        found = _read(Path(run_dir)) if run_dir is not None else None
        if found is None:
            continue
        for task, key, floor in _floors(*found):
            if floor > floors.get((task, key), (-1.0, ""))[0]:
                floors[(task, key)] = (floor, str(run_dir))
    return floors


def noise_warning(threshold: float | None, floor: tuple[float, str] | None) -> str | None:
    """The warning for a threshold at or below the noise floor, or None."""
    if threshold is None or floor is None or threshold > floor[0]:
        return None
    return (
        f"the limit {threshold:.4g} is not above the noise floor {floor[0]:.4g} measured by `evalharness noise` on {floor[1]} "
        "(reruns at other batch sizes or seeds moved the value that much): set it above the noise"
    )
