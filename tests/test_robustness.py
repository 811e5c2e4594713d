"""Calibration and robustness, in-process: ECE against torchmetrics and against a hand computation,
temperature scaling that helps on images it was not fitted on, and the corruption accuracy of the CIFAR-10-C
convention (tests/test_corruptions.py checks the corruptions themselves)."""
import numpy as np
import pytest
import torch
from scipy.special import softmax
from torchmetrics.classification import MulticlassCalibrationError

from cifarpipe.evaluate.calibration import calibration, cross_fitted, ece, fit_temperature, nll
from cifarpipe.corrupt.names import BENCHMARK, EXTRAS, SEVERITIES
from cifarpipe.robustness.scores import Layout, robustness


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


def scores(accuracy: dict, severities):
    """robustness() on made-up logits whose accuracy per corruption and severity is `accuracy`."""
    labels = np.arange(100) % 10
    names = list(accuracy)
    logits = np.zeros((len(names), len(severities), 100, 10))
    for i, name in enumerate(names):
        for k, a in enumerate(accuracy[name]):
            right = int(round(a * 100))
            predicted = np.where(np.arange(100) < right, labels, (labels + 1) % 10)
            logits[i, k, np.arange(100), predicted] = 5.0
    layout = Layout(names, list(severities), BENCHMARK, EXTRAS, SEVERITIES)
    return robustness(logits, labels, layout, [str(c) for c in range(10)], 1.0, 15)


def test_the_corruption_accuracy_is_the_benchmarks_15_at_5_severities_with_the_extras_beside_it():
    rng = np.random.default_rng(0)
    accuracy = {name: list(rng.integers(20, 90, 5) / 100) for name in BENCHMARK + EXTRAS}
    result = scores(accuracy, range(1, 6))
    assert result["corrupt_acc"] == pytest.approx(np.mean([accuracy[n] for n in BENCHMARK]))
    assert result["extras_acc"] == pytest.approx(np.mean([accuracy[n] for n in EXTRAS]))
    assert result["corrupt_acc"] != pytest.approx(np.mean(list(accuracy.values())))  # no extras in it
    assert result["corrupt_acc_complete"] and result["extras_acc_complete"] and result["missing"] == {}


def test_a_corruption_accuracy_short_of_the_benchmark_says_what_it_lacks():
    listed = [n for n in BENCHMARK if n != "glass_blur"]
    result = scores({name: [0.5, 0.3] for name in listed}, [1, 5])
    assert result["corrupt_acc"] == pytest.approx(0.4) and not result["corrupt_acc_complete"]
    assert result["missing"]["glass_blur"] == [1, 2, 3, 4, 5] and result["missing"]["fog"] == [2, 3, 4]
    assert result["extras_acc"] is None and not result["extras_acc_complete"]
    assert set(result["missing"]) == set(BENCHMARK + EXTRAS)
    only_extras = scores({"spatter": [0.5, 0.7]}, [1, 5])
    assert only_extras["corrupt_acc"] is None and only_extras["extras_acc"] == pytest.approx(0.6)


def test_the_sets_stream_from_the_file_a_batch_at_a_time_in_order(tmp_path):
    from cifarpipe.core.artifacts import write_npz
    from cifarpipe.robustness.sets import image_batches, read_layout

    x = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 32, 32, 3), dtype=np.uint8)
    write_npz(tmp_path / "c.npz", x=x, y=np.arange(5), corruptions=np.array(["fog", "snow"]),
              severities=np.array([1, 3, 5]), benchmark=np.array(BENCHMARK), extras=np.array(EXTRAS),
              scale=np.array(SEVERITIES), fingerprint=np.array("abc"))
    for batch in (7, 30, 1000):
        got = list(image_batches(tmp_path / "c.npz", batch))
        assert [len(b) for b in got][:-1] == [batch] * (len(got) - 1) and sum(map(len, got)) == 30
        assert np.array_equal(np.concatenate(got), x.reshape(30, 32, 32, 3))
    layout, labels, fingerprint = read_layout(tmp_path / "c.npz")
    assert layout.corruptions == ["fog", "snow"] and layout.severities == [1, 3, 5] and fingerprint == "abc"
    assert list(labels) == list(range(5)) and layout.benchmark == list(BENCHMARK)


@pytest.mark.parametrize("tta_flip", [True, False])
def test_streamed_batches_score_as_the_loader_does_and_the_mirror_in_the_batch_as_a_second_pass(tta_flip):
    """fp32 on the CPU: the robustness stage's stream, the evaluate stage's loader and the two passes the
    mirror average took before give the same logits but for float rounding."""
    from cifarpipe.compute.device import resolve_compute
    from cifarpipe.data.loader import DeviceLoader
    from cifarpipe.evaluate.scoring import predict_images, predict_logits
    from cifarpipe.model.networks import build_model
    from conftest import CPU_COMPUTE, NARROW

    compute = resolve_compute(CPU_COMPUTE)
    model = build_model(NARROW, compute, seed=0).eval()
    x = np.random.default_rng(1).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    stats = {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]}
    loader = DeviceLoader(x, np.zeros(50), stats, compute, 16)
    expected, _ = predict_logits(model, loader, compute, tta_flip=tta_flip)
    streamed = predict_images(model, (x[i:i + 16] for i in range(0, 50, 16)), stats, compute,
                              tta_flip=tta_flip)
    assert streamed.shape == (50, 10)
    np.testing.assert_allclose(streamed, expected.numpy(), atol=1e-5)
    with torch.no_grad():  # the mirror as its own pass, as before
        batch = torch.cat([b for b, _ in loader])
        two_passes = (model(batch) + model(batch.flip(3))) / 2 if tta_flip else model(batch)
    np.testing.assert_allclose(expected.numpy(), two_passes.numpy(), atol=1e-5)
    assert not np.allclose(two_passes.numpy(), model(batch.flip(3)).detach().numpy(), atol=1e-3)
