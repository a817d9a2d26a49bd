"""Gradients of every probnn.stats statistic against central finite differences (float64),
and every function under tf.function(jit_compile=True) against its eager self.

Gradient check: for a random direction v and random output weights w, the
directional derivative <grad sum(w * f(x)), v> must equal
(g(x + h v) - g(x - h v)) / 2h with g = sum(w * f). With h = 1e-5 the
truncation error is O(h^2 |g'''|) ~ 1e-10 and the rounding error
O(eps |g| / h) ~ 1e-11, so rtol 1e-6 has three orders of margin and still
catches any wrong or missing gradient term (which changes the derivative by
O(1)). The data are continuous with gaps far above h, so sorting does not
change order inside the difference (the sort's sub-gradient is the gradient).
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from probnn import stats

H = 1e-5
RTOL = 1e-6


def _two(f):
    """A statistic of two samples as a function of one tensor holding both (concatenated on axis 0)."""

    def split(x, n_first):
        return f(x[:n_first], x[n_first:])

    return split


# name -> (function of x, kind of data, leading length of the first sample or None)
STATISTICS = {
    "moment3": (lambda x: stats.moment(x, 3), None),
    "skew": (lambda x: stats.skew(x, bias=False), None),
    "kurtosis": (lambda x: stats.kurtosis(x, bias=False), None),
    "describe": (lambda x: stats.describe(x, axis=1)[2:], None),
    "describe_minmax": (lambda x: stats.describe(x, axis=1).minmax, None),
    "sem": (lambda x: stats.sem(x, axis=-1), None),
    "zscore": (lambda x: stats.zscore(x, ddof=1), None),
    "variation": (lambda x: stats.variation(x + 4.0), None),
    "gmean": (lambda x: stats.gmean(tf.exp(x), weights=np.arange(1.0, 9.0)[:, None]), None),
    "hmean": (lambda x: stats.hmean(tf.exp(x)), None),
    "iqr": (lambda x: stats.iqr(x, axis=0, scale="normal"), None),
    "median": (lambda x: stats.median(x, axis=1), None),
    "quantile": (lambda x: stats.quantile(x, [0.1, 0.6, 0.9]), None),
    "norm_fit": (lambda x: stats.norm_fit(x), None),
    "ttest_1samp": (lambda x: stats.ttest_1samp(x, 0.1)[:2], None),
    "ttest_1samp_less": (lambda x: stats.ttest_1samp(x, 0.1, alternative="less")[:2], None),
    "ttest_ind": (_two(lambda a, b: stats.ttest_ind(a, b)[:2]), 5),
    "ttest_ind_welch": (
        _two(lambda a, b: stats.ttest_ind(a, b, equal_var=False, alternative="greater")[:2]),
        3,
    ),
    "ttest_rel": (_two(lambda a, b: stats.ttest_rel(a, b)[:2]), 4),
    "f_oneway": (_two(lambda a, b: stats.f_oneway(a, b, a[:3] * 2.0)), 4),
    "f_oneway_welch": (_two(lambda a, b: stats.f_oneway(a, b, a[:3] * 2.0, equal_var=False)), 4),
    "pearsonr": (_two(lambda a, b: stats.pearsonr(a, b)), 4),
    "pearsonr_greater": (_two(lambda a, b: stats.pearsonr(a, b, alternative="greater")), 4),
    "linregress": (_two(lambda a, b: stats.linregress(a, b)), 4),
    "wasserstein_distance": (_two(lambda a, b: stats.wasserstein_distance(a, b)), 3),
    "energy_distance": (_two(lambda a, b: stats.energy_distance(a, b, u_weights=tf.ones_like(a) * 2.0)), 5),
}


def _scalarise(out, weights_rng):
    """sum(w * f) over every output tensor, with fixed random weights."""
    flat = tf.nest.flatten(out)
    return tf.add_n(
        [tf.reduce_sum(tf.constant(weights_rng.uniform(0.5, 1.5, size=t.shape), t.dtype) * t) for t in flat]
    )


def test_gradients_match_central_differences(rng):
    # One test item for all statistics (the suite's per-test set-up is slow);
    # the assertion message names the statistic.
    for name in sorted(STATISTICS):
        _check_gradient(name, rng)


def _check_gradient(name, rng):
    fn, n_first = STATISTICS[name]
    x = rng.normal(size=(8, 3))
    v = rng.normal(size=(8, 3))
    call = (lambda t: fn(t, n_first)) if n_first else fn

    def g(t):
        return _scalarise(call(t), np.random.default_rng(7))

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = g(xt)
    grad = tape.gradient(value, xt)
    assert grad is not None, f"{name}: no gradient"
    assert np.all(np.isfinite(grad.numpy())), f"{name}: non-finite gradient"
    analytic = float(tf.reduce_sum(grad * v))
    numeric = float(g(tf.constant(x + H * v)) - g(tf.constant(x - H * v))) / (2 * H)
    assert np.isfinite(numeric)
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=1e-9, err_msg=name)


def test_pvalue_gradient_is_nonzero_and_points_the_right_way():
    """Pulling the two groups apart lowers the two-sided p-value."""
    a = tf.constant([0.1, 0.5, 0.9, 0.3, 0.7], tf.float64)
    b = tf.Variable([0.4, 0.8, 1.2, 0.6, 1.0], dtype=tf.float64)
    with tf.GradientTape() as tape:
        p = stats.ttest_ind(a, b).pvalue
    grad = tape.gradient(p, b)
    assert float(tf.reduce_sum(grad)) < 0  # moving b up (away from a) decreases p


@pytest.mark.integration
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=["float32", "float64"])
def test_xla_compiled_matches_eager(dtype, rng):
    """Everything compiles with XLA (no .numpy(), no py_function) and gives the eager result."""
    x = tf.constant(rng.normal(size=(9, 4)) + 2.0, dtype)
    y = tf.constant(rng.normal(size=(7, 4)), dtype)

    def everything(x, y):
        return {
            "describe": stats.describe(x, axis=0),
            "moment": stats.moment(x, 4),
            "skew": stats.skew(x, axis=1),
            "kurtosis": stats.kurtosis(x, bias=False),
            "sem": stats.sem(x),
            "zscore": stats.zscore(x),
            "variation": stats.variation(x),
            "gmean": stats.gmean(tf.abs(x)),
            "hmean": stats.hmean(tf.abs(x)),
            "iqr": stats.iqr(x, axis=0),
            "median": stats.median(x),
            "quantile": stats.quantile(x, [0.2, 0.7]),
            "ttest_1samp": stats.ttest_1samp(x, 1.0),
            "ttest_ind": stats.ttest_ind(x, y),
            "ttest_welch": stats.ttest_ind(x, y, equal_var=False),
            "ttest_rel": stats.ttest_rel(x[:7], y, alternative="less"),
            "f_oneway": stats.f_oneway(x, y, x[:4] + y[:4]),
            "f_welch": stats.f_oneway(x, y, equal_var=False),
            "pearsonr": stats.pearsonr(x[:7], y),
            "linregress": stats.linregress(x[:7], y),
            "wasserstein": stats.wasserstein_distance(x, y),
            "energy": stats.energy_distance(x, y),
            "norm_fit": stats.norm_fit(x),
        }

    eager = everything(x, y)
    compiled = tf.function(everything, jit_compile=True)(x, y)
    rtol = 1e-5 if dtype == tf.float32 else 1e-10  # same data, same dtype; only op fusion differs
    for key in eager:
        for e, c in zip(tf.nest.flatten(eager[key]), tf.nest.flatten(compiled[key])):
            if isinstance(e, int):  # describe's nobs (a Python int; tf.function returns a tensor)
                assert int(c) == e, key
                continue
            assert c.dtype == e.dtype
            np.testing.assert_allclose(c.numpy(), e.numpy(), rtol=rtol, atol=rtol, err_msg=key)


@pytest.mark.parametrize("n", [4, 50, 64, 65])
def test_median_and_iqr_network_match_numpy_with_exact_gradient_at_ties(n, rng):
    """Short samples (n <= 64) use a sorting network, longer ones tf.sort: same values, and
    the sort's gradient. With the two middle values tied, the median (their mean) is still
    differentiable: each gets 1/2 (min/max gradients would give one of them 1)."""
    x = np.round(rng.normal(size=(3, n)) * 4) / 4  # ties
    x[:, n // 2 - 1] = x[:, n // 2] = np.median(x, axis=1)  # force a tie in the middle
    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        med = stats.median(xt, axis=1)
        spread = stats.iqr(xt, axis=1)
    np.testing.assert_array_equal(med.numpy(), np.median(x, axis=1))
    np.testing.assert_allclose(spread.numpy(), scipy.stats.iqr(x, axis=1), rtol=1e-15)
    grad = tape.gradient(med, xt).numpy()
    for row, g in zip(x, grad):
        np.testing.assert_allclose(g.sum(), 1.0, rtol=1e-15)
        if n % 2 == 0:
            # the median is the mean of the two middle order statistics; tied elements share
            lo, hi = np.sort(row)[n // 2 - 1], np.sort(row)[n // 2]
            expected = 0.5 * ((row == lo) / (row == lo).sum() + (row == hi) / (row == hi).sum())
            np.testing.assert_allclose(g, expected, rtol=1e-15)
    assert np.all(np.isfinite(tape.gradient(spread, xt).numpy()))
    nan_row = tf.constant(np.where(np.arange(n) == 1, np.nan, x[0])[None])
    assert np.isnan(stats.median(nan_row, axis=1).numpy()).all()
