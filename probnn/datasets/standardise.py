"""Regression data standardised by its training rows: the split, the scaling, and scores back in original units.

The protocol `probnn fit`, the UCI benchmark and the example scripts share:

1. `shuffled_split(n, fractions, seed)` shuffles the row indices and cuts
   them into held-out parts and the training rest;
2. `Standardisation.fit(x_train, y_train)` takes the mean and standard
   deviation of the training rows (a constant input column is left unscaled;
   a constant target is refused), and `standardise_inputs` /
   `standardise_targets` map any rows with them;
3. a network trained on the standardised scale predicts a distribution of
   `(y - y_mean) / y_std`; `Standardisation.scores` (every metric of
   `probnn.metrics.report`) and `Standardisation.nll_and_rmse` give its test
   scores in the target's original units: the NLL plus `log(y_std)` (the
   change of variables), RMSE, MAE, CRPS and interval widths times `y_std`;
   coverages and calibration errors are unchanged by an affine map.

Light to import (numpy); the scores import probnn.metrics (TensorFlow) when called.

Example:
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(100, 2)), 5.0 + 3.0 * rng.normal(size=100)
>>> test, train = shuffled_split(100, (0.2,), seed=0)
>>> scaling = Standardisation.fit(x[train], y[train])
>>> len(test), len(train), scaling.standardise_inputs(x[test]).dtype
(20, 80, dtype('float32'))
"""

import dataclasses
import math

import numpy as np

from probnn._validation import error, int_at_least


def shuffled_split(n, fractions, seed):
    """Row indices `0..n-1` shuffled by `seed` and cut: one part per fraction, in order, then the rest.

    A part whose fraction is > 0 has `max(1, round(fraction * n))` rows; a
    fraction of 0 gives an empty part. Returns `len(fractions) + 1` integer
    arrays; the last (the rest) is usually the training part.

    Example:
    >>> test, val, train = shuffled_split(20, (0.25, 0.1), seed=0)
    >>> len(test), len(val), len(train), sorted(np.concatenate([test, val, train])) == list(range(20))
    (5, 2, 13, True)
    """
    n = int_at_least("shuffled_split", "n", n, 0)
    if sum(fractions) >= 1 or any(not 0 <= f < 1 for f in fractions):
        raise error(
            "shuffled_split", f"fractions must be in [0, 1) and sum to less than 1, got {fractions!r}"
        )
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    for fraction in fractions:
        size = max(1, round(fraction * n)) if fraction > 0 else 0
        parts.append(order[start : start + size])
        start += size
    return parts + [order[start:]]


@dataclasses.dataclass(frozen=True)
class Standardisation:
    """Means and standard deviations of training inputs and target; maps rows and scores with them.

    Attributes:
        x_mean, x_std: per input column, shape `(features,)` (a constant column's std is 1).
        y_mean, y_std: of the target (floats; `y_std > 0`).
    """

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, x, y, *, owner="Standardisation.fit", target="y"):
        """The statistics of training rows `x` (n, features) and targets `y` (n,) or (n, 1).

        Raises `ValueError` "<owner>: the target column <target> is constant on the training rows".

        Example:
        >>> s = Standardisation.fit(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([0.0, 2.0]))
        >>> s.x_mean.tolist(), s.x_std.tolist(), s.y_mean, s.y_std
        ([2.0, 5.0], [1.0, 1.0], 1.0, 1.0)
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x_std = x.std(axis=0)
        y_std = float(y.std())
        if not y_std > 0:
            raise error(owner, f"the target column {target!r} is constant on the training rows")
        return cls(x.mean(axis=0), np.where(x_std > 0, x_std, 1.0), float(y.mean()), y_std)

    def standardise_inputs(self, x):
        """`(x - x_mean) / x_std` as float32."""
        return ((np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std).astype("float32")

    def standardise_targets(self, y):
        """`(y - y_mean) / y_std` as float32 (same shape as `y`)."""
        return ((np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_std).astype("float32")

    def _z(self, y):
        return (np.asarray(y, dtype=np.float64).reshape(-1) - self.y_mean) / self.y_std

    def scores(self, dist, y, *, levels=(0.9,)):
        """`probnn.metrics.report` of `dist` (a predictive of standardised targets) at targets `y`, in original units.

        Keys: "nll", "rmse", "mae", "crps", "miscalibration_area",
        "calibration_error", and "coverage_p" / "width_p" per level (p in
        percent, as `report` names them).

        Example:
        >>> y = 10.0 + 2.0 * np.random.default_rng(0).normal(size=4000)
        >>> s = Standardisation(np.zeros(1), np.ones(1), 10.0, 2.0)
        >>> m = s.scores((np.zeros(4000), np.ones(4000)), y)
        >>> round(m["nll"], 2), round(m["rmse"], 1), abs(m["coverage_90"] - 0.9) < 0.02
        (2.11, 2.0, True)
        """
        import probnn

        report = probnn.metrics.report(dist, self._z(y), levels=levels)
        scale = self.y_std
        out = {
            "nll": report["nll"] + math.log(scale),
            "rmse": report["rmse"] * scale,
            "mae": report["mae"] * scale,
            "crps": report["crps"] * scale,
        }
        for level in levels:
            name = f"{100 * level:g}".replace(".", "_")
            out[f"coverage_{name}"] = report[f"coverage_{name}"]
            out[f"width_{name}"] = report[f"width_{name}"] * scale
        out["miscalibration_area"] = report["miscalibration_area"]
        out["calibration_error"] = report["calibration_error"]
        return out

    def nll_and_rmse(self, dist, y):
        """`(NLL per point, RMSE of the predictive mean)` of `dist` at targets `y`, in original units.

        The two scores of the UCI protocol (its test log likelihood is `-nll`),
        without the rest of `scores`.

        Example:
        >>> y = 10.0 + 2.0 * np.random.default_rng(0).normal(size=4000)
        >>> s = Standardisation(np.zeros(1), np.ones(1), 10.0, 2.0)
        >>> [round(v, 2) for v in s.nll_and_rmse((np.zeros(4000), np.ones(4000)), y)]
        [2.11, 2.0]
        """
        import probnn

        z = self._z(y).astype(np.float32)
        nll = float(probnn.metrics.nll(dist, z)) + math.log(self.y_std)
        return nll, float(probnn.metrics.rmse(dist, z)) * self.y_std
