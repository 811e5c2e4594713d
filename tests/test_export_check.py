"""The export stage's check: on how many test images each file is compared with PyTorch, and that the
agreement measured there resolves export.min_agreement (one image in 1,000 may differ at 99.9%, two may
not)."""
import numpy as np
import pytest

from cifarpipe.core.errors import PipelineError
from cifarpipe.export.files import agreement, images_to_check, refuse_if_different
from conftest import defaults


@pytest.mark.parametrize("available, min_agreement, expected", [
    (10_000, 0.999, 1000), (1000, 0.999, 1000), (100, 0.999, 100), (10_000, 0.99, 100),
    (10_000, 0.9995, 2000), (500, 1.0, 500), (10_000, 1.0, 10_000)])
def test_a_file_is_checked_on_as_many_images_as_the_agreement_needs(available, min_agreement, expected):
    assert images_to_check(available, min_agreement) == expected


def outputs(n: int, flipped: int, rng):
    """(reference, outputs): made-up probabilities and logits that differ in the class of `flipped` images."""
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    other_logits, other_probs = logits.copy(), probs.copy()
    for i in range(flipped):  # the top two classes swap their scores
        top = np.argsort(-logits[i])[:2]
        other_logits[i, top] = other_logits[i, top[::-1]]
        other_probs[i, top] = other_probs[i, top[::-1]]
    return (probs, logits), (other_probs, other_logits)


def test_the_agreement_on_that_many_images_tells_one_difference_from_two():
    rng = np.random.default_rng(0)
    cfg = defaults("export", max_logit_diff=100.0, max_prob_diff=1.0)  # the class alone decides here
    n = images_to_check(10_000, cfg.min_agreement)
    for flipped, passes in ((0, True), (1, True), (2, False)):
        reference, other = outputs(n, flipped, rng)
        check = agreement(reference, other)
        assert check["images"] == n and check["argmax_agreement"] == pytest.approx(1 - flipped / n)
        if passes:
            refuse_if_different({"onnx": check}, cfg)
        else:
            with pytest.raises(PipelineError, match="the exported onnx model differs from PyTorch"):
                refuse_if_different({"onnx": check}, cfg)


def test_a_file_checked_on_fewer_images_is_compared_with_the_references_first_ones():
    rng = np.random.default_rng(1)
    reference, other = outputs(300, 0, rng)
    check = agreement(reference, tuple(part[:100] for part in other))
    assert check["images"] == 100 and check["max_abs_logit_diff"] == 0 and check["argmax_agreement"] == 1
    shifted = agreement(reference, tuple(part[100:200] for part in other))  # not the first ones: far apart
    assert shifted["max_abs_logit_diff"] > 0.5 and shifted["argmax_agreement"] < 0.5
