"""probnn.stats pearsonr, linregress, distances and norm_fit against scipy on random batches.

Tolerances in stats_helpers (float64 rtol 1e-10, float32 rtol 1e-5).
scipy's wasserstein/energy distances and norm.fit take 1-D samples, so the
batched results are compared slice by slice.
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from stats_helpers import FAST, as_dtype, assert_close, assert_pvalue, f32, sample, shapes_and_axes, t_pvalue

from probnn import stats

DTYPES = [tf.float64, tf.float32]
ALTERNATIVES = ["two-sided", "less", "greater"]


def _correlated(seed, shape, strength):
    x = sample(seed, shape)
    y = strength * x + sample(seed + 1, shape)
    return x, f32(y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(
    shape_axis=shapes_and_axes(),
    seed=st.integers(0, 2**31),
    alternative=st.sampled_from(ALTERNATIVES),
    strength=st.floats(-2.0, 2.0),
)
def test_pearsonr(dtype, shape_axis, seed, alternative, strength):
    shape, axis = shape_axis
    x, y = _correlated(seed, shape, strength)
    expected = scipy.stats.pearsonr(x, y, axis=axis, alternative=alternative)
    result = stats.pearsonr(as_dtype(x, dtype), as_dtype(y, dtype), axis=axis, alternative=alternative)
    assert result._fields == ("statistic", "pvalue")
    assert_close(result.statistic, expected.statistic, dtype, "r")
    n = x.shape[axis]
    null = scipy.stats.beta(n / 2 - 1, n / 2 - 1, loc=-1, scale=2)  # scipy's exact null of r

    def pvalue_at_our_r():
        r = np.float64(result.statistic)
        return {"less": null.cdf(r), "greater": null.sf(r), "two-sided": 2 * null.sf(np.abs(r))}[alternative]

    assert_pvalue(result.pvalue, expected.pvalue, dtype, pvalue_at_our_r)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@FAST
@given(
    shape_axis=shapes_and_axes(),
    seed=st.integers(0, 2**31),
    alternative=st.sampled_from(ALTERNATIVES),
    strength=st.floats(-2.0, 2.0),
)
def test_linregress(dtype, shape_axis, seed, alternative, strength):
    shape, axis = shape_axis
    x, y = _correlated(seed, shape, strength)
    expected = scipy.stats.linregress(x, y, alternative=alternative, axis=axis)
    result = stats.linregress(as_dtype(x, dtype), as_dtype(y, dtype), alternative=alternative, axis=axis)
    assert result._fields == ("slope", "intercept", "rvalue", "pvalue", "stderr", "intercept_stderr")
    for field in result._fields:  # scipy's result has intercept_stderr as an extra attribute
        if field != "pvalue":
            assert_close(getattr(result, field), getattr(expected, field), dtype, field)
    df = x.shape[axis] - 2.0

    def pvalue_at_our_r():  # scipy's formula for the slope's t statistic
        r = np.float64(result.rvalue)
        return t_pvalue(r * np.sqrt(df / ((1.0 - r + 1e-20) * (1.0 + r + 1e-20))), df, alternative)

    assert_pvalue(result.pvalue, expected.pvalue, dtype, pvalue_at_our_r)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["wasserstein_distance", "energy_distance"])
@FAST
@given(
    batch=st.integers(1, 3),
    n_u=st.integers(1, 9),
    n_v=st.integers(1, 9),
    seed=st.integers(0, 2**31),
    weighted=st.booleans(),
    ties=st.booleans(),
)
def test_distances(dtype, name, batch, n_u, n_v, seed, weighted, ties):
    rng = np.random.default_rng(seed)
    u = sample(seed, (batch, n_u))
    v = f32(sample(seed + 1, (batch, n_v)) + 0.5)
    if ties:  # repeated values within and across samples
        u, v = np.round(u), np.round(v)
    uw = f32(rng.uniform(0.1, 2.0, size=u.shape)) if weighted else None
    vw = f32(rng.uniform(0.1, 2.0, size=v.shape)) if weighted else None
    ours, theirs = getattr(stats, name), getattr(scipy.stats, name)

    # Samples along axis 1 (rows are a batch), and the same data along axis 0.
    def cast(w):
        return None if w is None else as_dtype(w, dtype)

    result = ours(as_dtype(u, dtype), as_dtype(v, dtype), cast(uw), cast(vw), axis=1)
    result_t = ours(
        as_dtype(u.T, dtype),
        as_dtype(v.T, dtype),
        None if uw is None else cast(uw.T),
        None if vw is None else cast(vw.T),
        axis=0,
    )
    assert result.dtype == dtype
    expected = np.array(
        [
            theirs(u[i], v[i], None if uw is None else uw[i], None if vw is None else vw[i])
            for i in range(batch)
        ]
    )
    assert_close(result, expected, dtype, name)
    assert_close(result_t, expected, dtype, name)


def test_distances_axis_none_flattens(rng):
    u, v = rng.normal(size=(3, 4)), rng.normal(size=(5, 2))
    assert_close(
        stats.wasserstein_distance(u, v, axis=None),
        scipy.stats.wasserstein_distance(u.ravel(), v.ravel()),
        tf.float64,
    )
    assert_close(
        stats.energy_distance(u, v, axis=None), scipy.stats.energy_distance(u.ravel(), v.ravel()), tf.float64
    )


def test_linregress_stderr_accurate_for_near_perfect_fits(rng):
    """The slope's standard error from summed residuals, not scipy's (1 - r**2) * ssym, which
    cancels when |r| ~ 1. Reference: the residual formula in extended precision (longdouble).
    float64, rtol 1e-10 (the direct sums are accurate to ~1e-14 here; scipy's formula is off by
    ~1e-5 relative on data like these, so this test fails for it)."""
    x = rng.normal(size=(8, 4))
    y = 1.5 * x + 1e-4 * rng.normal(size=(8, 4))
    result = stats.linregress(x, y)
    X, Y = x.astype(np.longdouble), y.astype(np.longdouble)
    xm, ym = X - X.mean(0), Y - Y.mean(0)
    sxx = (xm * xm).mean(0)
    residual = ym - (xm * ym).mean(0) / sxx * xm
    stderr = np.sqrt((residual * residual).mean(0) / sxx / (len(x) - 2))
    np.testing.assert_allclose(result.stderr, stderr.astype(np.float64), rtol=1e-10)
    intercept_stderr = stderr * np.sqrt(sxx + X.mean(0) ** 2)
    np.testing.assert_allclose(result.intercept_stderr, intercept_stderr.astype(np.float64), rtol=1e-10)
