"""Release decisions on a paired difference: non-inferiority and equivalence.

A gate that fails a drop "only when significant" passes every regression it is too small to
see. The release question is the reverse: *is the candidate not worse than the baseline by
more than a margin M?* (non-inferiority; e.g. Wellek, "Testing statistical hypotheses of
equivalence and noninferiority", 2nd ed., 2010, ch. 2). At level alpha it passes only when the
lower bound of the two-sided (1 - 2 alpha) interval of candidate minus baseline, in the
metric's better direction, is above -M (equivalently, the one-sided test of
H0: difference <= -M rejects). Equivalence, for metrics that must not move either way (bias
scores), is Schuirmann's (1987) two one-sided tests: the (1 - 2 alpha) interval lies inside
(-M, M).

An interval that is undefined never passes: the decision is "undetermined" and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

from evalharness.errors import UsageError
from evalharness.inference.checks import check_alpha, check_flag, check_margin
from evalharness.inference.estimate import Estimate

__all__ = ["Decision", "Margin", "confidence_for", "equivalence", "noninferiority"]


def confidence_for(alpha: float) -> float:
    """Confidence of the two-sided interval whose bounds are one-sided tests at ``alpha``."""
    return 1 - 2 * check_alpha(alpha)


@dataclass(frozen=True)
class Margin:
    """A rule's margin: in the metric's units, or (``relative``) as a fraction of the
    baseline's value. A relative margin is fixed at the observed baseline value (the usual
    fixed-margin approach); the decision names the value it used."""

    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        check_flag(self.relative, "relative")
        check_margin(self.value, name="relative margin" if self.relative else "margin")
        if self.relative and self.value >= 1:
            raise UsageError(
                f"a relative margin is a fraction of the baseline (0.02 = 2%), got {self.value:g}: "
                "a drop of 100% or more would pass any candidate"
            )

    def absolute(self, baseline_value: float | None = None) -> float:
        if not self.relative:
            return self.value
        if baseline_value is None or not math.isfinite(baseline_value) or baseline_value == 0:
            raise UsageError(
                f"a relative margin of {self.value:g} needs a finite, non-zero baseline value (got {baseline_value!r}); "
                "use an absolute margin"
            )
        return self.value * abs(baseline_value)

    def describe(self, baseline_value: float | None = None) -> str:
        if not self.relative:
            return f"{self.value:g}"
        return f"{self.value:.4g} x |baseline {baseline_value:.4g}| = {self.absolute(baseline_value):.4g}"


@dataclass(frozen=True)
class Decision:
    """The verdict of one rule, with everything a report shows: the interval, the margin,
    the level, a one-sided p-value where the interval is a t interval, and a sentence."""

    rule: str  # "noninferior" or "within"
    verdict: str
    passed: bool
    estimate: Estimate
    margin: float
    alpha: float
    detail: str
    p_value: float | None = None

    @property
    def method(self) -> str:
        """For a signature: the test, its level and margin, and how the interval was made."""
        return f"{self.rule}|alpha:{self.alpha:g}|margin:{self.margin:g}|{self.estimate.method}"


NONINFERIOR, NOT_RULED_OUT, INFERIOR = "non-inferior", "inferiority not ruled out", "inferior"
EQUIVALENT, NOT_SHOWN = "equivalent", "equivalence not shown"
UNDETERMINED = "undetermined"


def _check_level(estimate: Estimate, alpha: float) -> float:
    alpha = check_alpha(alpha)
    if abs(estimate.confidence - (1 - 2 * alpha)) > 1e-9:
        raise ValueError(
            f"a test at alpha={alpha:g} needs the {1 - 2 * alpha:.4g} interval, got a {estimate.confidence:.4g} one"
        )
    return alpha


def _t_pvalue(estimate: Estimate, shift: float, *, upper: bool) -> float | None:
    """One-sided t p-value of H0: difference <= shift (or >= shift when ``upper``)."""
    if estimate.df is None or not estimate.stderr or not math.isfinite(estimate.stderr):
        return None
    statistic = (estimate.estimate - shift) / estimate.stderr
    return float(scipy_stats.t.cdf(statistic, estimate.df) if upper else scipy_stats.t.sf(statistic, estimate.df))


def _interval(estimate: Estimate) -> str:
    return f"{100 * estimate.confidence:g}% CI of the difference [{estimate.low:.4g}, {estimate.high:.4g}]"


def noninferiority(estimate: Estimate, *, margin: float, alpha: float, largest_difference: float | None = None) -> Decision:
    """Passes when ``estimate.low > -margin``; ``estimate`` must be the (1 - 2 alpha) interval.

    ``largest_difference`` (the metric's range) refuses a margin no candidate could exceed:
    such a rule would pass without checking anything.
    """
    alpha, margin = _check_level(estimate, alpha), check_margin(margin)
    if largest_difference is not None and margin >= largest_difference:
        raise UsageError(
            f"margin {margin:g} is at least the largest possible difference {largest_difference:g}: "
            "the rule would pass any candidate; use a smaller margin"
        )
    if not estimate.defined:
        reason = "; ".join(estimate.notes) or "no interval"
        return Decision("noninferior", UNDETERMINED, False, estimate, margin, alpha, f"cannot decide: {reason}")
    p_value = _t_pvalue(estimate, -margin, upper=False)
    if estimate.low > -margin:
        verdict, sign = NONINFERIOR, ">"
    else:
        verdict, sign = (INFERIOR if estimate.high < -margin else NOT_RULED_OUT), "≤"
    detail = f"{_interval(estimate)}: lower bound {estimate.low:.4g} {sign} -{margin:g} (margin {margin:g})"
    return Decision("noninferior", verdict, verdict == NONINFERIOR, estimate, margin, alpha, detail, p_value)


def equivalence(estimate: Estimate, *, margin: float, alpha: float) -> Decision:
    """TOST: passes when the (1 - 2 alpha) interval lies inside (-margin, margin)."""
    alpha, margin = _check_level(estimate, alpha), check_margin(margin)
    if margin == 0:
        raise UsageError("an equivalence margin of 0 can never be shown; give the largest change that does not matter")
    if not estimate.defined:
        reason = "; ".join(estimate.notes) or "no interval"
        return Decision("within", UNDETERMINED, False, estimate, margin, alpha, f"cannot decide: {reason}")
    lower, upper = _t_pvalue(estimate, -margin, upper=False), _t_pvalue(estimate, margin, upper=True)
    p_value = None if lower is None or upper is None else max(lower, upper)
    inside = -margin < estimate.low and estimate.high < margin
    verdict = EQUIVALENT if inside else NOT_SHOWN
    relation = "inside" if inside else "not inside"
    detail = f"{_interval(estimate)} {relation} (-{margin:g}, {margin:g})"
    return Decision("within", verdict, inside, estimate, margin, alpha, detail, p_value)
