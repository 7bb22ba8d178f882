"""What a gate found: per-check results, per-rule results and the report, with the exit code
every output (terminal, JUnit, Markdown, JSON) derives from.

Four statuses: passed, failed, not evaluated (the check could not be made: exit 2) and
skipped (an ``optional`` rule that could not be evaluated). A check made with a statistical
test also carries its interval, margin, verdict, p-value and minimum detectable effect; a
sequential check carries how many examples it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from typing_extensions import NotRequired

from evalharness.comparison.compare import CompareSettings
from evalharness.comparison.gate_policy import GatePolicy
from evalharness.jsonvalues import JSONObject

__all__ = [
    "FAILED",
    "NOT_EVALUATED",
    "PASSED",
    "SKIPPED",
    "STATUSES",
    "CheckResult",
    "ComparedFields",
    "DetectableFields",
    "GateReport",
    "IntervalRecord",
    "MdeRecord",
    "NoiseFields",
    "RuleResult",
    "SequentialRecord",
]

PASSED, FAILED, NOT_EVALUATED, SKIPPED = "passed", "failed", "not evaluated", "skipped"
STATUSES = (PASSED, FAILED, NOT_EVALUATED, SKIPPED)


# -- results ----------------------------------------------------------------------------------


class IntervalRecord(TypedDict):
    """A statistical check's interval of candidate minus baseline (better direction);
    undefined bounds are null, with the reason in ``notes``."""

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    stderr: float | None
    n: int
    method: str
    df: float | None
    clusters: int | None
    notes: list[str]
    oriented: str


class MdeRecord(TypedDict):
    """The minimum detectable effect of a check's test (``value`` null with a ``reason``
    when the data cannot say)."""

    value: float | None
    power: float
    alpha: float
    method: str
    reason: NotRequired[str]


class SequentialDecisionRecord(TypedDict):
    rule: str
    verdict: str
    estimate: float | None
    low: float | None
    high: float | None
    examples_used: int


class SequentialRecord(TypedDict):
    """How a sequential check was decided."""

    examples_used: int
    examples_total: int
    saving: float
    order_seed: int
    batch_size: int
    method: str
    decisions: list[SequentialDecisionRecord]


# Groups of CheckResult fields that the gate's checks fill together.


class ComparedFields(TypedDict):
    """What a baseline check reports of the comparison: both values, the change and n."""

    candidate: float | None
    baseline: float | None
    change: float | None
    n: int


class DetectableFields(TypedDict, total=False):
    """What a 'significant' rule's test can detect (absent for other rules)."""

    mde: MdeRecord
    mde_warning: str | None


class NoiseFields(TypedDict, total=False):
    """A threshold within the runs' measured noise (absent otherwise)."""

    noise_warning: str


@dataclass(frozen=True)
class CheckResult:
    check: str
    description: str
    status: str
    detail: str
    candidate: float | None = None
    baseline: float | None = None
    change: float | None = None
    p_value: float | None = None
    n: int | None = None  # examples that entered the metric (compared examples for baseline checks)
    # Statistical checks (noninferior, within) and the test behind 'significant' rules:
    interval: IntervalRecord | None = None
    margin: float | None = None  # the absolute margin the test used
    verdict: str | None = None  # the test's verdict, e.g. "non-inferior", "inferiority not ruled out"
    mde: MdeRecord | None = None
    mde_warning: str | None = None  # the threshold is below what the data can detect
    noise_warning: str | None = None  # the threshold is not above the runs' measured noise floor (noise.json)
    sequential: SequentialRecord | None = None


@dataclass(frozen=True)
class RuleResult:
    name: str
    task: str
    metric: str | None
    where: str
    checks: list[CheckResult]

    @property
    def status(self) -> str:
        """The worst status of its checks: failed, not evaluated, skipped, passed."""
        statuses = {check.status for check in self.checks}
        return next(status for status in (FAILED, NOT_EVALUATED, SKIPPED, PASSED) if status in statuses)


@dataclass(frozen=True)
class GateReport:
    """What :func:`evaluate_gate` found; rendered by :mod:`evalharness.comparison.gate_report`."""

    policy_path: str
    policy: GatePolicy
    candidate: JSONObject  # path, run_id, model, fingerprint (and where the gate was given it)
    baseline: JSONObject | None
    rules: list[RuleResult]
    settings: CompareSettings
    notes: list[str] = field(default_factory=list)

    def _checks(self) -> list[CheckResult]:
        return [check for rule in self.rules for check in rule.checks]

    @property
    def checked_anything(self) -> bool:
        return any(check.status in (PASSED, FAILED) for check in self._checks())

    @property
    def exit_code(self) -> int:
        """0 every rule evaluated and passed; 1 a rule failed; 2 a rule could not be evaluated
        or nothing was checked (every rule skipped)."""
        statuses = {check.status for check in self._checks()}
        if NOT_EVALUATED in statuses or not self.checked_anything:
            return 2
        return 1 if FAILED in statuses else 0

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def verdict(self) -> str:
        return {0: "passed", 1: "failed", 2: "not evaluated"}[self.exit_code]

    def problems(self) -> list[str]:
        """Why the gate exits 2: each rule it could not evaluate, or that it checked nothing."""
        found = [
            f"{rule.where}: {rule.name}: {check.check}: {check.detail}"
            for rule in self.rules
            for check in rule.checks
            if check.status == NOT_EVALUATED
        ]
        if not self.checked_anything:
            found.append(f"{self.policy_path}: every rule was skipped, so the gate checked nothing")
        return found

    def counts(self) -> dict[str, int]:
        statuses = [rule.status for rule in self.rules]
        return {status: statuses.count(status) for status in STATUSES}
