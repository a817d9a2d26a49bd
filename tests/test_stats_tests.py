"""probnn.stats t-tests and one-way ANOVA against scipy.stats on random batches.

Statistic, p-value and df are all compared (tolerances in stats_helpers:
float64 rtol 1e-10, float32 rtol 1e-5). The shifted samples make p-values
range from ~1 down to ~1e-6, so the tails are exercised too.
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from stats_helpers import (
    FAST,
    as_dtype,
    assert_close,
    assert_pvalue,
    f32,
    sample,
    scipy_call,
    shapes_and_axes,
    t_pvalue,
)

from probnn import stats

DTYPES = [tf.float64, tf.float32]
ALTERNATIVES = ["two-sided", "less", "greater"]


def _assert_ttest(result, expected, dtype, alternative):
    assert isinstance(result, stats.TtestResult)
    assert_close((result.statistic, result.df), (expected.statistic, expected.df), dtype)
    assert_pvalue(
        result.pvalue, expected.pvalue, dtype, lambda: t_pvalue(result.statistic, result.df, alternative)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(
    shape_axis=shapes_and_axes(min_len=2),
    seed=st.integers(0, 2**31),
    alternative=st.sampled_from(ALTERNATIVES),
    popmean=st.floats(-1.0, 1.0),
)
def test_ttest_1samp(dtype, shape_axis, seed, alternative, popmean):
    shape, axis = shape_axis
    x = sample(seed, shape)
    popmean = float(f32(popmean))
    expected = scipy.stats.ttest_1samp(x, popmean, axis=axis, alternative=alternative)
    _assert_ttest(
        stats.ttest_1samp(as_dtype(x, dtype), popmean, axis=axis, alternative=alternative),
        expected,
        dtype,
        alternative,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("equal_var", [True, False], ids=["student", "welch"])
@FAST
@given(
    shape_axis=shapes_and_axes(min_len=2),
    seed=st.integers(0, 2**31),
    alternative=st.sampled_from(ALTERNATIVES),
    extra=st.integers(-1, 5),
    shift=st.floats(0.0, 3.0),
)
def test_ttest_ind(dtype, equal_var, shape_axis, seed, alternative, extra, shift):
    shape, axis = shape_axis
    a = sample(seed, shape)
    shape_b = list(shape)
    shape_b[axis] += extra  # groups of different sizes
    b = f32(sample(seed + 1, shape_b) + shift)
    expected = scipy.stats.ttest_ind(a, b, axis=axis, equal_var=equal_var, alternative=alternative)
    result = stats.ttest_ind(
        as_dtype(a, dtype), as_dtype(b, dtype), axis=axis, equal_var=equal_var, alternative=alternative
    )
    _assert_ttest(result, expected, dtype, alternative)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(
    shape_axis=shapes_and_axes(min_len=2),
    seed=st.integers(0, 2**31),
    alternative=st.sampled_from(ALTERNATIVES),
)
def test_ttest_rel(dtype, shape_axis, seed, alternative):
    shape, axis = shape_axis
    a = sample(seed, shape)
    b = f32(a + 0.5 * sample(seed + 1, shape) + 0.4)
    expected = scipy.stats.ttest_rel(a, b, axis=axis, alternative=alternative)
    if dtype == tf.float32:
        # Any float32 implementation rounds the differences a - b to float32,
        # which is ill-conditioned when the differences vary little relative to
        # |a| (t is then huge). Compare with scipy on those same rounded
        # differences, which isolates probnn's own computation.
        d32 = (a.astype(np.float32) - b.astype(np.float32)).astype(np.float64)
        expected = scipy.stats.ttest_1samp(d32, 0.0, axis=axis, alternative=alternative)
    _assert_ttest(
        stats.ttest_rel(as_dtype(a, dtype), as_dtype(b, dtype), axis=axis, alternative=alternative),
        expected,
        dtype,
        alternative,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("equal_var", [True, False], ids=["classic", "welch"])
@FAST
@given(
    shape_axis=shapes_and_axes(min_len=2),
    seed=st.integers(0, 2**31),
    sizes=st.lists(st.integers(2, 9), min_size=2, max_size=4),
)
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
    assert_close(result.statistic, expected.statistic, dtype, "F")
    dfn, dfd = _f_degrees_of_freedom(groups, axis, equal_var)
    assert_pvalue(
        result.pvalue,
        expected.pvalue,
        dtype,
        lambda: scipy.special.fdtrc(dfn, dfd, np.float64(result.statistic)),
    )


def _f_degrees_of_freedom(groups, axis, equal_var):
    """Numerator and denominator df of the (Welch) F test, in float64 (Welch 1951, eq. 30)."""
    k = len(groups)
    n = np.array([g.shape[axis] for g in groups], dtype=np.float64)
    if equal_var:
        return k - 1.0, n.sum() - k
    n = n.reshape((-1,) + (1,) * (groups[0].ndim - 1))
    s2 = np.stack([np.var(g, axis=axis, ddof=1) for g in groups])
    w = n / s2
    lam = np.sum((1 - w / w.sum(axis=0)) ** 2 / (n - 1), axis=0)
    return k - 1.0, (k**2 - 1.0) / (3 * lam)


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
