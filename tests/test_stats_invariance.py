"""Shift-and-scale invariance of probnn.stats on extreme data (property tests).

Every statistic below is invariant to `x -> (x + shift) * scale` (scale > 0;
for pearsonr / linregress x and y may even get different transforms; the
coefficient of variation to the scale alone).
The data are drawn on a grid of 2**-20, so `x + 1e8` is exact in float64.

* **Power-of-two scales** 2**498 and 2**-498 (about 1e150 and 1e-150): the
  transformed data are exact, so the statistics must be *bit-identical* to
  those of the original sample (tolerance 0). This holds because probnn
  shifts by a sample value (`(x + 1e8) - (x0 + 1e8)` is exact, Sterbenz) and
  rescales by a power of two (exact) before any square.
* **Decimal scales** 1e150 and 1e-150: each transformed value rounds (relative
  error eps/2, i.e. about 1e8 * eps / 2 = 1.1e-8 in units of x), so the data a
  float64 program sees are not an exact transform of x. The reference is then
  scipy on the stored data mapped back exactly (rational arithmetic:
  `Fraction(stored) / scale - shift`, rounded once to float64; values of
  order 1, where scipy is accurate), at the float64 tolerance of the other
  stats tests (rtol 1e-10, stats_helpers). The change from the original
  sample is the data's rounding, not probnn's.
"""

from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from stats_helpers import FAST, assert_close, scipy_call

from probnn import stats

SHIFT = 10**8
SCALES = {
    "2**498": Fraction(2) ** 498,
    "2**-498": Fraction(2) ** -498,
    "1e150": Fraction(10) ** 150,
    "1e-150": Fraction(10) ** -150,
}


def _grid_sample(rng, shape):
    """Normal-looking data on a grid of 2**-20 (so that adding 1e8 is exact)."""
    return np.round(rng.normal(0.3, 1.0, size=shape) * 2**20) / 2**20


def _transform(x, shift, scale):
    """float64((x + shift) * scale), correctly rounded (exact for a power-of-two scale)."""
    return np.array([float((Fraction(float(v)) + shift) * scale) for v in np.ravel(x)]).reshape(np.shape(x))


def _back(y, shift, scale):
    """The exact preimage of the stored values, rounded once to float64."""
    return np.array([float(Fraction(float(v)) / scale - shift) for v in np.ravel(y)]).reshape(np.shape(y))


def _invariant_statistics(lib, x, y, groups, popmean):
    """Every scale- and shift-invariant statistic, from probnn or scipy, as a dict of arrays."""
    out = {}
    for bias in (True, False):
        out[f"skew bias={bias}"] = lib.skew(x, axis=0, bias=bias)
        out[f"kurtosis bias={bias}"] = lib.kurtosis(x, axis=0, bias=bias)
    described = lib.describe(x, axis=0)
    out["describe.skewness"], out["describe.kurtosis"] = described.skewness, described.kurtosis
    out["zscore"] = lib.zscore(x, axis=0)
    for key, res in [
        ("ttest_1samp", lib.ttest_1samp(x, popmean, axis=0)),
        ("ttest_ind", lib.ttest_ind(x, y, axis=0)),
        ("ttest_ind welch", lib.ttest_ind(x, y, axis=0, equal_var=False)),
        ("ttest_rel", lib.ttest_rel(x, y, axis=0)),
    ]:
        out[key + ".statistic"], out[key + ".pvalue"], out[key + ".df"] = res.statistic, res.pvalue, res.df
    for key, res in [
        ("f_oneway", lib.f_oneway(*groups, axis=0)),
        ("f_oneway welch", lib.f_oneway(*groups, axis=0, equal_var=False)),
    ]:
        out[key + ".statistic"], out[key + ".pvalue"] = res.statistic, res.pvalue
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def _paired_statistics(lib, x, y):
    """Statistics invariant under separate transforms of x and y (positive scales)."""
    r = lib.pearsonr(x, y, axis=0)
    reg = lib.linregress(x, y, axis=0) if lib is stats else None
    out = {"pearsonr.statistic": r.statistic, "pearsonr.pvalue": r.pvalue}
    if reg is not None:
        out["linregress.rvalue"], out["linregress.pvalue"] = reg.rvalue, reg.pvalue
    else:  # scipy's linregress is 1-D only
        regs = [scipy.stats.linregress(x[:, j], y[:, j]) for j in range(x.shape[1])]
        out["linregress.rvalue"] = [g.rvalue for g in regs]
        out["linregress.pvalue"] = [g.pvalue for g in regs]
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(4, 30),
    scale=st.sampled_from(sorted(SCALES)),
    sign=st.sampled_from([1, -1]),
)
@pytest.mark.integration
def test_shift_and_scale_leave_invariant_statistics_unchanged(seed, n, scale, sign):
    rng = np.random.default_rng(seed)
    x, y = _grid_sample(rng, (n, 3)), _grid_sample(rng, (n, 3))
    groups = [_grid_sample(rng, (m, 3)) for m in (n, n + 2, 3)]
    popmean = float(np.round(rng.normal() * 2**10) / 2**10)
    shift, factor = sign * SHIFT, SCALES[scale]
    tx, ty = _transform(x, shift, factor), _transform(y, shift, factor)
    tgroups = [_transform(g, shift, factor) for g in groups]
    tpop = float(_transform(popmean, shift, factor))
    # x and y transformed differently: shift of opposite sign, reciprocal scale.
    ty_other = _transform(y, -shift, 1 / factor)
    ours = _invariant_statistics(stats, tx, ty, tgroups, tpop)
    ours.update(_paired_statistics(stats, tx, ty_other))
    # The coefficient of variation is scale-invariant only (no shift).
    ours["variation"] = np.asarray(stats.variation(_transform(x, 0, factor), axis=0))
    if scale.startswith("2**"):  # exact transform: bit-identical results
        original = _invariant_statistics(stats, x, y, groups, popmean)
        original.update(_paired_statistics(stats, x, y))
        original["variation"] = np.asarray(stats.variation(x, axis=0))
        for key, value in original.items():
            np.testing.assert_array_equal(ours[key], value, err_msg=f"{key} (scale {scale})")
        return
    # Decimal scale: scipy on the exact preimage of the stored data.
    bx, by = _back(tx, shift, factor), _back(ty, shift, factor)
    bgroups = [_back(g, shift, factor) for g in tgroups]
    bpop = float(Fraction(tpop) / factor - shift)
    expected = scipy_call(_invariant_statistics, scipy.stats, bx, by, bgroups, bpop)
    expected.update(scipy_call(_paired_statistics, scipy.stats, bx, _back(ty_other, -shift, 1 / factor)))
    expected["variation"] = scipy.stats.variation(_back(_transform(x, 0, factor), 0, factor), axis=0)
    for key, value in expected.items():
        assert_close(ours[key], value, tf.float64, f"{key} (scale {scale})")
