"""95% intervals for published indicators (contract section 4), vectorised over columns.

Proportions get the Wilson score interval: unlike the Wald interval it stays inside
[0, 1] and keeps near-nominal coverage for the small counts of county cells.
Rates get the exact (Garwood) Poisson interval on the numerator, scaled by
multiplier / denominator: the population is treated as known, the count as Poisson.

Every function takes whole columns (numpy arrays, Polars Series or sequences) and
returns float arrays with NaN where no interval exists (denominator 0); callers turn
NaN into null. No Python loop runs over rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

Z95 = 1.959963984540054  # standard normal 0.975 quantile
ALPHA = 0.05

ArrayLike = npt.ArrayLike
Interval = tuple[np.ndarray, np.ndarray]


def _floats(values: ArrayLike) -> np.ndarray:
    """Float64 copy of a column: one dtype for the arithmetic below."""
    return np.asarray(values, dtype=np.float64)


def wilson_interval(successes: ArrayLike, trials: ArrayLike, z: float = Z95) -> Interval:
    """Wilson score interval for successes / trials; NaN where trials is 0.

    The bound is exactly 0 at x = 0 and exactly 1 at x = n (the formula gives them only
    up to rounding, e.g. 1e-19 or 0.9999999999999999), and clipped to [0, 1].
    """
    x, n = _floats(successes), _floats(trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z * np.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    low = np.where(x == 0, 0.0, np.clip(centre - half, 0, 1))
    high = np.where(x == n, 1.0, np.clip(centre + half, 0, 1))
    empty = ~(n > 0)
    low[empty], high[empty] = np.nan, np.nan
    return low, high


def poisson_interval(counts: ArrayLike, alpha: float = ALPHA) -> Interval:
    """Exact Garwood interval for a Poisson mean given an observed count.

    low = chi2(alpha/2; 2x) / 2 (0 when x = 0), high = chi2(1 - alpha/2; 2x + 2) / 2:
    the central interval whose tails each hold at most alpha/2.
    """
    x = _floats(counts)
    with np.errstate(invalid="ignore"):
        low = np.where(x > 0, chi2.ppf(alpha / 2, np.maximum(2 * x, 1)) / 2, 0.0)
        high = chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2
    low[np.isnan(x)], high[np.isnan(x)] = np.nan, np.nan
    return low, high


def rate_interval(
    counts: ArrayLike, denominators: ArrayLike, multiplier: ArrayLike, alpha: float = ALPHA
) -> Interval:
    """Exact Poisson interval of a rate counts / denominators x multiplier; NaN at 0."""
    d = _floats(denominators)
    low, high = poisson_interval(counts, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(d > 0, _floats(multiplier) / d, np.nan)
    return low * scale, high * scale
