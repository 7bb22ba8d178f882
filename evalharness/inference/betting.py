"""Anytime-valid confidence sequences for the mean of [0, 1] scores, by betting.

Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting", JRSS-B
86(1), 2024 (arXiv:2010.09686), the hedged capital process with predictable plug-in bets
(their "PrPl-H" confidence sequence). For a candidate mean ``m`` a gambler bets on each new
observation; the capital

    K_t^+(m) = prod_{i<=t} (1 + lambda_i^+(m) (X_i - c_i(m)))          ("+" side)
    K_t^-(m) = prod_{i<=t} (1 - lambda_i^-(m) (X_i - c_i(m)))          ("-" side)

is a non-negative supermartingale when the true mean is at most (resp. at least) ``m`` and
the bets are predictable, so by Ville's inequality P(sup_t K_t >= 1/alpha) <= alpha: a
threshold rejected at *any* data-dependent time stays an alpha-level decision (no inflation
from looking after every batch, unlike repeated fixed-n tests).

- Bets: their predictable plug-in
  ``lambda_t = sqrt(2 log(1/alpha) / (sigma2_{t-1} t log(1 + t)))`` with the regularised
  estimates ``mu_t = (1/2 + sum_{i<=t} X_i) / (t + 1)`` and
  ``sigma2_t = (1/4 + sum_{i<=t} (X_i - mu_i)^2) / (t + 1)``, truncated at ``c / c_i(m)``
  ("+") and ``c / (1 - c_i(m))`` ("-") with their default c = 1/2. Each factor is then monotone in ``m``, so the set of ``m`` not rejected is
  an interval and each side can be tested at a single threshold.
- Centres: ``c_i(m) = m`` for i.i.d. draws (a population mean); for sampling *without
  replacement* from a finite test set of N examples (Waudby-Smith & Ramdas, "Confidence
  sequences for sampling without replacement", NeurIPS 2020, Sec. 3), the mean of what is
  left, ``c_i(m) = (N m - S_{i-1}) / (N - i + 1)``, plus the deterministic range of the
  test-set mean given what has been seen; there the sequence closes on the test-set mean.

Each side is used at level alpha, so the two-sided set has confidence 1 - 2 alpha: the same
convention as a one-sided test at alpha read off a two-sided (1 - 2 alpha) interval.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from evalharness.stats import FloatArray

__all__ = ["confidence_bounds", "log_capital"]

_C = 0.5  # truncation of the bets (their c); 1/2 is their default
_EPS = 1e-12


def _bets(x: FloatArray, alpha: float) -> FloatArray:
    """Predictable plug-in bets lambda_i (i = 1..t), from X_1..X_{i-1} only."""
    t = x.shape[-1]
    steps = np.arange(1, t + 1, dtype=float)
    mean = (0.5 + np.cumsum(x, axis=-1)) / (steps + 1)  # mu_i includes X_i
    spread = (0.25 + np.cumsum((x - mean) ** 2, axis=-1)) / (steps + 1)  # sigma2_i
    previous_spread = np.concatenate([np.full(x.shape[:-1] + (1,), 0.25), spread[..., :-1]], axis=-1)
    return np.sqrt(2 * math.log(1 / alpha) / (previous_spread * steps * np.log1p(steps)))


def _centres(x: FloatArray, m: FloatArray, population: int | None) -> FloatArray:
    if population is None:
        return np.broadcast_to(m, x.shape)
    t = x.shape[-1]
    seen_before = np.cumsum(x, axis=-1) - x  # S_{i-1}
    remaining = population - np.arange(t, dtype=float)  # N - i + 1
    return (population * m - seen_before) / remaining


def log_capital(
    x: npt.ArrayLike, m: float | FloatArray, *, alpha: float, side: int, population: int | None = None
) -> FloatArray:
    """log K_t^{side}(m) for every t (last axis), for rows of [0, 1] observations.

    ``side=+1`` grows when the mean is above ``m`` (rejects "mean <= m"), ``side=-1`` when it
    is below. ``m`` is a scalar or broadcasts against ``x[..., :1]``. With ``population``
    (N), rows are draws without replacement from N values and ``m`` is their mean; a value
    of ``m`` that the observations make impossible has capital +inf.
    """
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    bets = _bets(x, alpha)
    centres = _centres(x, m, population)
    if side > 0:
        room = np.where(centres > 0, _C / np.maximum(centres, _EPS), np.inf)
        factors = np.log1p(np.minimum(bets, room) * (x - centres))
    else:
        room = np.where(centres < 1, _C / np.maximum(1 - centres, _EPS), np.inf)
        factors = np.log1p(-np.minimum(bets, room) * (x - centres))
    capital = np.cumsum(factors, axis=-1)
    if population is not None:
        seen = np.cumsum(x, axis=-1)
        unseen = population - np.arange(1, x.shape[-1] + 1, dtype=float)
        tolerance = _EPS * population
        impossible = population * m < seen - tolerance if side > 0 else population * m > seen + unseen + tolerance
        capital = np.where(impossible, np.inf, capital)
    return capital


def confidence_bounds(x: npt.ArrayLike, *, alpha: float, population: int | None = None, tolerance: float = 1e-9) -> tuple[float, float]:
    """The confidence sequence at the last observation of ``x`` (1-d): the means ``m`` that
    neither side rejects at level ``alpha``, found by bisection (each side is monotone in m).
    Confidence 1 - 2 alpha; valid at any stopping time."""
    x = np.asarray(x, dtype=float)
    threshold = math.log(1 / alpha)

    def rejected(m: float, side: int) -> bool:
        return bool(log_capital(x, m, alpha=alpha, side=side, population=population)[-1] >= threshold)

    def bisect(side: int) -> float:
        # "+" side: rejected for small m; find the smallest m not rejected.
        inside, outside = (1.0, 0.0) if side > 0 else (0.0, 1.0)
        if not rejected(outside, side):
            return outside
        while abs(inside - outside) > tolerance:
            middle = (inside + outside) / 2
            if rejected(middle, side):
                outside = middle
            else:
                inside = middle
        return outside  # the conservative end: a rejected value, never one inside the set

    return bisect(+1), bisect(-1)
