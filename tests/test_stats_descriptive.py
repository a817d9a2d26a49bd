"""probnn.stats descriptive statistics against scipy.stats / numpy on random batches.

Tolerances: see stats_helpers (float64 rtol 1e-10, float32 rtol 1e-5).
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from stats_helpers import (
    FAST,
    as_dtype,
    assert_close,
    sample,
    scipy_call,
    shape_statistic_atol,
    shapes_and_axes,
)

from probnn import stats

DTYPES = [tf.float64, tf.float32]

# (name, probnn call, reference call, data kind); each takes (x, axis).
CASES = [
    (
        "moment2",
        lambda x, ax: stats.moment(x, 2, axis=ax),
        lambda x, ax: scipy.stats.moment(x, 2, axis=ax),
        "normal",
    ),
    (
        "moment3_center",
        lambda x, ax: stats.moment(x, 3, axis=ax, center=0.5),
        lambda x, ax: scipy.stats.moment(x, 3, axis=ax, center=0.5),
        "normal",
    ),
    ("skew", lambda x, ax: stats.skew(x, ax), lambda x, ax: scipy.stats.skew(x, ax), "normal"),
    (
        "skew_unbiased",
        lambda x, ax: stats.skew(x, ax, bias=False),
        lambda x, ax: scipy.stats.skew(x, ax, bias=False),
        "normal",
    ),
    ("kurtosis", lambda x, ax: stats.kurtosis(x, ax), lambda x, ax: scipy.stats.kurtosis(x, ax), "normal"),
    (
        "kurtosis_pearson_unbiased",
        lambda x, ax: stats.kurtosis(x, ax, fisher=False, bias=False),
        lambda x, ax: scipy.stats.kurtosis(x, ax, fisher=False, bias=False),
        "normal",
    ),
    ("sem", lambda x, ax: stats.sem(x, ax), lambda x, ax: scipy.stats.sem(x, ax), "normal"),
    (
        "sem_ddof0",
        lambda x, ax: stats.sem(x, ax, ddof=0),
        lambda x, ax: scipy.stats.sem(x, ax, ddof=0),
        "normal",
    ),
    ("zscore", lambda x, ax: stats.zscore(x, ax), lambda x, ax: scipy.stats.zscore(x, ax), "normal"),
    (
        "zscore_ddof1",
        lambda x, ax: stats.zscore(x, ax, ddof=1),
        lambda x, ax: scipy.stats.zscore(x, ax, ddof=1),
        "normal",
    ),
    (
        "variation",
        lambda x, ax: stats.variation(x, ax),
        lambda x, ax: scipy.stats.variation(x, ax),
        "positive",
    ),
    (
        "variation_ddof1",
        lambda x, ax: stats.variation(x, ax, ddof=1),
        lambda x, ax: scipy.stats.variation(x, ax, ddof=1),
        "positive",
    ),
    ("gmean", lambda x, ax: stats.gmean(x, ax), lambda x, ax: scipy.stats.gmean(x, ax), "positive"),
    ("hmean", lambda x, ax: stats.hmean(x, ax), lambda x, ax: scipy.stats.hmean(x, ax), "positive"),
    ("iqr", lambda x, ax: stats.iqr(x, ax), lambda x, ax: scipy.stats.iqr(x, ax), "normal"),
    (
        "iqr_normal_10_80",
        lambda x, ax: stats.iqr(x, ax, rng=(10, 80), scale="normal"),
        lambda x, ax: scipy.stats.iqr(x, ax, rng=(10, 80), scale="normal"),
        "normal",
    ),
    ("median", lambda x, ax: stats.median(x, ax), lambda x, ax: np.median(x, ax), "normal"),
    (
        "quantile",
        lambda x, ax: stats.quantile(x, 0.3, axis=ax),
        lambda x, ax: scipy.stats.quantile(x, 0.3, axis=ax),
        "normal",
    ),
    (
        "quantiles",
        lambda x, ax: stats.quantile(x, [0.0, 0.1, 0.5, 0.77, 1.0], axis=ax),
        lambda x, ax: np.moveaxis(np.quantile(x, [0.0, 0.1, 0.5, 0.77, 1.0], axis=ax), 0, ax),
        "normal",
    ),
    (
        "norm_fit",
        lambda x, ax: stats.norm_fit(x, ax),
        lambda x, ax: (np.mean(x, ax), np.std(x, ax)),
        "normal",
    ),
]


# Skewness / kurtosis cases: (order, bias) for their float32 tolerance (see shape_statistic_atol).
SHAPE_STATISTICS = {
    "skew": (3, True),
    "skew_unbiased": (3, False),
    "kurtosis": (4, True),
    "kurtosis_pearson_unbiased": (4, False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(shape_axis=shapes_and_axes(), seed=st.integers(0, 2**31))
def test_matches_scipy(dtype, shape_axis, seed):
    # Every case on each drawn example (one test item per dtype: the suite's
    # per-test set-up is slow); the failure message names the case.
    shape, axis = shape_axis
    for name, ours, reference, kind in CASES:
        x = sample(seed, shape, kind)
        expected = scipy_call(reference, x, axis)
        atol = (
            shape_statistic_atol(x, axis, *SHAPE_STATISTICS[name], dtype)
            if name in SHAPE_STATISTICS
            else None
        )
        assert_close(ours(as_dtype(x, dtype), axis), expected, dtype, name, atol)


def test_norm_fit_matches_scipy_norm_fit(rng):
    x = rng.normal(2.0, 3.0, size=(40, 3))
    loc, scale = stats.norm_fit(x)
    for j in range(3):
        assert_close((loc[j], scale[j]), scipy.stats.norm.fit(x[:, j]), tf.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(
    shape_axis=shapes_and_axes(),
    seed=st.integers(0, 2**31),
    ddof=st.sampled_from([0, 1, 2]),
    bias=st.booleans(),
)
def test_describe_matches_scipy(dtype, shape_axis, seed, ddof, bias):
    shape, axis = shape_axis
    x = sample(seed, shape)
    expected = scipy.stats.describe(x, axis, ddof=ddof, bias=bias)
    result = stats.describe(as_dtype(x, dtype), axis, ddof=ddof, bias=bias)
    assert isinstance(result, stats.DescribeResult)
    assert result._fields == expected._fields
    assert int(result.nobs) == expected.nobs
    assert_close(result.minmax, expected.minmax, dtype, "minmax")
    for field in ("mean", "variance"):
        assert_close(getattr(result, field), getattr(expected, field), dtype, field)
    assert_close(
        result.skewness, expected.skewness, dtype, "skewness", shape_statistic_atol(x, axis, 3, bias, dtype)
    )
    assert_close(
        result.kurtosis, expected.kurtosis, dtype, "kurtosis", shape_statistic_atol(x, axis, 4, bias, dtype)
    )


@pytest.mark.parametrize("axis", [None, 1, -2])
def test_keepdims_and_axis_none_like_scipy(rng, axis):
    x = rng.normal(size=(3, 5, 2))
    for ours, theirs in [
        (stats.skew, scipy.stats.skew),
        (stats.kurtosis, scipy.stats.kurtosis),
        (stats.variation, scipy.stats.variation),
        (stats.gmean, scipy.stats.gmean),
    ]:
        data = np.abs(x) if ours is stats.gmean else x
        assert_close(
            ours(data, axis=axis, keepdims=True),
            theirs(data, axis=axis, keepdims=True),
            tf.float64,
            ours.__name__,
        )
    assert_close(
        stats.iqr(x, axis=axis, keepdims=True),
        scipy.stats.iqr(x, axis=axis, keepdims=True),
        tf.float64,
        "iqr",
    )
    assert_close(
        stats.median(x, axis=axis, keepdims=True),
        np.median(x, axis=axis, keepdims=True),
        tf.float64,
        "median",
    )


def test_weighted_means_match_scipy(rng):
    x = rng.lognormal(size=(6, 3))
    w = rng.uniform(0.1, 2.0, size=(6, 3))
    assert_close(stats.gmean(x, weights=w), scipy.stats.gmean(x, weights=w), tf.float64)
    assert_close(stats.hmean(x, weights=w), scipy.stats.hmean(x, weights=w), tf.float64)


def test_integer_input_is_computed_in_float64_like_scipy():
    x = np.array([[1, 5, 2], [4, 4, 9], [7, 1, 3], [2, 8, 8]], dtype=np.int32)
    result = stats.describe(x)
    assert result.mean.dtype == tf.float64
    expected = scipy.stats.describe(x)
    for field in ("mean", "variance", "skewness", "kurtosis"):
        assert_close(getattr(result, field), getattr(expected, field), tf.float64, field)
    assert_close(stats.median(x), np.median(x, axis=0), tf.float64)
    assert stats.skew(np.float32([1, 2, 5])).dtype == tf.float32
