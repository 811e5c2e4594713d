import math

import pytest
import torch

from cifarpipe.train.one_cycle import build_scheduler, one_cycle_lr


def lrs_of_a_run(epochs=24, peak_epoch=5, steps=10, lr_max=0.02, div=100):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr_max)
    sched = build_scheduler(opt, lr_max=lr_max, lr_min=lr_max / div, epochs=epochs, peak_epoch=peak_epoch,
                            steps_per_epoch=steps)
    lrs = []
    for _ in range(epochs * steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_starts_at_lrmin_peaks_at_the_peak_epoch_ends_at_lrmin():
    lrs = lrs_of_a_run()
    assert lrs[0] == pytest.approx(0.0002)
    assert max(lrs) == pytest.approx(0.02)
    assert lrs.index(max(lrs)) == 5 * 10  # first step of epoch 6 = after 5 epochs of warm-up
    assert lrs[-1] == pytest.approx(0.0002)
    assert min(lrs) >= 0.0002 - 1e-12  # no annihilation below LRMIN


def test_rises_then_falls_monotonically():
    lrs = lrs_of_a_run()
    peak = lrs.index(max(lrs))
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1:]))


def test_one_cycle_lr_is_linear():
    """Straight lines, not cosines: at a quarter of the rise and of the fall a linear schedule has gone a
    quarter of the way, a cosine one (1 - cos(pi t)) / 2 = 14.6%; the half-way points cannot tell them apart."""
    assert one_cycle_lr(5, 21, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert one_cycle_lr(15, 21, 10, 1.0, 0.0) == pytest.approx(0.5)
    total, peak = 41, 20
    for quarter in (5, 15):  # rising: LRMIN + t (LRMAX - LRMIN), t = step / peak
        assert one_cycle_lr(quarter, total, peak, 1.0, 0.0) == pytest.approx(quarter / peak)
    for quarter in (25, 35):  # falling: LRMAX - t (LRMAX - LRMIN), t = (step - peak) / (total - 1 - peak)
        assert one_cycle_lr(quarter, total, peak, 1.0, 0.0) == pytest.approx(1 - (quarter - peak) / 20)
    cosine = (1 - math.cos(math.pi * 0.25)) / 2
    assert abs(one_cycle_lr(5, total, peak, 1.0, 0.0) - cosine) > 0.1
