"""Interop: run a Hugging Face ``evaluate`` module loaded from a local path.

For metrics evalharness does not ship, a task can name an ``evaluate`` module script on disk
(``evaluate.load('/path/to/my_metric')``). Modules are never fetched from the Hub: the path
must be a local ``.py`` file or a folder holding ``<folder name>.py``, and the script's hash
is part of the signature so a number stays traceable to the exact code that produced it.
Loading the module runs it, so a task using this metric runs only under ``--trust-task-code``
(``code_files`` names the script; see ``metrics.registry.refuse_untrusted_code``).

Two ways to aggregate:

- ``per_example: true`` runs the module on each example alone and averages the results: exact
  for metrics that are a mean over examples (accuracy, exact match), with a percentile
  bootstrap interval (the module's range is unknown, and a t-interval could leave it) and
  per-example scores that records can re-aggregate;
- otherwise the module runs on the whole corpus and the interval is a bootstrap that re-runs
  it on resamples (``max_resamples`` caps the number of re-runs, as each one is slow). The
  texts stay in memory, so such a score cannot be re-aggregated from stored statistics.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import Field, field_validator

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import Metric, SettingsInput
from evalharness.stats import FloatArray, Interval

__all__ = ["HFEvaluate", "resolve_module_script"]


def resolve_module_script(path: str) -> Path:
    """The module script for a local path; a name that is not on disk is refused."""
    candidate = Path(path).expanduser()
    if candidate.is_file() and candidate.suffix == ".py":
        return candidate.resolve()
    if candidate.is_dir() and (candidate / f"{candidate.name}.py").is_file():
        return (candidate / f"{candidate.name}.py").resolve()
    if candidate.is_dir():
        raise ValueError(f"'{path}' is a folder without '{candidate.name}.py' (an evaluate module script)")
    raise ValueError(
        f"'{path}' is not a local evaluate module (a .py script or a folder holding one); "
        "modules are loaded by local path only, never from the Hugging Face Hub"
    )


class _EvaluateModule(Protocol):
    """What evalharness calls of a loaded ``evaluate`` module."""

    def compute(self, *, predictions: list[JsonValue], references: list[JsonValue], **kwargs: object) -> object: ...


class HFEvaluateSettings(StrictModel):
    path: str = Field(description="local evaluate module: a .py script or its folder")
    result_key: str | None = Field(default=None, description="key of compute()'s result; None if it has one key")
    scale: float = Field(default=1.0, description="multiplier, e.g. 100 for a 0-1 accuracy")
    higher_is_better: bool = True
    per_example: bool = False
    max_resamples: int = Field(default=200, ge=0, description="bootstrap re-runs of a corpus-level module")
    compute_kwargs: dict[str, object] = Field(default_factory=dict)  # passed to compute() as they are

    @field_validator("path")
    @classmethod
    def _local_module(cls, path: str) -> str:
        resolve_module_script(path)
        return path


class HFEvaluate(Metric):
    """An ``evaluate`` module by local path (``evaluate.load``, ``compute(predictions=, references=)``)."""

    name = "hf_evaluate"
    reference = "evaluate.load"
    reference_package = "evaluate"
    settings: HFEvaluateSettings
    Settings = HFEvaluateSettings

    def __init__(self, settings: SettingsInput = None) -> None:
        super().__init__(settings)
        self.higher_is_better = self.settings.higher_is_better
        self._script = resolve_module_script(self.settings.path)
        digest = hashlib.sha256(self._script.read_bytes()).hexdigest()[:16]
        # The signature names the exact script: impl:evaluate.load[name@sha256:...]==<evaluate version>
        self.reference = f"evaluate.load[{self._script.stem}@sha256:{digest}]"
        self._module: _EvaluateModule | None = None
        self._inputs: tuple[list[JsonValue], list[JsonValue]] | None = None

    @classmethod
    def code_files(cls, settings: StrictModel) -> list[str]:
        assert isinstance(settings, HFEvaluateSettings)  # the caller validated them with cls.Settings
        return [str(resolve_module_script(settings.path))]

    def _compute(self, predictions: list[JsonValue], references: list[JsonValue]) -> float:
        if self._module is None:
            import evaluate

            try:
                self._module = evaluate.load(str(self._script))
            except Exception as exc:  # the module's own import or syntax errors
                raise MetricInputError(f"{self.name}: cannot load {self._script}: {type(exc).__name__}: {exc}") from None
        try:
            result = self._module.compute(predictions=predictions, references=references, **self.settings.compute_kwargs)
        except Exception as exc:  # a module rejecting its inputs
            raise MetricInputError(f"{self.name}: {self._script.stem}.compute failed: {type(exc).__name__}: {exc}") from None
        key = self.settings.result_key
        if not isinstance(result, dict) or not result:
            raise MetricInputError(f"{self.name}: {self._script.stem} returned {result!r}, not a dict of scores")
        if key is None:
            if len(result) != 1:
                raise MetricInputError(f"{self.name}: {self._script.stem} returned {sorted(result)}; set 'result_key'")
            key = next(iter(result))
        if key not in result:
            raise MetricInputError(f"{self.name}: result_key '{key}' not in {sorted(result)}")
        value = result[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise MetricInputError(f"{self.name}: {self._script.stem} returned {key}={value!r}, not a number")
        return self.settings.scale * float(value)

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        if self.settings.per_example:
            scores = [self._compute([p], [r]) for p, r in zip(predictions, references, strict=True)]
            return np.asarray(scores, dtype=float)[:, None]
        self._inputs = (list(predictions), list(references))
        return np.arange(len(references), dtype=float)[:, None]

    def aggregate(self, stats: FloatArray) -> float:
        stats = np.asarray(stats, dtype=float)
        if self.settings.per_example:
            return float(stats[:, 0].mean()) if stats.shape[0] else float("nan")
        if self._inputs is None:
            raise MetricInputError(
                f"{self.name}: a corpus-level evaluate module cannot be re-aggregated from stored "
                "statistics (they are example indices); set 'per_example: true' for mean-decomposable metrics"
            )
        predictions, references = self._inputs
        rows = [int(i) for i in stats[:, 0]]
        return self._compute([predictions[i] for i in rows], [references[i] for i in rows])

    def example_scores(self, stats: FloatArray) -> FloatArray:
        if self.settings.per_example:
            return np.asarray(stats, dtype=float)[:, 0]
        return np.full(stats.shape[0], np.nan)

    def interval(self, stats: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
        if not self.settings.per_example:
            n_resamples = min(n_resamples, self.settings.max_resamples)
            if n_resamples == 0:
                return Interval(math.nan, math.nan, math.nan, "none")
        return super().interval(stats, rng=rng, n_resamples=n_resamples, confidence=confidence)
