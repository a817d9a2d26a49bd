"""scipy.stats rewritten as differentiable TensorFlow ops.

Names, argument names, defaults and result fields mirror `scipy.stats`; every
function works on batches (any leading shape, any axis), in float32 and
float64, eagerly and under `tf.function(jit_compile=True)`. See docs/stats.md.
"""

from probnn.stats.correlation import LinregressResult, PearsonRResult, linregress, pearsonr
from probnn.stats.descriptive import (
    DescribeResult,
    describe,
    gmean,
    hmean,
    iqr,
    kurtosis,
    median,
    moment,
    quantile,
    sem,
    skew,
    variation,
    zscore,
)
from probnn.stats.distance import energy_distance, wasserstein_distance
from probnn.stats.fitting import NormFitResult, norm_fit
from probnn.stats.tests import F_onewayResult, TtestResult, f_oneway, ttest_1samp, ttest_ind, ttest_rel

__all__ = [
    "DescribeResult",
    "F_onewayResult",
    "LinregressResult",
    "NormFitResult",
    "PearsonRResult",
    "TtestResult",
    "describe",
    "energy_distance",
    "f_oneway",
    "gmean",
    "hmean",
    "iqr",
    "kurtosis",
    "linregress",
    "median",
    "moment",
    "norm_fit",
    "pearsonr",
    "quantile",
    "sem",
    "skew",
    "ttest_1samp",
    "ttest_ind",
    "ttest_rel",
    "variation",
    "wasserstein_distance",
    "zscore",
]
