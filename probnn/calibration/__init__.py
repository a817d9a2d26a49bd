"""Recalibration and conformal intervals, fitted on a calibration split and applied to new predictions.

- `IsotonicRecalibrator`: isotonic recalibration of predictive CDFs (any head).
- `StdScaling`: one factor on every stddev of a Gaussian head.
- `TemperatureScaling`: one temperature on the logits of a Categorical or Bernoulli head.
- `VectorScaling`, `MatrixScaling`: an affine map of the logits of a Categorical head.
- `SplitConformal`: intervals with a finite-sample coverage guarantee on any head.
- `ConformalClassifier`: prediction sets of classes with that guarantee (LAC, APS, RAPS, top-k).

Each has `fit(dist_cal, y_cal)` (returning itself); the recalibrators are then
called on new predictions and return distributions that `probnn.metrics`
accepts; `SplitConformal.interval(dist)` returns `(lower, upper)`.
"""

from probnn.calibration.conformal import SplitConformal
from probnn.calibration.conformal_sets import ConformalClassifier
from probnn.calibration.isotonic import IsotonicRecalibrator, RecalibratedDistribution, isotonic_regression
from probnn.calibration.scaling import MatrixScaling, StdScaling, TemperatureScaling, VectorScaling

__all__ = [
    "ConformalClassifier",
    "IsotonicRecalibrator",
    "MatrixScaling",
    "RecalibratedDistribution",
    "SplitConformal",
    "StdScaling",
    "TemperatureScaling",
    "VectorScaling",
    "isotonic_regression",
]
