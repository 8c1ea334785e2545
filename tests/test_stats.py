"""Interval functions against published and hand-derived reference numbers.

The reference values do not come from scipy: Wilson bounds are worked out by hand
below, and Poisson bounds are checked against printed tables and against the
defining tail equations evaluated with plain Python arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from outcomes.stats import Z95, poisson_interval, rate_interval, wilson_interval


def test_wilson_8_of_10_by_hand():
    # p = 0.8, n = 10, z^2 = 3.8414588; 1 + z^2/n = 1.38414588
    # centre = (0.8 + 3.8414588/20) / 1.38414588 = 0.99207294 / 1.38414588 = 0.7167402
    # half   = 1.959964 x sqrt(0.8 x 0.2 / 10 + 3.8414588 / 400) / 1.38414588
    #        = 1.959964 x sqrt(0.016 + 0.00960365) / 1.38414588
    #        = 1.959964 x 0.1600114 / 1.38414588 = 0.3136166 / 1.38414588 = 0.2265777
    # -> 0.4901625 .. 0.9433179 (usually printed 0.4902 .. 0.9433)
    low, high = wilson_interval([8], [10])
    assert low[0] == pytest.approx(0.4901625, abs=2e-7)
    assert high[0] == pytest.approx(0.9433179, abs=2e-7)


def test_wilson_matches_newcombe_1998():
    # Newcombe, Statistics in Medicine 17:857-872 (1998), Table I, 81/263,
    # method 3 (score without continuity correction): 0.2553 .. 0.3662
    low, high = wilson_interval([81], [263])
    assert (round(low[0], 4), round(high[0], 4)) == (0.2553, 0.3662)


def test_wilson_at_zero_and_all_successes():
    # x = 0: centre = half, low = 0, high = z^2 / (n + z^2) = 3.841459 / 13.841459 = 0.277533
    low, high = wilson_interval([0, 10], [10, 10])
    assert low[0] == 0.0 and high[0] == pytest.approx(0.277533, abs=1e-6)
    # x = n mirrors it: 1 - 0.277533
    assert low[1] == pytest.approx(1 - 0.277533, abs=1e-6)
    assert high[1] == 1.0


def test_wilson_without_trials_has_no_interval():
    low, high = wilson_interval(pl.Series([0, 3]), pl.Series([0, 6]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert not np.isnan(low[1])


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_estimate_and_stays_in_the_unit_interval(case):
    x, n = case
    low, high = wilson_interval([x], [n])
    assert 0.0 <= low[0] <= x / n <= high[0] <= 1.0


def _poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu), summed directly (no scipy)."""
    return sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k + 1))


def test_poisson_zero_count_has_a_closed_form():
    # x = 0: low = 0; high solves exp(-mu) = 0.025 -> mu = -ln 0.025 = 3.688879
    low, high = poisson_interval([0])
    assert low[0] == 0.0
    assert high[0] == pytest.approx(-math.log(0.025), rel=1e-9)


@pytest.mark.parametrize(
    ("x", "table_low", "table_high"),
    # exact 95% limits for a Poisson count as printed in standard tables
    # (e.g. Ulm, Am J Epidemiol 131:373-375, 1990; Sahai & Khurshid 1993)
    [(1, 0.0253, 5.5716), (5, 1.6235, 11.6683), (20, 12.2165, 30.8884)],
)
def test_poisson_exact_limits(x, table_low, table_high):
    low, high = poisson_interval([x])
    assert (round(low[0], 4), round(high[0], 4)) == (table_low, table_high)
    # Garwood's definition: P(X >= x | low) = 0.025 and P(X <= x | high) = 0.025
    assert 1 - _poisson_cdf(x - 1, low[0]) == pytest.approx(0.025, abs=1e-9)
    assert _poisson_cdf(x, high[0]) == pytest.approx(0.025, abs=1e-9)


def test_rate_interval_scales_by_multiplier_over_denominator():
    # 5 per 2,000 x 1,000 -> value 2.5; limits 1.6235 / 2 .. 11.6683 / 2
    low, high = rate_interval([5, 3], [2000, 0], [1000.0, 1000.0])
    assert low[0] == pytest.approx(1.62349 / 2, abs=1e-5)
    assert high[0] == pytest.approx(11.66833 / 2, abs=1e-5)
    assert np.isnan(low[1]) and np.isnan(high[1])  # zero denominator


def test_z_is_the_normal_975_quantile():
    # Phi(1.959964) = 0.975 via erf, independent of scipy
    assert 0.5 * (1 + math.erf(Z95 / math.sqrt(2))) == pytest.approx(0.975, abs=1e-12)
