"""Holm's step-down adjustment, done by hand (holm_adjust), against statsmodels' multipletests: the pipeline
no longer imports statsmodels, and the dev lock keeps it for this cross-check."""
import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from cifarpipe.aggregate.noise import holm_adjust


@pytest.mark.parametrize("seed", range(6))
def test_holm_adjust_gives_statsmodels_adjusted_p_values_and_rejections(seed):
    rng = np.random.default_rng(seed)
    clear, unclear = int(rng.integers(1, 5)), int(rng.integers(1, 7))  # at most 10: alpha / 10 > 0.004
    p_values = [float(p) for p in rng.permutation(np.r_[rng.uniform(0, 0.004, clear),
                                                        rng.uniform(0.004, 0.9, unclear)])]
    adjusted, levels = holm_adjust(p_values, 0.05)
    rejected, expected, _, _ = multipletests(p_values, alpha=0.05, method="holm")
    assert adjusted == pytest.approx(list(expected), rel=1e-12)
    assert [p < level for p, level in zip(p_values, levels, strict=True)] == list(rejected)
    assert clear <= sum(rejected) < len(p_values) or max(p_values) < 0.05  # both kinds: the check can fail
