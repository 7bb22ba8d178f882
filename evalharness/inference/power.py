"""Minimum detectable effect: the smallest true difference a rule would detect.

A rule that tests a drop against a threshold smaller than what its data can see passes
regressions silently. For a test at level ``alpha`` with standard error ``se`` the minimum
detectable effect (MDE) at ``power`` is the true difference delta at which the test rejects
with probability ``power``:

- t tests (paired t, cluster-robust t with G - 1 df): the non-central t, nc = delta / se,
  power = P(T'(df, nc) > t_{1-alpha, df}) (+ the lower tail when two-sided). With
  se = sd / sqrt(n) and df = n - 1 this is ``statsmodels.stats.power.TTestPower().
  solve_power(effect_size=None, nobs=n, alpha=alpha, power=power) * sd``.
- Bootstrap-based metrics (no df): the normal approximation from the bootstrap standard
  error, delta = (z_{1-alpha} + z_power) se one-sided (Cohen 1988, ch. 2).

For a non-inferiority rule the same number is the smallest margin at which a candidate that
is truly as good as the baseline passes with probability ``power``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy import optimize
from scipy import stats as scipy_stats

from evalharness.errors import UsageError
from evalharness.inference.checks import check_alpha
from evalharness.inference.estimate import Estimate

__all__ = ["DetectableEffect", "cannot_see", "detectable_difference", "detectable_from"]

DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class DetectableEffect:
    """The smallest true difference detected with probability ``power`` (NaN with a
    ``reason`` when the data cannot say, e.g. no variance)."""

    value: float
    stderr: float
    n: int
    alpha: float
    power: float
    two_sided: bool
    df: float | None
    method: str
    reason: str = ""


def _power(delta: float, stderr: float, alpha: float, two_sided: bool, df: float | None) -> float:
    tail = alpha / 2 if two_sided else alpha
    nc = delta / stderr
    if df is None:
        critical = scipy_stats.norm.isf(tail)
        upper = scipy_stats.norm.sf(critical - nc)
        return upper + (scipy_stats.norm.cdf(-critical - nc) if two_sided else 0.0)
    critical = scipy_stats.t.isf(tail, df)
    upper = scipy_stats.nct.sf(critical, df, nc)
    # The lower tail P(T'(nc) < -c) as P(T'(-nc) > c): scipy's nct.cdf returns NaN far in the
    # tail (e.g. alpha 1e-6, df 50, nc 6) where the survival function is exact.
    return float(upper + (scipy_stats.nct.sf(critical, df, -nc) if two_sided else 0.0))


def detectable_difference(
    stderr: float,
    *,
    n: int,
    alpha: float,
    power: float = DEFAULT_POWER,
    two_sided: bool = False,
    df: float | None = None,
) -> DetectableEffect:
    """MDE for a test with standard error ``stderr`` (t with ``df`` degrees of freedom, or
    normal when ``df`` is None)."""
    alpha = check_alpha(alpha, upper=1.0)
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not alpha < power < 1:
        raise UsageError(f"power must be a number between alpha ({alpha:g}) and 1, got {power!r}")
    family = "normal" if df is None else f"t(df={df:g})"
    method = f"mde-{family}-{'two' if two_sided else 'one'}-sided-alpha:{alpha:g}-power:{power:g}"
    if df is not None and df < 1:
        return DetectableEffect(math.nan, stderr, n, alpha, power, two_sided, df, method, "fewer than 2 independent units")
    if not math.isfinite(stderr) or stderr <= 0:
        reason = "no standard error" if not math.isfinite(stderr) else "the differences do not vary, so the spread a test would face is unknown"
        return DetectableEffect(math.nan, stderr, n, alpha, power, two_sided, df, method, reason)
    # power(delta) rises from ~alpha at 0 to 1; bracket generously in units of the stderr.
    upper = stderr
    while (reached := _power(upper, stderr, alpha, two_sided, df)) < power:
        upper *= 2
    try:
        if math.isnan(reached):
            raise ValueError(f"power is NaN at {upper:g}")
        value = optimize.brentq(lambda d: _power(d, stderr, alpha, two_sided, df) - power, 0.0, upper, xtol=1e-14 * max(1.0, stderr), rtol=1e-13)
    except ValueError as exc:  # scipy could not evaluate the power curve this far in its tails
        reason = f"the power curve cannot be evaluated at alpha {alpha:g} ({exc})"
        return DetectableEffect(math.nan, stderr, n, alpha, power, two_sided, df, method, reason)
    return DetectableEffect(float(value), stderr, n, alpha, power, two_sided, df, method)


def detectable_from(estimate: Estimate, *, alpha: float, power: float = DEFAULT_POWER, two_sided: bool = False) -> DetectableEffect:
    """MDE of the test behind an interval: its standard error and (for t intervals) its df,
    i.e. n - 1 for a paired t and G - 1 for a cluster-robust interval."""
    effect = detectable_difference(estimate.stderr, n=estimate.n, alpha=alpha, power=power, two_sided=two_sided, df=estimate.df)
    if not math.isfinite(estimate.stderr) and estimate.notes:
        return replace(effect, reason="; ".join(estimate.notes))
    return effect


def cannot_see(effect: DetectableEffect, threshold: float, *, what: str = "drop", unit: str = "") -> str | None:
    """The warning for a threshold below the MDE, e.g. ``this gate cannot see a drop of 1.0
    with 200 examples; it can see 4.3``; None when the threshold is detectable."""
    if not math.isfinite(effect.value):
        return f"this gate cannot tell which {what} it can see with {effect.n} examples: {effect.reason}"
    if threshold >= effect.value:
        return None
    return (
        f"this gate cannot see a {what} of {_fmt(threshold)}{unit} with {effect.n} examples; it can see "
        f"{_fmt(effect.value)}{unit} (power {effect.power:g} at alpha {effect.alpha:g})"
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"
