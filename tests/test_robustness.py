"""Calibration and the corrupted test sets, in-process: ECE against torchmetrics and against a hand
computation, temperature scaling that helps on images it was not fitted on, and CIFAR-10-C-style corruptions
that keep shape and dtype, grow with severity and repeat bit for bit."""
import numpy as np
import pytest
import torch
from scipy.special import softmax
from torchmetrics.classification import MulticlassCalibrationError

from cifarpipe.calibration.scores import calibration, cross_fitted, ece, fit_temperature, nll
from cifarpipe.corrupt.corruptions import CORRUPTIONS, corrupt
from synthetic_cifar import make_images

IMAGES = make_images(40, np.random.default_rng(0))[0]


@pytest.mark.parametrize("bins", [10, 15])
def test_ece_is_torchmetrics_calibration_error_on_the_same_inputs(bins):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2000, 10)) * 3
    labels = rng.integers(0, 10, 2000)
    probs = softmax(logits, axis=1)  # no confidence sits exactly on a bin edge or at 1.0 (torchmetrics bins
    metric = MulticlassCalibrationError(num_classes=10, n_bins=bins, norm="l1")  # [lo, hi), ours (lo, hi])
    expected = float(metric(torch.from_numpy(probs), torch.from_numpy(labels)))
    assert ece(probs, labels, bins) == pytest.approx(expected, abs=1e-6)


def test_a_network_that_always_says_one_class_has_the_ece_of_its_one_bin():
    """Always class 3 with probability 0.82: every image falls in one bin, so ECE = |accuracy - 0.82|."""
    labels = np.array([3] * 30 + [1] * 70)
    probs = np.full((100, 10), 0.02)
    probs[:, 3] = 0.82
    accuracy = 30 / 100
    assert ece(probs, labels, 15) == pytest.approx(abs(accuracy - 0.82))


def overconfident(n, seed):
    """Made-up logits of a network that is right 70% of the time and says so with about 99% confidence."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    predicted = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 10, n))
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), predicted] += 8.0
    return logits, labels


def test_temperature_scaling_lowers_the_nll_on_images_it_was_not_fitted_on():
    fit_logits, fit_labels = overconfident(2000, seed=2)
    new_logits, new_labels = overconfident(2000, seed=3)
    t = fit_temperature(fit_logits, fit_labels)
    assert t > 1.5  # an over-confident network is cooled
    assert nll(new_logits, new_labels, t) < nll(new_logits, new_labels) - 0.2
    probs = softmax(new_logits, axis=1)
    assert ece(softmax(new_logits / t, axis=1), new_labels, 15) < ece(probs, new_labels, 15) / 2


def test_cross_fitting_scores_each_half_with_the_temperature_of_the_other():
    logits, labels = overconfident(1000, seed=4)
    probs = cross_fitted(logits, labels)
    even, odd = np.arange(1000)[0::2], np.arange(1000)[1::2]
    t_even, t_odd = fit_temperature(logits[even], labels[even]), fit_temperature(logits[odd], labels[odd])
    assert np.allclose(probs[odd], softmax(logits[odd] / t_even, axis=1))
    assert np.allclose(probs[even], softmax(logits[even] / t_odd, axis=1))
    result = calibration(logits, labels, 15)
    assert result.ece_calibrated < result.ece and result.nll_calibrated < result.nll
    assert result.temperature == pytest.approx(fit_temperature(logits, labels))
    assert sum(b["images"] for b in result.bins) == 1000


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_dtype_and_repeats_bit_for_bit(name):
    for severity in range(1, 6):
        a = corrupt(IMAGES, name, severity, np.random.default_rng([0, severity]))
        b = corrupt(IMAGES, name, severity, np.random.default_rng([0, severity]))
        assert a.shape == IMAGES.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)


def distortion(name, severity):
    out = corrupt(IMAGES, name, severity, np.random.default_rng([7, severity]))
    return float(((out.astype(float) - IMAGES) ** 2).mean())


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n != "saturate"])
def test_the_distortion_grows_with_the_severity(name):
    d = [distortion(name, s) for s in range(1, 6)]
    assert d[0] > 0 and all(a < b for a, b in zip(d, d[1:])), d


def test_saturate_grows_in_each_of_its_two_directions():
    """The original's saturate desaturates at severities 1 and 2 (x0.3, x0.1) and oversaturates at 3 to 5, so
    its distortion grows within each direction, not across them."""
    d = [distortion("saturate", s) for s in range(1, 6)]
    assert d[0] < d[1] and d[2] < d[3] < d[4], d
