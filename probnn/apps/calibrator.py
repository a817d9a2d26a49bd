"""The calibration step of `probnn fit` and `probnn predict`: fitted on held-out rows, stored as JSON.

`CommandCalibrator(method)` wraps one of `probnn.calibration`'s tools, fitted
on the calibration rows (rows the network neither trained nor early-stopped
on), on the standardised target scale:

    "conformal"  normalized split conformal (`SplitConformal(score="normalized")`):
                 intervals `mean ± q·stddev`, where q is a conformal quantile of the
                 calibration scores |y - mean| / stddev. The scores are stored, so
                 `probnn predict --interval p` takes the quantile at any level p.
                 Guarantee: if calibration and new rows are exchangeable, a new
                 target falls inside the p-interval with probability at least p
                 (and below p + 1/(n + 1) for n calibration rows).
    "std"        `StdScaling` of the head's (mean, stddev), read as a Normal.
    "isotonic"   `IsotonicRecalibrator` of the head's predictive CDF.
    "none"       the network's own predictive distribution.

`to_json()` / `from_json()` keep the fitted state (scores, factor or knots) in
the model folder's `calibration.json`; reading it needs no TensorFlow.
"""

import numpy as np

from probnn.apps.choices import CALIBRATIONS as METHODS

CALIBRATION_FILE = "calibration.json"


class CommandCalibrator:
    """One calibration method of the `probnn` command, fitted on standardised targets.

    Args:
        method: one of `METHODS`.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = 2.0 * rng.normal(size=2000)
    >>> cal = CommandCalibrator("conformal").fit((np.zeros(1000), np.ones(1000)), y[:1000])
    >>> lower, upper = cal.interval((np.zeros(1000), np.ones(1000)), 0.9)
    >>> 0.87 < float(np.mean((lower <= y[1000:]) & (y[1000:] <= upper))) < 0.93
    True
    """

    def __init__(self, method="conformal"):
        if method not in METHODS:
            raise ValueError(f"CommandCalibrator: method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        self.state = {"method": method}  # the fitted state, as stored in calibration.json
        self._fitted = None

    def fit(self, dist, z):
        """Fit on the calibration rows' predictive `dist` and standardised targets `z`; returns self."""
        from probnn import calibration

        if self.method == "conformal":
            scores = np.sort(calibration.SplitConformal(score="normalized").scores(dist, z))
            self.state.update(score="normalized", scores=scores.tolist())
        elif self.method == "std":
            self.state.update(factor=calibration.StdScaling().fit(_mean_std(dist), z).factor_)
        elif self.method == "isotonic":
            fitted = calibration.IsotonicRecalibrator().fit(dist, z)
            self.state.update(knots_x=fitted.knots_x.tolist(), knots_y=fitted.knots_y.tolist())
        self._fitted = None
        return self

    def _tool(self):
        """The `probnn.calibration` object the state describes (built once; imports TensorFlow)."""
        from probnn import calibration

        if self._fitted is None and self.method == "std":
            self._fitted = calibration.StdScaling()
            self._fitted.factor_ = float(self.state["factor"])
        elif self._fitted is None and self.method == "isotonic":
            self._fitted = calibration.IsotonicRecalibrator()
            self._fitted.knots_x = np.asarray(self.state["knots_x"], dtype=np.float64)
            self._fitted.knots_y = np.asarray(self.state["knots_y"], dtype=np.float64)
        return self._fitted

    def distribution(self, dist):
        """The recalibrated predictive distribution (std, isotonic, none), or None (conformal)."""
        if self.method == "conformal":
            return None
        if self.method == "std":
            return self._tool()(_mean_std(dist))
        if self.method == "isotonic":
            return self._tool()(dist)
        return dist

    def interval(self, dist, level):
        """`(lower, upper)` NumPy arrays of the calibrated central interval of probability `level`."""
        from probnn import calibration, metrics

        if self.method == "conformal":
            conformal = calibration.SplitConformal(1.0 - level, score="normalized")
            bounds = conformal.fit_scores(self.state["scores"]).interval(dist)
        else:
            bounds = metrics.interval(self.distribution(dist), level)
        return tuple(np.asarray(b, dtype=np.float64).reshape(-1) for b in bounds)

    def to_json(self):
        """The fitted state as a JSON-serialisable dict."""
        return dict(self.state)

    @classmethod
    def from_json(cls, state):
        """The calibrator that `to_json` described; needs no TensorFlow.

        Raises ValueError for an unknown method or a record without its fitted state.
        """
        calibrator = cls(state.get("method"))
        needed = {"conformal": ("scores",), "std": ("factor",), "isotonic": ("knots_x", "knots_y")}
        missing = [key for key in needed.get(calibrator.method, ()) if key not in state]
        if missing:
            raise ValueError(f"no {missing[0]!r} entry for method {calibrator.method!r}")
        calibrator.state = dict(state)
        return calibrator


def _mean_std(dist):
    """The predictive's `(mean, stddev)`, what `StdScaling` reads as a Normal for any head."""
    from probnn import metrics

    pred, _ = metrics.as_predictive(dist, owner="probnn fit --calibration std")
    return pred.mean(), pred.stddev()
