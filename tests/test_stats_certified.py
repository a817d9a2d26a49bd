"""probnn.stats against certified reference values that no one here wrote.

* NIST StRD one-way ANOVA (`f_oneway`, 11 sets) and Norris (`linregress`),
  read from the copies scipy ships with its test suite
  (scipy/stats/tests/data/nist_anova, .../nist_linregress; the originals are at
  https://www.itl.nist.gov/div898/strd/).
* `pearsonr` on values around 1e-200 and 1e200, against the 80-digit mpmath
  values in scipy's test suite (scipy/stats/tests/test_stats.py,
  test_very_small_input_values and its neighbours).

How the tolerances are derived. A certified value is the exact answer for the
data written in decimal; a float64 program sees the data rounded to binary.
For each set the test computes the answer *for the data as stored* exactly
(rational arithmetic on the float64 values with `fractions.Fraction`, square
roots with 60-digit `decimal`). Its distance from the certified value is the
best any float64 program can do (the "storage error": 7e-17 for SmLs01 up to
6.7e-5 for SmLs09, where the values are 1e12 + 0.1 and each rounds by
6e-5 of the spread). probnn must then be within

    storage error + computation bound

of the certified value, and within the computation bound of the exact
stored-data answer. The computation bound is the first-order worst-case
rounding error of what probnn computes after it shifts the data by a sample
value (exact here) and rescales by a power of two (exact): sums of N terms
err by at most N * eps relative to the sum of the absolute values, so a
quantity that is a sum of N terms with cancellation factor kappa (sum of the
absolute terms over the absolute sum) gets kappa * N * eps. kappa is computed
from the data below for each quantity.
"""

import decimal
import os
from fractions import Fraction

import numpy as np
import pytest
import scipy
import scipy.stats

from probnn import stats

EPS = np.finfo(np.float64).eps
SCIPY_DATA = os.path.join(os.path.dirname(scipy.__file__), "stats", "tests", "data")
ANOVA_SETS = [
    "SiRstv",
    "SmLs01",
    "SmLs02",
    "SmLs03",
    "AtmWtAg",
    "SmLs04",
    "SmLs05",
    "SmLs06",
    "SmLs07",
    "SmLs08",
    "SmLs09",
]

decimal.getcontext().prec = 60


def _data_file(*parts):
    path = os.path.join(SCIPY_DATA, *parts)
    assert os.path.exists(path), (
        f"{path} is missing: these NIST StRD files ship with scipy's test suite (scipy >= 1.11)."
    )
    return path


def _sqrt(value):
    """The square root of a positive Fraction, to 60 significant digits."""
    value = Fraction(value)
    return Fraction((decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)).sqrt())


def _exact_f(groups):
    """The one-way ANOVA F of the float64 values, in exact rational arithmetic."""
    groups = [[Fraction(float(v)) for v in g] for g in groups]
    values = [v for g in groups for v in g]
    n, k = len(values), len(groups)
    grand = sum(values) / n
    means = [sum(g) / len(g) for g in groups]
    ssb = sum(len(g) * (m - grand) ** 2 for g, m in zip(groups, means))
    ssw = sum((v - m) ** 2 for g, m in zip(groups, means) for v in g)
    return (ssb / (k - 1)) / (ssw / (n - k))


def _f_computation_bound(groups):
    """First-order bound on probnn's relative rounding error in F, after the exact shift.

    With z = x - x[0] (exact here) every group mean and the grand mean err by
    at most N * eps * max|z|. The between sum of squares then errs by
    2 * N * eps * max|z| * sum(n_i |m_i - g|) relative to itself, the within
    sum by 2 * N * eps * max|z| * sum|z - m_i| / ssw plus N * eps for the
    summation itself. F's relative error is at most the sum of the two.
    """
    z = [np.asarray(g, np.float64) - groups[0][0] for g in groups]
    n_total = sum(len(g) for g in z)
    grand = np.concatenate(z).mean()
    means = [g.mean() for g in z]
    delta = n_total * EPS * max(np.abs(g).max() for g in z)
    ssb = sum(len(g) * (m - grand) ** 2 for g, m in zip(z, means))
    ssw = sum(((g - m) ** 2).sum() for g, m in zip(z, means))
    rel_b = 2 * delta * sum(len(g) * abs(m - grand) for g, m in zip(z, means)) / ssb
    rel_w = 2 * delta * sum(np.abs(g - m).sum() for g, m in zip(z, means)) / ssw + n_total * EPS
    return rel_b + rel_w + 4 * EPS


def _read_anova(name):
    path = _data_file("nist_anova", name + ".dat")
    with open(path) as f:
        lines = f.read().split("\n")
    certified = [line.split() for line in lines[40:48] if line.strip()]
    f_certified = Fraction(certified[0][-1])  # "Between Treatment ... F Statistic"
    treatment, response = np.loadtxt(path, skiprows=60).T
    groups = [response[treatment == t] for t in np.unique(treatment)]
    return groups, f_certified


@pytest.mark.parametrize("name", ANOVA_SETS)
def test_f_oneway_nist_anova(name):
    groups, f_certified = _read_anova(name)
    f_stored = _exact_f(groups)  # what float64 can reach
    storage_error = float(abs(f_stored - f_certified) / f_certified)
    bound = _f_computation_bound(groups)
    f = Fraction(float(stats.f_oneway(*groups).statistic))
    error_vs_stored = float(abs(f - f_stored) / f_stored)
    error_vs_certified = float(abs(f - f_certified) / f_certified)
    assert error_vs_stored <= bound, (name, error_vs_stored, bound)
    assert error_vs_certified <= storage_error + bound, (name, error_vs_certified, storage_error, bound)


NORRIS_CERTIFIED = {  # NIST StRD Norris.dat, certified regression statistics
    "slope": Fraction("1.00211681802045"),
    "intercept": Fraction("-0.262323073774029"),
    "stderr": Fraction("0.429796848199937E-03"),
    "intercept_stderr": Fraction("0.232818234301152"),
    "rsquared": Fraction("0.999993745883712"),
}


def _exact_linregress(x, y):
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    n = len(xs)
    xm, ym = sum(xs) / n, sum(ys) / n
    sxx = sum((a - xm) ** 2 for a in xs)
    syy = sum((b - ym) ** 2 for b in ys)
    sxy = sum((a - xm) * (b - ym) for a, b in zip(xs, ys))
    slope = sxy / sxx
    intercept = ym - slope * xm
    rss = sum((b - intercept - slope * a) ** 2 for a, b in zip(xs, ys))
    stderr = _sqrt(rss / (n - 2) / sxx)
    return {
        "slope": slope,
        "intercept": intercept,
        "stderr": stderr,
        "intercept_stderr": stderr * _sqrt(sxx / n + xm**2),
        "rsquared": sxy**2 / (sxx * syy),
        "kappa_intercept": (abs(ym) + abs(slope * xm)) / abs(intercept),
    }


def test_linregress_nist_norris():
    y, x = np.loadtxt(_data_file("nist_linregress", "Norris.dat"), skiprows=60).T
    exact = _exact_linregress(x, y)
    result = stats.linregress(x, y)
    ours = {
        field: Fraction(float(getattr(result, field)))
        for field in ("slope", "intercept", "stderr", "intercept_stderr")
    }
    ours["rsquared"] = Fraction(float(result.rvalue)) ** 2
    n = len(x)
    for field, certified in NORRIS_CERTIFIED.items():
        # Slope, standard errors and r**2 are ratios of sums of n products of
        # deviations (no cancellation left after the shift): kappa = 1. The
        # intercept ybar - slope * xbar cancels: kappa = (|ybar| + |slope xbar|) / |intercept|
        # (about 3.2e3 here).
        kappa = float(exact["kappa_intercept"]) if field == "intercept" else 1.0
        bound = kappa * n * EPS
        storage_error = float(abs(exact[field] - certified) / abs(certified))
        assert float(abs(ours[field] - exact[field]) / abs(exact[field])) <= bound, field
        assert float(abs(ours[field] - certified) / abs(certified)) <= storage_error + bound, field


# (x, y, r, p): inputs and 80-digit mpmath values from scipy's test suite.
PEARSONR_EXTREME = {
    "tiny_y": (
        [0.004434375, 0.004756007, 0.003911996, 0.0038005, 0.003409971],
        [2.48e-188, 7.41e-181, 4.09e-208, 2.08e-223, 2.66e-245],
        0.7272930540750450,
        0.1637805429533202,
    ),
    "large_1e90": (
        1e90 * np.array([0, 0, 0, 1, 1, 1, 1.0]),
        1e90 * np.arange(7.0),
        0.8660254037844386,
        0.011724811003954638,
    ),
    "large_1e200": (
        [2.3e200, 4.5e200, 6.7e200, 8e200],
        [1.2e199, 5.5e200, 3.3e201, 1.0e200],
        0.351312332103289,
        0.648687667896711,
    ),
}


def _exact_r(x, y):
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    n = len(xs)
    xm, ym = sum(xs) / n, sum(ys) / n
    sxy = sum((a - xm) * (b - ym) for a, b in zip(xs, ys))
    sxx, syy = sum((a - xm) ** 2 for a in xs), sum((b - ym) ** 2 for b in ys)
    return sxy / (_sqrt(sxx) * _sqrt(syy))


@pytest.mark.parametrize("case", PEARSONR_EXTREME)
def test_pearsonr_extreme_magnitudes(case):
    x, y, r_ref, p_ref = PEARSONR_EXTREME[case]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    result = stats.pearsonr(x, y)
    r, p = float(result.statistic), float(result.pvalue)
    # r of the stored data is exact up to the decimal inputs' rounding; r's
    # computation is a ratio of sums of n scaled products: n * eps relative.
    r_stored = _exact_r(x, y)
    bound_r = float(abs(r_stored - Fraction(r_ref)) / abs(Fraction(r_ref))) + 4 * n * EPS
    assert abs(r - r_ref) <= bound_r * abs(r_ref), (r, r_ref, bound_r)
    # p is a function of r alone: its relative error is the relative condition
    # number |r p'(r) / p| times r's, plus betainc's own (a few eps; allow 16).
    ab = n / 2 - 1
    density = scipy.stats.beta(ab, ab, loc=-1, scale=2).pdf(r_ref)
    condition = abs(r_ref * 2 * density / p_ref)
    assert abs(p - p_ref) <= (condition * bound_r + 16 * EPS) * p_ref, (p, p_ref)
