"""Seeds in rounds (cifarpipe/aggregate/sequential.py): the boundaries against published values, and thousands of
simulated pull requests per design, checked for false calls, power and the seeds each spends (docs/noise.md)."""
import math

import numpy as np
import pytest
from scipy import stats

from cifarpipe.aggregate.sequential import Design, look_at, nominal_levels, simulate
from cifarpipe.core.params import load_params
from conftest import PARAMS_YAML

ALPHA = 0.05
PRS = 4000  # simulated pull requests per cell
# a rate estimated from PRS pull requests is within 3 standard errors of the true one but once in 370
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / PRS)
ROUNDS = Design.from_noise(load_params(PARAMS_YAML).noise).looks  # the committed noise group's rounds
DESIGNS = {"fixed 5, Welch": Design((5,), ALPHA, paired=False), "fixed 5, paired": Design((5,), ALPHA),
           "rounds, Welch": Design(ROUNDS, ALPHA, "pocock", paired=False),
           "rounds, paired": Design(ROUNDS, ALPHA, "pocock"),
           "rounds, paired, O'Brien-Fleming": Design(ROUNDS, ALPHA, "obrien_fleming")}


def z_bounds(looks, kind):
    return [stats.norm.isf(level / 2) for level in nominal_levels(looks, ALPHA, kind)]


def test_two_equal_looks_get_the_published_pocock_type_boundaries():
    # Lan-DeMets' Pocock-type spending, two looks at half and all of the information, two-sided 5%: the
    # boundaries tabulated for it are 2.157 and 2.201 (the first one follows from the spending function alone)
    assert z_bounds((5, 10), "pocock") == pytest.approx((2.157, 2.201), abs=2e-3)


@pytest.mark.parametrize("kind", ["pocock", "obrien_fleming"])
@pytest.mark.parametrize("looks", [(5, 10), (3, 6), (4, 6)])
def test_two_looks_spend_what_the_function_allows_by_the_bivariate_normal(kind, looks):
    # independent of the recursive integration: the two looks' z statistics are bivariate normal with
    # correlation sqrt(n1 / n2); the first look spends spent(t1), both together alpha
    b1, b2 = z_bounds(looks, kind)
    t1 = looks[0] / looks[1]
    first = spent_by(t1, kind)
    assert 2 * stats.norm.sf(b1) == pytest.approx(first, rel=1e-3)
    both = stats.multivariate_normal(mean=[0, 0], cov=[[1, math.sqrt(t1)], [math.sqrt(t1), 1]])
    inside = both.cdf([b1, b2]) - both.cdf([-b1, b2]) - both.cdf([b1, -b2]) + both.cdf([-b1, -b2])
    assert 1 - inside == pytest.approx(ALPHA, abs=2e-4)


def spent_by(t, kind):
    """The spending functions as Lan and DeMets wrote them, for the test above."""
    if kind == "pocock":
        return ALPHA * math.log(1 + (math.e - 1) * t)
    return 2 * stats.norm.sf(stats.norm.isf(ALPHA / 2) / math.sqrt(t))


def test_one_look_spends_all_of_alpha_and_more_looks_each_spend_less():
    assert nominal_levels((5,), ALPHA, "pocock") == pytest.approx((ALPHA,), rel=1e-3)
    levels = nominal_levels(ROUNDS, ALPHA, "pocock")
    assert all(0 < level < ALPHA for level in levels)
    # the z boundaries' own false-call rate over the four looks, by simulating the score's random walk
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(200_000, ROUNDS[-1])), axis=1)[:, [k - 1 for k in ROUNDS]]
    z = np.abs(walk) / np.sqrt(ROUNDS)
    rate = (z > np.asarray([stats.norm.isf(level / 2) for level in levels])).any(1).mean()
    assert rate == pytest.approx(ALPHA, abs=3 * math.sqrt(ALPHA * (1 - ALPHA) / 200_000))


@pytest.mark.parametrize("name", DESIGNS)
@pytest.mark.parametrize("rho", [0.0, 0.4, 0.8])
def test_no_design_calls_a_change_that_does_nothing_more_often_than_alpha(name, rho):
    design = DESIGNS[name]
    null = simulate(design, effect=0.0, rho=rho, margin=1.0, prs=PRS, seed=11)
    assert null["better"] + null["worse"] <= ALPHA + SLACK, null
    # nor one on the margin's edge equivalent: each of its two one-sided tests runs at alpha
    edge = simulate(design, effect=1.0, rho=rho, margin=1.0, prs=PRS, seed=12)
    assert edge["equivalent"] <= ALPHA + SLACK, edge
    # and a change inside the margin is found equivalent more often than not, given the seeds
    inside = simulate(design, effect=0.0, rho=rho, margin=3.0, prs=PRS, seed=13)
    assert inside["equivalent"] > 0.5, inside


def test_pairing_and_rounds_call_a_2_sigma_change_with_fewer_seeds_at_the_power_of_fixed_five():
    # at the correlation common random numbers gave on real runs (0.76 to 0.83, docs/noise.md)
    fixed = simulate(DESIGNS["fixed 5, Welch"], effect=2.0, rho=0.8, margin=None, prs=PRS, seed=21)
    rounds = simulate(DESIGNS["rounds, paired"], effect=2.0, rho=0.8, margin=None, prs=PRS, seed=21)
    short = simulate(Design((3, 4), ALPHA, "pocock"), effect=2.0, rho=0.8, margin=None, prs=PRS, seed=21)
    assert fixed["seeds"] == 5 and 0.8 < fixed["better"] < 0.95, fixed
    assert rounds["better"] > fixed["better"] + 0.05 and rounds["seeds"] < 0.8 * 5, rounds
    assert short["better"] >= fixed["better"] - SLACK and short["seeds"] <= 0.7 * 5, short  # the goal
    # without the correlation, pairing only costs degrees of freedom: the rounds lose power to fixed five
    fixed0 = simulate(DESIGNS["fixed 5, Welch"], effect=2.0, rho=0.0, margin=None, prs=PRS, seed=22)
    rounds0 = simulate(DESIGNS["rounds, paired"], effect=2.0, rho=0.0, margin=None, prs=PRS, seed=22)
    assert rounds0["better"] < fixed0["better"], (rounds0, fixed0)


def test_a_look_stops_on_a_call_and_goes_on_while_undecided():
    design = DESIGNS["rounds, paired"]
    base = np.array([0.900, 0.902, 0.899, 0.901, 0.903, 0.900])
    better = look_at(base[:3], base[:3] + [0.010, 0.011, 0.012], design, margin=0.005)
    assert (better.call, better.decided, better.index) == ("better", True, 0)
    noisy = look_at(base[:3], base[:3] + [0.010, -0.009, 0.001], design, margin=0.005)
    assert (noisy.call, noisy.decided) == ("undecided", False)
    last = look_at(base, base + [0.010, -0.009, 0.001, 0.004, -0.006, 0.002], design, margin=0.001)
    assert (last.call, last.decided, last.index) == ("undecided", True, 3)
    assert look_at(base[:2], base[:2], design, margin=0.005) is None  # 2 seeds a side is not one of its looks
