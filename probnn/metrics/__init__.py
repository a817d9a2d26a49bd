"""Scores and calibration diagnostics of predictive distributions.

Every metric takes the predictive distribution first and the targets second.
The predictive can be a `tfd.Distribution` (a head's, or a predictive mixture
over samples, members or posterior draws), a `(mean, stddev)` pair read as
Normals, samples of shape `(num_samples,) + y.shape`, or a recalibrated
distribution from `probnn.calibration`. Results are TF tensors (the scores are
differentiable and serve as training objectives); `report` collects them as
Python floats.

- Scores: `nll`, `crps` (its closed forms: `crps_normal`, `crps_student_t`,
  `crps_normal_mixture`, `crps_samples`), `rmse`, `mae`, `brier_score`.
- Calibration: `pit`, `calibration_curve`, `miscalibration_area`,
  `expected_calibration_error`, `reliability_bins`.
- Intervals: `quantile`, `interval`, `coverage`, `mean_interval_width`, `sharpness`.
- Quantiles (a `QuantileHead`'s or any predictive's): `pinball_loss`, `quantile_calibration`.
- Out-of-distribution scores: `max_probability`, `entropy`, `mutual_information`,
  `epistemic_variance`; detection metrics `auroc`, `aupr`, `fpr_at_tpr`.
- Selective prediction: `risk_coverage_curve`, `aurc`.
- `report(dist, y)`: all that apply, as a dict of floats.
"""

from probnn.metrics.classification import ReliabilityBins, brier_score, reliability_bins
from probnn.metrics.crps_forms import crps_normal, crps_normal_mixture, crps_samples, crps_student_t
from probnn.metrics.curves import (
    CalibrationCurve,
    area_between,
    calibration_curve,
    expected_calibration_error,
    miscalibration_area,
    pit,
)
from probnn.metrics.intervals import coverage, interval, mean_interval_width, quantile, sharpness
from probnn.metrics.ood import (
    aupr,
    auroc,
    entropy,
    epistemic_variance,
    fpr_at_tpr,
    max_probability,
    mutual_information,
)
from probnn.metrics.predictive import UnivariatePredictive, as_predictive
from probnn.metrics.quantile_scores import pinball, pinball_loss, quantile_calibration
from probnn.metrics.quantiles import bisect_quantile
from probnn.metrics.report import report
from probnn.metrics.scores import crps, mae, nll, rmse
from probnn.metrics.selective import RiskCoverage, aurc, risk_coverage_curve

__all__ = [
    "CalibrationCurve",
    "ReliabilityBins",
    "RiskCoverage",
    "UnivariatePredictive",
    "area_between",
    "aupr",
    "aurc",
    "auroc",
    "as_predictive",
    "bisect_quantile",
    "brier_score",
    "calibration_curve",
    "coverage",
    "crps",
    "crps_normal",
    "crps_normal_mixture",
    "crps_samples",
    "crps_student_t",
    "entropy",
    "epistemic_variance",
    "expected_calibration_error",
    "fpr_at_tpr",
    "interval",
    "mae",
    "max_probability",
    "mean_interval_width",
    "miscalibration_area",
    "mutual_information",
    "nll",
    "pinball",
    "pinball_loss",
    "pit",
    "quantile",
    "quantile_calibration",
    "reliability_bins",
    "report",
    "risk_coverage_curve",
    "rmse",
    "sharpness",
]
