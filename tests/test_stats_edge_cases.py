"""Edge cases: size-1 and constant samples give scipy's nan/inf, bad input fails clearly.

Values are compared with scipy's own output on the same input (scipy's
warnings silenced), float64, rtol 1e-10, nan == nan and inf == inf.
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from stats_helpers import assert_close, scipy_call

from probnn import stats

ONE_SAMPLE = [
    ("skew", lambda m, x: m.skew(x)),
    ("skew_unbiased", lambda m, x: m.skew(x, bias=False)),
    ("kurtosis", lambda m, x: m.kurtosis(x)),
    ("kurtosis_unbiased", lambda m, x: m.kurtosis(x, bias=False)),
    ("sem", lambda m, x: m.sem(x)),
    ("zscore", lambda m, x: m.zscore(x)),
    ("variation", lambda m, x: m.variation(x)),
    ("variation_ddof1", lambda m, x: m.variation(x, ddof=1)),
    ("describe", lambda m, x: tuple(m.describe(x))[2:]),
    ("ttest_1samp", lambda m, x: tuple(m.ttest_1samp(x, 1.0))[:2]),
    ("ttest_1samp_at_mean", lambda m, x: tuple(m.ttest_1samp(x, 2.5))[:2]),
    ("iqr", lambda m, x: m.iqr(x, axis=0)),
    ("gmean", lambda m, x: m.gmean(x)),
    ("hmean", lambda m, x: m.hmean(x)),
]

SAMPLES = {
    "size_1": np.array([[2.5, -1.0]]),
    "constant": np.full((5, 2), 2.5),
    "constant_zero": np.zeros((4, 2)),
    "two_values": np.array([[2.5, 0.0], [3.5, 0.0]]),
}


@pytest.mark.parametrize("sample_name", sorted(SAMPLES))
def test_degenerate_one_sample_like_scipy(sample_name):
    x = SAMPLES[sample_name]
    for name, call in ONE_SAMPLE:  # one test item per sample: the suite's per-test set-up is slow
        expected = scipy_call(call, scipy.stats, x)
        assert_close(call(stats, x), expected, tf.float64, f"{name} on {sample_name}")


TWO_SAMPLE = {
    "const_equal": (np.full((4, 2), 1.0), np.full((3, 2), 1.0)),
    "const_different": (np.full((4, 2), 1.0), np.full((3, 2), 2.0)),
    "size_1_and_3": (np.array([[0.5, 1.0]]), np.array([[1.0, 2.0], [2.0, 0.0], [1.5, 1.0]])),
    "size_1_and_1": (np.array([[0.5, 1.0]]), np.array([[1.0, 2.0]])),
}


@pytest.mark.parametrize("equal_var", [True, False])
def test_degenerate_ttest_ind_like_scipy(equal_var):
    for pair, (a, b) in TWO_SAMPLE.items():
        expected = scipy_call(scipy.stats.ttest_ind, a, b, equal_var=equal_var)
        result = stats.ttest_ind(a, b, equal_var=equal_var)
        assert_close(
            (result.statistic, result.pvalue), (expected.statistic, expected.pvalue), tf.float64, pair
        )


def test_degenerate_f_oneway_like_scipy():
    for pair in ("const_equal", "const_different"):
        a, b = TWO_SAMPLE[pair]
        for equal_var in (True, False):
            expected = scipy_call(scipy.stats.f_oneway, a, b, a, equal_var=equal_var)
            assert_close(
                tuple(stats.f_oneway(a, b, a, equal_var=equal_var)), tuple(expected), tf.float64, pair
            )
    # Every group of size 1: nan, as scipy; but batched (scipy returns one scalar nan).
    expected = scipy_call(scipy.stats.f_oneway, np.ones((1, 2)), np.zeros((1, 2)))
    assert np.isnan(expected.statistic) and np.isnan(expected.pvalue)
    result = stats.f_oneway(np.ones((1, 2)), np.zeros((1, 2)))
    assert result.statistic.shape == (2,) and np.all(np.isnan(np.asarray(tuple(result))))


def test_degenerate_ttest_rel_like_scipy():
    a = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    for b in (a, a + 1.0):  # all differences zero / all differences equal
        expected = scipy_call(scipy.stats.ttest_rel, a, b)
        result = stats.ttest_rel(a, b)
        assert_close((result.statistic, result.pvalue), (expected.statistic, expected.pvalue), tf.float64)


def test_degenerate_correlation_like_scipy():
    x = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 2.0]])  # second column constant
    y = np.array([[3.0, 1.0], [1.0, 0.0], [2.0, 5.0]])
    expected = scipy_call(scipy.stats.pearsonr, x, y)
    assert_close(tuple(stats.pearsonr(x, y)), (expected.statistic, expected.pvalue), tf.float64)
    expected = scipy_call(scipy.stats.pearsonr, x[:2], y[:2])  # n == 2: r = +-1, p = 1
    assert_close(tuple(stats.pearsonr(x[:2], y[:2])), (expected.statistic, expected.pvalue), tf.float64)
    for xs, ys in ((y, x), (y[:2], x[:2])):  # constant y, and n == 2
        expected = scipy_call(scipy.stats.linregress, xs, ys)
        result = stats.linregress(xs, ys)
        for field in result._fields:
            assert_close(getattr(result, field), getattr(expected, field), tf.float64, field)


def test_linregress_constant_x_gives_nan_where_scipy_raises():
    """scipy raises for identical x values; a graph op cannot, so r and p are nan (documented)."""
    x = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 2.0]])
    y = np.array([[3.0, 1.0], [1.0, 0.0], [2.0, 5.0]])
    with pytest.raises(ValueError, match="all x values are identical"):
        scipy.stats.linregress(x[:, 1], y[:, 1])
    result = stats.linregress(x, y)
    assert np.isnan(result.rvalue[1]) and np.isnan(result.pvalue[1])
    assert not np.isfinite(result.slope[1])
    expected = scipy.stats.linregress(x[:, 0], y[:, 0])
    for field in result._fields:
        assert_close(getattr(result, field)[0], getattr(expected, field), tf.float64, field)


def test_axis_out_of_range_raises_value_error_naming_the_function():
    x = np.ones((3, 4))
    calls = {
        "skew": lambda: stats.skew(x, axis=2),
        "describe": lambda: stats.describe(x, axis=-3),
        "median": lambda: stats.median(x, axis=5),
        "zscore": lambda: stats.zscore(x, axis=2),
        "ttest_1samp": lambda: stats.ttest_1samp(x, 0.0, axis=2),
        "ttest_ind": lambda: stats.ttest_ind(x, x, axis=2),
        "f_oneway": lambda: stats.f_oneway(x, x, axis=-3),
        "pearsonr": lambda: stats.pearsonr(x, x, axis=2),
        "linregress": lambda: stats.linregress(x, x, axis=2),
        "wasserstein_distance": lambda: stats.wasserstein_distance(x, x, axis=2),
        "norm_fit": lambda: stats.norm_fit(x, axis=-3),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{name}: axis -?\d+ is out of range for an input of rank 2"):
            call()


def test_bad_arguments_fail_clearly():
    a, b = np.ones((5, 2)), np.ones((4, 2))
    with pytest.raises(
        ValueError, match="ttest_rel: a and b must have the same length along axis 0; got 5 and 4"
    ):
        stats.ttest_rel(a, b)
    with pytest.raises(ValueError, match="pearsonr: x and y must have the same length"):
        stats.pearsonr(a, b)
    with pytest.raises(ValueError, match="pearsonr: x and y must have length at least 2"):
        stats.pearsonr(a[:1], a[:1])
    with pytest.raises(ValueError, match="ttest_ind: alternative must be one of"):
        stats.ttest_ind(a, b, alternative="bigger")
    with pytest.raises(ValueError, match="ttest_ind: the inputs must broadcast"):
        stats.ttest_ind(a, np.ones((4, 3)))
    with pytest.raises(ValueError, match="skew: only nan_policy='propagate'"):
        stats.skew(a, nan_policy="omit")
    with pytest.raises(ValueError, match="quantile: probabilities must be in"):
        stats.quantile(a, 1.5)
    with pytest.raises(TypeError, match="f_oneway: at least two samples"):
        stats.f_oneway(a)


def test_integer_input_cast_like_scipy():
    a = np.array([[3, 1], [4, 1], [5, 9], [2, 6]], dtype=np.int64)
    b = np.array([[5, 3], [5, 8], [9, 7]], dtype=np.int32)
    result = stats.ttest_ind(a, b)
    assert result.statistic.dtype == tf.float64
    expected = scipy.stats.ttest_ind(a, b)
    assert_close(tuple(result), (expected.statistic, expected.pvalue, expected.df), tf.float64)
    expected = scipy.stats.pearsonr(a[:3], b)
    assert_close(tuple(stats.pearsonr(a[:3], b)), (expected.statistic, expected.pvalue), tf.float64)
    # Mixed float32/float64 computes in float64; a Python scalar adapts to the array.
    assert stats.ttest_ind(np.float32(a), b.astype(np.float64)).statistic.dtype == tf.float64
    assert stats.ttest_1samp(np.float32(a), 1).statistic.dtype == tf.float32


def test_result_repr_is_compact_and_fields_stay_tensors():
    """Results print like scipy's (`TtestResult(statistic=..., ...)`), not as tf.Tensor reprs."""
    import pickle

    result = stats.ttest_1samp([1.0, 2.0, 3.0, 4.0], 0.0)
    expected = scipy.stats.ttest_1samp([1.0, 2.0, 3.0, 4.0], 0.0)
    text = repr(result)
    assert text == (
        f"TtestResult(statistic={float(result.statistic)!r}, pvalue={float(result.pvalue)!r}, df=3.0)"
    )
    assert "tf.Tensor" not in text and "numpy=" not in text
    assert isinstance(result.statistic, tf.Tensor) and isinstance(result, tuple)
    assert_close(tuple(result), (expected.statistic, expected.pvalue, expected.df), tf.float64)
    assert pickle.loads(pickle.dumps(result)) == tuple(result.__class__(*map(float, result)))
    # describe: nobs is a plain int (scipy's is an integer too), minmax a tuple.
    d = stats.describe(np.array([1.0, 2.0, 3.0, 6.0]))
    assert d.nobs == 4 and isinstance(d.nobs, int)
    assert repr(d) == (
        "DescribeResult(nobs=4, minmax=(1.0, 6.0), mean=3.0, variance=4.666666666666666, "
        "skewness=0.6872431934890912, kurtosis=-1.0)"
    )
    # Batches: shape, dtype, 7 digits, the first and last three values of long fields.
    x = np.arange(40.0).reshape(5, 8) ** 1.5
    y = np.cos(np.arange(40.0)).reshape(5, 8)
    batch = stats.pearsonr(x, y)
    assert_close(tuple(batch), tuple(scipy.stats.pearsonr(x, y)), tf.float64)
    r, p = batch.statistic.numpy(), batch.pvalue.numpy()
    shown = lambda v: ", ".join(f"{e:.7g}" for e in v)  # noqa: E731
    assert repr(batch) == (
        f"PearsonRResult(statistic=<shape=(8,) float64: [{shown(r[:3])}, ..., {shown(r[-3:])}]>, "
        f"pvalue=<shape=(8,) float64: [{shown(p[:3])}, ..., {shown(p[-3:])}]>)"
    )
    assert repr(stats.norm_fit(np.float32([[1, 2], [3, 5]]))) == (
        "NormFitResult(loc=<shape=(2,) float32: [2, 3.5]>, scale=<shape=(2,) float32: [1, 1.5]>)"
    )
    # Symbolic tensors (inside tf.function) print shape and dtype only.
    texts = []
    tf.function(lambda t: texts.append(repr(stats.norm_fit(t))) or 0.0)(tf.zeros([5, 2], tf.float64))
    assert texts == ["NormFitResult(loc=<symbolic shape=(2,) float64>, scale=<symbolic shape=(2,) float64>)"]
