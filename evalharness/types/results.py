"""Metric results, which are the run record's entries: value, interval, direction, signature.

A metric computes a :class:`MetricResult` and the run record stores that same object. JSON
has no NaN, so a computation stores an undefined number (NaN, infinity) as ``None``
(:func:`finite_or_none`, :func:`containing`), written as null. Reading never converts: a
non-finite number in a record is refused (``records.checks``), not made undefined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator
from typing_extensions import Self

from evalharness.jsonvalues import JSONObject, finite_float_of


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: undefined values (NaN or infinite, of any float type) are written as null."""
    return finite_float_of(value)


def containing(value: float | None, low: float | None, high: float | None) -> tuple[float | None, float | None]:
    """A computed interval as results keep it: finite ends, widened to contain the value where a
    percentile bootstrap of a biased statistic (or float noise between the direct and the
    resampled aggregate) left the point estimate just outside it. Wider is the conservative
    side; records whose interval misses its value are refused on load, so only computations
    call this, never readers."""
    low, high, value = finite_or_none(low), finite_or_none(high), finite_or_none(value)
    if value is None or low is None or high is None:
        return low, high
    return min(low, value), max(high, value)


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupResult(_Result):
    """A metric restricted to one group of examples (a bias type, a swap group...)."""

    value: float | None
    ci: tuple[float | None, float | None]
    n: int

    @classmethod
    def computed(cls, value: float | None, low: float, high: float, n: int) -> Self:
        """From a computation: undefined numbers as None, the interval containing the value."""
        return cls(value=finite_or_none(value), ci=containing(value, low, high), n=n)


# What two signatures share when their values are comparable (``Signature.identity``): the
# fields' values and the sorted items of the mappings, for ``==``.
SignatureIdentity: TypeAlias = tuple[object, ...]


class Signature(BaseModel):
    """What determines a metric's value, as fields (after sacrebleu's ``Signature``): the metric,
    its settings, facts of its computation (``context`` reads before the settings, ``extras``
    after, as the formatted text shows them), the implementation it replicates and its
    version, the interval method (and the cluster field), evalharness's version, and the run's
    ``n``, ``seed`` and ``resamples``. Stored as fields in run records; :meth:`format` is the
    display text; :meth:`identity` is what two values must share to be comparable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    settings: JSONObject = Field(default_factory=dict)
    context: dict[str, str] = Field(default_factory=dict)
    implementation: str
    interval: str
    clusters: str | None = None
    evalharness: str
    extras: dict[str, str] = Field(default_factory=dict)
    n: int | None = None
    seed: int | None = None
    resamples: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_text(cls, data: object) -> object:
        """``text`` is written for people reading the JSON; it is derived, never read back."""
        if isinstance(data, dict) and "text" in data:
            data = {key: value for key, value in data.items() if key != "text"}
        return data

    @computed_field  # type: ignore[prop-decorator]  # mypy refuses decorators over @property; pydantic's documented form
    @property
    def text(self) -> str:
        return self.format()

    def format(self) -> str:
        """``metric|context|settings|impl:...|ci:...|evalharness:...|extras`` (no run-specific part)."""
        parts = [self.metric, *(f"{key}:{value}" for key, value in self.context.items())]
        parts += [f"{key}:{value}" for key, value in sorted(self.settings.items())]
        parts += [f"impl:{self.implementation}", f"ci:{self.interval}"]
        if self.clusters:
            parts.append(f"ci-clusters:{self.clusters}")
        parts.append(f"evalharness:{self.evalharness}")
        parts += [f"{key}:{value}" for key, value in self.extras.items()]
        return "|".join(parts)

    def identity(self) -> SignatureIdentity:
        """The fields that make two values comparable: all but evalharness's version and the
        run's n, seed and resamples."""
        return (self.metric, sorted(self.settings.items()), sorted(self.context.items()), self.implementation,
                self.interval, self.clusters, sorted(self.extras.items()))

    def __str__(self) -> str:
        return self.format()

    def __contains__(self, text: str) -> bool:
        return text in self.format()


def signature_text(signature: Signature | str) -> str:
    """The display text of a signature (records written before signatures had fields hold it as text)."""
    return signature.format() if isinstance(signature, Signature) else signature


def signature_identity(signature: Signature | str) -> SignatureIdentity | str:
    """What two signatures must share to be comparable (text records: the text without the version)."""
    if isinstance(signature, Signature):
        return signature.identity()
    return "|".join(part for part in signature.split("|") if not part.startswith("evalharness:"))


@dataclass(frozen=True, slots=True)
class Direction:
    """Which way a metric is better: higher, lower, or closer to an ``ideal`` value (bias
    scores). One answer to "better", "worse" and "how good" everywhere they are asked."""

    higher_is_better: bool = True
    ideal: float | None = None

    @property
    def name(self) -> str:
        """``higher``, ``lower`` or ``ideal``."""
        return "ideal" if self.ideal is not None else "higher" if self.higher_is_better else "lower"

    @property
    def label(self) -> str:
        if self.ideal is not None:
            return f"closest to {self.ideal:g}"
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def short(self) -> str:
        return f"ideal {self.ideal:g}" if self.ideal is not None else "higher" if self.higher_is_better else "lower"

    def goodness(self, value: float) -> float:
        """A number that grows as ``value`` gets better (minus the distance from an ideal)."""
        if self.ideal is not None:
            return -abs(value - self.ideal)
        return value if self.higher_is_better else -value

    @property
    def lower_change_is_better(self) -> bool:
        """Whether a fall of the compared quantity is an improvement: for an ideal the compared
        quantity is the distance from it."""
        return self.ideal is not None or not self.higher_is_better

    def worsening(self, change: float) -> float:
        """How much worse a change of the compared quantity makes it (negative: better)."""
        return change if self.lower_change_is_better else -change


class MetricResult(_Result):
    """A corpus-level score with its uncertainty and provenance: what a metric computes and
    what the run record keeps (``metric`` and ``settings`` rebuild the metric)."""

    metric: str = Field(description="registry name; with settings, rebuilds the metric")
    settings: JSONObject = Field(default_factory=dict)
    value: float | None = Field(description="None when undefined (e.g. NaN), never a fake 0")
    ci: tuple[float | None, float | None]
    stderr: float | None
    ci_method: str
    n: int
    higher_is_better: bool
    ideal: float | None = None
    signature: Signature | str = Field(description="fields of what determines the value (text in records written before they had fields)")
    groups: dict[str, GroupResult] = Field(default_factory=dict)
    note: str | None = Field(default=None, description="why the value is null (e.g. an empty subset), when it is")

    @model_validator(mode="after")
    def _one_metric_and_settings(self) -> Self:
        # a result is rebuilt from metric/settings and compared by its signature: the two must
        # say the same, or an edited record would be recomputed under one and compared under the other
        if isinstance(self.signature, Signature) and (self.signature.metric, self.signature.settings) != (self.metric, self.settings):
            raise ValueError(
                f"metric and settings ({self.metric} {self.settings}) differ from the signature's "
                f"({self.signature.metric} {self.signature.settings})"
            )
        return self

    @property
    def direction(self) -> Direction:
        return Direction(self.higher_is_better, self.ideal)

    def replaced(self, **changes: object) -> Self:
        """A copy with some fields changed, validated (pydantic's ``model_copy`` is not)."""
        return self.model_validate({**dict(self), **changes})
