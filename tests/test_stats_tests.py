"""probnn.stats t-tests and one-way ANOVA against scipy.stats on random batches.

Statistic, p-value and df are all compared (tolerances in stats_helpers:
float64 rtol 1e-10, float32 rtol 1e-5). The shifted samples make p-values
range from ~1 down to ~1e-6, so the tails are exercised too.
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from probnn import stats
from stats_helpers import FAST, as_dtype, assert_close, sample, scipy_call, shapes_and_axes

DTYPES = [tf.float64, tf.float32]
ALTERNATIVES = ["two-sided", "less", "greater"]


def _assert_ttest(result, expected, dtype):
    assert isinstance(result, stats.TtestResult)
    assert_close((result.statistic, result.pvalue, result.df),
                 (expected.statistic, expected.pvalue, expected.df), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(shape_axis=shapes_and_axes(min_len=2), seed=st.integers(0, 2**31),
       alternative=st.sampled_from(ALTERNATIVES), popmean=st.floats(-1.0, 1.0))
def test_ttest_1samp(dtype, shape_axis, seed, alternative, popmean):
    shape, axis = shape_axis
    x = sample(seed, shape)
    expected = scipy.stats.ttest_1samp(x, popmean, axis=axis, alternative=alternative)
    _assert_ttest(stats.ttest_1samp(as_dtype(x, dtype), popmean, axis=axis,
                                    alternative=alternative), expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("equal_var", [True, False], ids=["student", "welch"])
@FAST
@given(shape_axis=shapes_and_axes(min_len=2), seed=st.integers(0, 2**31),
       alternative=st.sampled_from(ALTERNATIVES), extra=st.integers(-1, 5),
       shift=st.floats(0.0, 3.0))
def test_ttest_ind(dtype, equal_var, shape_axis, seed, alternative, extra, shift):
    shape, axis = shape_axis
    a = sample(seed, shape)
    shape_b = list(shape)
    shape_b[axis] += extra  # groups of different sizes
    b = sample(seed + 1, shape_b) + shift
    expected = scipy.stats.ttest_ind(a, b, axis=axis, equal_var=equal_var, alternative=alternative)
    result = stats.ttest_ind(as_dtype(a, dtype), as_dtype(b, dtype), axis=axis,
                             equal_var=equal_var, alternative=alternative)
    _assert_ttest(result, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(shape_axis=shapes_and_axes(min_len=2), seed=st.integers(0, 2**31),
       alternative=st.sampled_from(ALTERNATIVES))
def test_ttest_rel(dtype, shape_axis, seed, alternative):
    shape, axis = shape_axis
    a = sample(seed, shape)
    b = a + 0.5 * sample(seed + 1, shape) + 0.4
    expected = scipy.stats.ttest_rel(a, b, axis=axis, alternative=alternative)
    _assert_ttest(stats.ttest_rel(as_dtype(a, dtype), as_dtype(b, dtype), axis=axis,
                                  alternative=alternative), expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("equal_var", [True, False], ids=["classic", "welch"])
@FAST
@given(shape_axis=shapes_and_axes(min_len=2), seed=st.integers(0, 2**31),
       sizes=st.lists(st.integers(2, 9), min_size=2, max_size=4))
def test_f_oneway(dtype, equal_var, shape_axis, seed, sizes):
    shape, axis = shape_axis
    groups = []
    for i, size in enumerate(sizes):
        group_shape = list(shape)
        group_shape[axis] = size
        groups.append(sample(seed + i, group_shape) + 0.5 * i)
    expected = scipy.stats.f_oneway(*groups, axis=axis, equal_var=equal_var)
    result = stats.f_oneway(*(as_dtype(g, dtype) for g in groups), axis=axis, equal_var=equal_var)
    assert isinstance(result, stats.F_onewayResult)
    assert_close(tuple(result), tuple(expected), dtype)


def test_tail_pvalues_stay_accurate():
    """p-values far in the tail: two-sided p = 2 cdf(-|t|), never 1 - cdf (which would give 0)."""
    a = np.linspace(0.0, 1.0, 30)
    b = a + 3.0
    expected = scipy.stats.ttest_ind(a, b)
    result = stats.ttest_ind(a, b)
    assert expected.pvalue < 1e-30
    assert_close(result.pvalue, expected.pvalue, tf.float64)
    expected = scipy.stats.ttest_ind(a, b, alternative="greater")  # p close to 1
    assert_close(stats.ttest_ind(a, b, alternative="greater").pvalue, expected.pvalue, tf.float64)
    expected = scipy_call(scipy.stats.f_oneway, a, b, a + 1.0)
    assert expected.pvalue < 1e-30
    assert_close(tuple(stats.f_oneway(a, b, a + 1.0)), tuple(expected), tf.float64)
