"""Reading LRMAX and LRMIN off range-test curves: a real recorded one, and shapes the tests make."""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch_lr_finder import LRFinder

from cifarpipe.core.errors import PipelineError
from cifarpipe.lr.rules import LRMIN_RULES, RULES, pick, trim, valley_index
from conftest import defaults

RECORDED = Path(__file__).parent / "data" / "custom_resnet_adam_proxy_full.csv"
DEFAULTS = defaults("lr_pick")  # as params.yaml ships it
LRMIN_DIV = 100  # schedule.lrmin_div


def rules(**changes):
    return DEFAULTS.model_copy(update=changes)


def recorded_curve():
    """The real range test of the default params on the full proxy train set (shared/lr-curves)."""
    with open(RECORDED) as f:
        rows = list(csv.DictReader(f))
    return [float(r["lr"]) for r in rows], [float(r["loss"]) for r in rows]


def synthetic_curve(*, fall_at, min_at, start=1e-5, end=10.0, steps=120, noise=0.0, diverges=True, seed=0,
                    smooth=0.05):
    """A range test's curve as torch-lr-finder records it: a raw loss that falls from 2.3 around `fall_at`,
    bottoms out near `min_at` and blows up past it, plus noise, then smoothed by the same exponential
    average."""
    lrs = np.geomspace(start, end, steps)
    x = np.log10(lrs)
    centre = (np.log10(fall_at) + np.log10(min_at)) / 2
    width = (np.log10(min_at) - np.log10(fall_at)) / 6
    raw = 2.3 - 1.6 / (1 + np.exp(-(x - centre) / width))
    if diverges:
        raw += np.exp((x - np.log10(min_at)) * 4)  # blows up past the minimum
    raw += np.random.default_rng(seed).normal(0, noise, steps)
    smoothed = [raw[0]]
    for value in raw[1:]:
        smoothed.append(smooth * value + (1 - smooth) * smoothed[-1])
    return list(lrs), smoothed


def test_the_minimum_rule_gives_an_lrmax_where_this_network_trains_well_on_the_recorded_curve():
    lrs, losses = recorded_curve()
    got = pick(lrs, losses, DEFAULTS, LRMIN_DIV)
    # measured on an H100 (shared/lr-curves/README.md): 0.005 -> 91.5%, 0.01 -> 91.2%, 0.02 -> 90.5%
    assert 3e-3 <= got.lr_max <= 1.1e-2
    # the lowest point of the curve after the skipped warm-up, found here without the rules' code
    kept = [(loss, lr) for lr, loss in list(zip(lrs, losses, strict=True))[DEFAULTS.skip_start:]]
    lowest_loss, lowest_lr = min(kept)
    assert got.loss_min_lr == lowest_lr and got.loss_min == lowest_loss
    assert got.lr_max == pytest.approx(lowest_lr / DEFAULTS.min_div)
    # LRMIN: where the loss starts to fall, two decades under LRMAX
    assert lrs[10] < got.lr_min < got.lr_max / 30
    assert not got.still_falling and got.notes == ()


def test_steepest_is_torch_lr_finders_own_suggestion_and_lies_100x_lower():
    lrs, losses = recorded_curve()
    finder = LRFinder(torch.nn.Linear(1, 1), torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1e-5),
                      torch.nn.MSELoss(), device="cpu")
    finder.history = {"lr": lrs, "loss": losses}
    fig, ax = plt.subplots()
    _, library = finder.plot(skip_start=10, skip_end=0, suggest_lr=True, ax=ax)
    plt.close(fig)
    got = pick(lrs, losses, rules(rule="steepest"), LRMIN_DIV)
    assert got.lr_max == library == pytest.approx(5.09e-5, rel=1e-2)
    assert got.suggestions["minimum"] / got.lr_max > 50


def test_fastais_valley_takes_the_middle_of_the_longest_fall():
    losses = np.array([3.0, 3.1, 2.9, 2.7, 2.5, 2.3, 2.1, 1.9, 1.7, 1.5, 2.0, 4.0])
    assert 4 <= valley_index(losses) <= 6
    lrs, curve = recorded_curve()
    # why it is not the default here
    assert pick(lrs, curve, rules(rule="valley"), LRMIN_DIV).lr_max < 1e-3


def test_every_rule_params_yaml_allows_is_implemented():
    lrs, losses = recorded_curve()
    for rule in RULES:
        for lrmin in LRMIN_RULES:
            got = pick(lrs, losses, rules(rule=rule, lrmin=lrmin), LRMIN_DIV)
            assert got.rule == rule and 0 < got.lr_min < got.lr_max


def test_divide_sets_lrmin_from_lrmax():
    lrs, losses = recorded_curve()
    got = pick(lrs, losses, rules(lrmin="divide"), 25)
    assert got.lr_min == pytest.approx(got.lr_max / 25)


def test_an_sgd_like_curve_sitting_at_higher_lrs_gives_a_higher_lrmax():
    adam = pick(*synthetic_curve(fall_at=3e-5, min_at=1e-2), DEFAULTS, LRMIN_DIV)
    sgd = pick(*synthetic_curve(fall_at=1e-2, min_at=1.0), DEFAULTS, LRMIN_DIV)
    assert 0.2 <= sgd.lr_max <= 1.0, sgd
    assert 2e-3 <= adam.lr_max <= 1e-2, adam
    assert 1e-2 <= sgd.lr_min < sgd.lr_max / 5  # the loss only starts to fall near 1e-2


def test_a_curve_that_never_turns_up_falls_back_to_the_valley_and_says_so_in_one_line():
    """The smoke run's curve: the loss still falling at the test's last LR, 1.0. The minimum rule would take
    1.0 / 2, a guess off the end of the curve (that run ended at chance); the valley reads inside it."""
    lrs, losses = synthetic_curve(fall_at=1e-4, min_at=100.0, end=1.0, diverges=False)
    got = pick(lrs, losses, DEFAULTS, LRMIN_DIV)
    trimmed_lrs, trimmed = trim(lrs, losses, DEFAULTS.skip_start, DEFAULTS.skip_end)
    assert got.still_falling and got.rule == "valley" and got.lr_max == trimmed_lrs[valley_index(trimmed)]
    assert got.lr_max < lrs[-1] / 10 and got.suggestions["minimum"] == pytest.approx(lrs[-1] / DEFAULTS.min_div)
    assert "\n" not in got.fallback and "still falling at the last LR tested (1.00e+00)" in got.fallback
    assert got.record()["fallback"] == got.fallback and got.record()["rule"] == "valley"
    for rule in ("valley", "steepest"):  # rules that read inside the curve keep their pick, with a note
        other = pick(lrs, losses, rules(rule=rule), LRMIN_DIV)
        assert other.rule == rule and other.fallback is None and "Raise lr_find.end_lr" in other.notes[0]
    turned = pick(*synthetic_curve(fall_at=3e-5, min_at=1e-2), DEFAULTS, LRMIN_DIV)
    assert turned.rule == "minimum" and turned.fallback is None


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_curve_gives_nearly_the_lrmax_of_the_clean_one(seed):
    clean = pick(*synthetic_curve(fall_at=3e-5, min_at=1e-2), DEFAULTS, LRMIN_DIV)
    noisy = pick(*synthetic_curve(fall_at=3e-5, min_at=1e-2, noise=0.3, seed=seed), DEFAULTS, LRMIN_DIV)
    assert clean.lr_max / 2 <= noisy.lr_max <= clean.lr_max * 2


def test_a_curve_that_rises_from_its_first_point_is_an_error_naming_the_fix():
    lrs = list(np.geomspace(1e-5, 10, 120))
    losses = list(2.3 + np.linspace(0, 3, 120))
    with pytest.raises(PipelineError, match="never fell.*lower lr_find.start_lr"):
        pick(lrs, losses, DEFAULTS, LRMIN_DIV)


def test_too_short_a_curve_is_an_error_naming_the_fix():
    with pytest.raises(PipelineError, match="2 usable points.*Raise lr_find.iterations"):
        pick([1e-5, 1e-4, 1e-3, 1e-2], [2.3, 2.2, 2.1, 2.0], rules(skip_start=2), LRMIN_DIV)
