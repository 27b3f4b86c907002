"""The adjusted Wald interval of the NPS (Rocks 2016) and the comparison of two groups (cdp_profiles.nps_stats).

Pure arithmetic, no store: every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

import math
import random

import pytest

from cdp_profiles import nps_stats
from cdp_profiles.nps import NpsFigure

TOL = 0.01  # points


def bounds(figure: NpsFigure) -> tuple[float, float]:
    assert figure.interval is not None
    return figure.interval


def test_worked_example_from_the_docs() -> None:
    # 40 promoters, 35 passives, 25 detractors: NPS +15.
    # n' = 103, p' = 40.75 / 103 = 0.395631, d' = 25.75 / 103 = 0.25, centre = 15 / 103 = 0.145631;
    # var = 0.645631 - 0.145631^2 = 0.624423; half = 1.96 * sqrt(0.624423 / 103) = 1.96 * 0.077861 = 0.152608
    figure = NpsFigure(40, 35, 25)
    assert figure.nps == 15.0
    assert bounds(figure) == pytest.approx((-0.70, 29.82), abs=TOL)
    assert figure.margin_of_error == pytest.approx(15.26, abs=TOL)
    assert figure.to_dict()["ci_low"] == -0.7 and figure.to_dict()["ci_high"] == 29.82


def test_three_answers() -> None:
    # Three passives: n' = 6, p' = d' = 0.75 / 6 = 0.125, centre 0, var = 0.25, half = 1.96 * sqrt(0.25 / 6) = 0.40008.
    # The plain Wald interval said 0 +- 0.
    passives = NpsFigure(0, 3, 0)
    assert bounds(passives) == pytest.approx((-40.01, 40.01), abs=TOL)
    assert passives.margin_of_error == pytest.approx(40.01, abs=TOL)
    # Three promoters: p' = 3.75 / 6 = 0.625, d' = 0.125, centre 0.5, var = 0.75 - 0.25 = 0.5,
    # half = 1.96 * sqrt(0.5 / 6) = 0.56580 -> [-6.58, 106.58], clamped at 100: half-width (100 + 6.58) / 2 = 53.29.
    promoters = NpsFigure(3, 0, 0)
    assert bounds(promoters) == pytest.approx((-6.58, 100.0), abs=TOL)
    assert promoters.margin_of_error == pytest.approx(53.29, abs=TOL)
    assert bounds(NpsFigure(0, 0, 3)) == pytest.approx((-100.0, 6.58), abs=TOL)  # mirrored
    # 2 promoters, 1 detractor: the group that showed +-106.7 before. p' = 2.75 / 6, d' = 1.75 / 6, centre 1/6,
    # var = 0.75 - 1/36 = 0.72222, half = 1.96 * sqrt(0.72222 / 6) = 0.68001 -> [-51.33, 84.67]
    mixed = NpsFigure(2, 0, 1)
    assert bounds(mixed) == pytest.approx((-51.33, 84.67), abs=TOL)
    assert mixed.margin_of_error == pytest.approx(68.00, abs=TOL)


def test_one_answer() -> None:
    # One promoter: n' = 4, p' = 1.75 / 4 = 0.4375, d' = 0.1875, centre 0.25, var = 0.625 - 0.0625 = 0.5625,
    # half = 1.96 * sqrt(0.5625 / 4) = 1.96 * 0.375 = 0.735 -> [-48.5, 98.5]
    assert bounds(NpsFigure(1, 0, 0)) == pytest.approx((-48.5, 98.5), abs=TOL)
    assert bounds(NpsFigure(0, 0, 1)) == pytest.approx((-98.5, 48.5), abs=TOL)
    # One passive: p' = d' = 0.1875, var = 0.375, half = 1.96 * sqrt(0.375 / 4) = 0.60012
    assert NpsFigure(0, 1, 0).margin_of_error == pytest.approx(60.01, abs=TOL)


def test_never_zero_never_beyond_the_scale() -> None:
    for n in range(1, 40):
        for promoters in range(n + 1):
            for detractors in range(n + 1 - promoters):
                figure = NpsFigure(promoters, n - promoters - detractors, detractors)
                low, high = bounds(figure)
                assert -100.0 <= low < high <= 100.0
                assert 0 < (figure.margin_of_error or 0) <= 100
    empty = NpsFigure()
    assert (empty.interval, empty.margin_of_error, empty.to_dict()["ci_low"]) == (None, None, None)


def test_large_n_is_close_to_the_plain_wald() -> None:
    # 4,000 promoters, 3,500 passives, 2,500 detractors: plain Wald half-width 1.96 * sqrt(0.624423... / 10,000)
    figure = NpsFigure(4000, 3500, 2500)
    p, d = 0.4, 0.25
    wald = 1.96 * math.sqrt((p + d - (p - d) ** 2) / 10_000) * 100
    assert figure.margin_of_error == pytest.approx(wald, abs=0.005)
    low, high = bounds(figure)
    assert (low + high) / 2 == pytest.approx(15.0, abs=0.01)


def _coverage(n: int, dist: tuple[float, float, float], draws: int, rng: random.Random) -> float:
    truth = 100 * (dist[0] - dist[2])
    hits = 0
    for _ in range(draws):
        sample = rng.choices((0, 1, 2), weights=dist, k=n)
        low, high = bounds(NpsFigure(sample.count(0), sample.count(1), sample.count(2)))
        hits += low <= truth <= high
    return hits / draws


DISTRIBUTIONS = [(1 / 3, 1 / 3, 1 / 3), (0.5, 0.3, 0.2), (0.7, 0.2, 0.1), (0.8, 0.15, 0.05)]


@pytest.mark.parametrize("n", [10, 30])
def test_coverage_exact(n: int) -> None:
    # Every outcome of n answers with its multinomial probability: the true coverage, no randomness.
    # It is 0.944..0.963 for these distributions; the plain Wald interval has 0.87..0.91 at n = 10.
    for dist in DISTRIBUTIONS:
        truth = dist[0] - dist[2]
        covered = 0.0
        for promoters in range(n + 1):
            for detractors in range(n + 1 - promoters):
                passives = n - promoters - detractors
                ways = math.comb(n, promoters) * math.comb(n - promoters, detractors)
                probability = ways * dist[0] ** promoters * dist[1] ** passives * dist[2] ** detractors
                shares = nps_stats.interval(promoters, passives, detractors)
                assert shares is not None
                covered += probability if shares[0] <= truth <= shares[1] else 0.0
        assert 0.94 <= covered <= 0.97, (n, dist, covered)


@pytest.mark.parametrize("n", [10, 30])
def test_coverage_simulated(n: int) -> None:
    # 2,000 seeded samples per distribution: the share of intervals holding the true NPS. The standard error of
    # a share near 0.95 from 2,000 draws is 0.005, the exact coverage is >= 0.944: the band >= 0.92 holds with
    # a wide margin, and the seed makes it the same run every time.
    rng = random.Random(16_2016 + n)
    for dist in DISTRIBUTIONS:
        assert _coverage(n, dist, 2000, rng) >= 0.92, (n, dist)


def test_compare_two_groups_by_hand() -> None:
    # Group: 6 promoters, 2 passives, 2 detractors (NPS +40); rest: 2 / 3 / 5 (NPS -30). Raw difference 0.70.
    # Adjusted group: n' = 13, p' = 6.75 / 13, d' = 2.75 / 13, centre 4 / 13 = 0.307692,
    #   var = 9.5 / 13 - 0.307692^2 = 0.730769 - 0.094675 = 0.636095
    # Adjusted rest: n' = 13, p' = 2.75 / 13, d' = 5.75 / 13, centre -3 / 13 = -0.230769,
    #   var = 8.5 / 13 - 0.230769^2 = 0.653846 - 0.053254 = 0.600592
    # difference' = 7 / 13 = 0.538462; se = sqrt((0.636095 + 0.600592) / 13) = sqrt(0.095130) = 0.308431
    # interval = 0.538462 -/+ 1.96 * 0.308431 = [-0.066063, 1.142986]; z = 1.745808, p = erfc(z / sqrt 2) = 0.080844
    result = nps_stats.compare((6, 2, 2), (2, 3, 5))
    assert result.difference == pytest.approx(0.70)
    assert (result.low, result.high) == pytest.approx((-0.066063, 1.142986), abs=1e-5)
    assert result.p_value == pytest.approx(0.080844, abs=1e-5)
    with pytest.raises(ValueError):
        nps_stats.compare((0, 0, 0), (1, 1, 1))


def test_benjamini_hochberg_by_hand() -> None:
    # m = 5, sorted p: 0.001 0.008 0.039 0.041 0.2 -> p * 5 / rank: 0.005 0.02 0.065 0.05125 0.2;
    # running minimum from the largest rank down: 0.2, 0.05125, 0.05125, 0.02, 0.005
    p = [0.039, 0.001, 0.2, 0.041, 0.008]
    assert nps_stats.benjamini_hochberg(p) == pytest.approx([0.05125, 0.005, 0.2, 0.05125, 0.02])
    assert nps_stats.benjamini_hochberg([]) == []
    assert nps_stats.benjamini_hochberg([0.9, 0.95]) == [0.95, 0.95]
