"""Shared pieces of the probnn.stats tests: data strategies, tolerances, a scipy caller.

Tolerances (relative, with a small absolute floor for values that are zero
up to rounding, such as the mean of centred data):

* float64: rtol 1e-10. Both implementations sum at most a few hundred terms
  of order one; their rounding errors are ~1e-14 relative, so 1e-10 is
  loose enough for different summation orders and tight enough to catch
  any formula difference (a wrong ddof or a missing correction changes the
  result by > 1e-3).
* float32: probnn computes in float32 and is compared with scipy's float64
  answer on the same (float32-representable) data, so the whole difference
  is probnn's float32 rounding: rtol 1e-5 (about 100 ulp, room for the
  cancellation in fourth central moments of ~50 values).
"""

import warnings

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

RTOL = {tf.float64: 1e-10, tf.float32: 1e-5}
ATOL = {tf.float64: 1e-12, tf.float32: 1e-6}

# Hypothesis: the number of examples, derandomisation (replayable runs) and the
# example database come from the profile loaded in tests/conftest.py ("ci":
# 40 fixed examples per test; "explore": 500 random ones). Here only what every
# profile needs: no deadline (TF's first call of an op is slow).
FAST = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def shapes_and_axes(draw, min_len=3, max_rank=3):
    """A shape of rank 1..max_rank (sample axis length >= min_len) and an axis, possibly negative."""
    ndim = draw(st.integers(1, max_rank))
    shape = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape[axis] = draw(st.integers(min_len, 12))
    return tuple(shape), axis


def sample(seed, shape, kind="normal"):
    """Random float64 data, exactly representable in float32 (so both dtypes see the same data)."""
    rng = np.random.default_rng(seed)
    if kind == "positive":
        x = rng.lognormal(size=shape)
    else:
        x = rng.normal(loc=0.3, size=shape) * rng.uniform(0.5, 2.0)
    return f32(x)


def f32(x):
    """Round to the nearest float32 value (kept as float64), so both dtypes see the same data."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def scipy_call(fn, *args, **kwargs):
    """Call scipy with its warnings silenced (constant input, small samples...)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_close(actual, expected, dtype, msg="", atol=None):
    """Compare a probnn result (tensor or tuple of them) with scipy's, nan == nan, inf == inf."""
    if isinstance(expected, tuple):
        assert len(actual) >= len(expected), msg
        for a, e in zip(actual, expected):
            assert_close(a, e, dtype, msg, atol)
        return
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{msg}: shape {actual.shape} != {expected.shape}"
    if atol is None or np.ndim(atol) == 0:
        np.testing.assert_allclose(
            actual,
            expected,
            rtol=RTOL[dtype],
            atol=ATOL[dtype] if atol is None else atol,
            equal_nan=True,
            err_msg=msg,
        )
        return
    # Elementwise absolute tolerance (assert_allclose takes a scalar only).
    atol = np.broadcast_to(atol, expected.shape)
    with np.errstate(invalid="ignore"):
        ok = (
            (np.isnan(actual) & np.isnan(expected))
            | (np.isinf(expected) & (actual == expected))
            | (np.abs(actual - expected) <= atol + RTOL[dtype] * np.abs(expected))
        )
    assert ok.all(), (
        f"{msg}: actual {actual[~ok]} != expected {expected[~ok]} (atol {atol[~ok]}, rtol {RTOL[dtype]})"
    )


def shape_statistic_atol(x, axis, order, bias, dtype):
    """Absolute tolerance for skewness (order 3) / kurtosis (order 4) in float32.

    These are differences of larger terms: m3 = mean(d**3) sums terms of size
    mean(|d|**3); excess kurtosis is m4/m2**2 - 3; the small-sample
    corrections multiply by up to (n**2 - 1)/((n-2)(n-3)) before subtracting.
    float32 rounding is relative to those terms, not to the (possibly ~0)
    result, so the float32 tolerance is RTOL times the size of the terms:
    mean(|d|**order) / m2**(order/2), times the correction factor when
    bias=False. float64: the usual ATOL.
    """
    if dtype != tf.float32:
        return ATOL[dtype]
    x = np.asarray(x, np.float64)
    n = x.shape[axis]
    d = x - x.mean(axis=axis, keepdims=True)
    m2 = (d**2).mean(axis=axis)
    with np.errstate(all="ignore"):
        size = np.abs(d**order).mean(axis=axis) / m2 ** (order / 2)
    factor = 1.0
    if not bias and order == 3 and n > 2:
        factor = np.sqrt((n - 1.0) * n) / (n - 2.0)
    if not bias and order == 4 and n > 3:
        factor = (n**2 - 1.0) / ((n - 2.0) * (n - 3.0))
    return np.maximum(RTOL[dtype] * factor * np.maximum(size, 3.0 if order == 4 else 1.0), ATOL[dtype])


def as_dtype(x, dtype):
    return tf.constant(x, dtype=dtype)


def assert_pvalue(pvalue, expected, dtype, pvalue_at_our_statistic, msg="pvalue"):
    """Compare a p-value with scipy's.

    float64: with scipy's p-value directly. float32: a p-value is a steep
    function of its statistic (relative condition number up to ~t**2, and
    unbounded for an F statistic near 0 with one numerator degree of
    freedom), so the float32 rounding of the *statistic* alone can move p by
    far more than 1e-5 relative. The statistic is checked against scipy's
    separately; here the float32 p-value is checked (rtol 1e-5) against the
    float64 p-value that scipy computes *at probnn's float32 statistic*,
    which isolates the accuracy of probnn's p-value computation.
    """
    if dtype == tf.float32:
        expected = pvalue_at_our_statistic()
    assert_close(pvalue, expected, dtype, msg)


def t_pvalue(t, df, alternative):
    """scipy's p-value of a t statistic, in float64."""
    import scipy.stats

    t, df = np.asarray(t, np.float64), np.asarray(df, np.float64)
    dist = scipy.stats.t(df)
    if alternative == "less":
        return dist.cdf(t)
    if alternative == "greater":
        return dist.sf(t)
    return 2 * dist.sf(np.abs(t))
