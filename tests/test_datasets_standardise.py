"""probnn.datasets.standardise: the split, the training rows' standardisation, scores in original units."""

import math

import numpy as np
import pytest

import probnn
from probnn.datasets.standardise import Standardisation, shuffled_split


def test_shuffled_split_cuts_one_permutation_in_order():
    parts = shuffled_split(40, (0.15, 0.15, 0.0, 0.15), seed=3)
    order = np.random.default_rng(3).permutation(40)
    assert [len(p) for p in parts] == [6, 6, 0, 6, 22]
    np.testing.assert_array_equal(np.concatenate(parts), order)
    assert [len(p) for p in shuffled_split(5, (0.01,), seed=0)] == [1, 4]  # a part is never empty
    with pytest.raises(ValueError, match=r"shuffled_split: fractions must be in \[0, 1\)"):
        shuffled_split(10, (0.6, 0.5), seed=0)


def test_standardisation_fits_the_training_rows_and_refuses_a_constant_target():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(3.0, 2.0, 50), np.full(50, 7.0)]
    y = rng.normal(-1.0, 4.0, 50)
    s = Standardisation.fit(x, y)
    np.testing.assert_allclose(s.x_mean, x.mean(0))
    np.testing.assert_allclose(s.x_std, [x[:, 0].std(), 1.0])  # the constant column is left unscaled
    xs, ys = s.standardise_inputs(x), s.standardise_targets(y)
    assert xs.dtype == ys.dtype == np.float32
    np.testing.assert_allclose(xs[:, 0].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(ys.std(), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="^fit: the target column 'price' is constant on the training rows$"):
        Standardisation.fit(x, np.ones(50), owner="fit", target="price")


def test_scores_are_the_standardised_report_mapped_back_to_original_units():
    rng = np.random.default_rng(1)
    y = 10.0 + 2.0 * rng.normal(size=500)
    s = Standardisation(np.zeros(1), np.ones(1), 10.0, 2.0)
    dist = (np.full(500, 0.1), np.full(500, 1.2))  # a predictive of (y - 10) / 2
    report = probnn.metrics.report(dist, (y - 10.0) / 2.0, levels=(0.5, 0.9))
    scores = s.scores(dist, y, levels=(0.5, 0.9))
    assert scores["nll"] == pytest.approx(report["nll"] + math.log(2.0))
    for key in ("rmse", "mae", "crps", "width_50", "width_90"):
        assert scores[key] == pytest.approx(2.0 * report[key]), key
    for key in ("coverage_50", "coverage_90", "miscalibration_area", "calibration_error"):
        assert scores[key] == pytest.approx(report[key]), key
    nll, rmse = s.nll_and_rmse(dist, y)
    assert nll == pytest.approx(scores["nll"], rel=1e-5) and rmse == pytest.approx(scores["rmse"], rel=1e-5)
