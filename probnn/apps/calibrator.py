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
the model folder's `calibration.json`.
"""

import numpy as np

METHODS = ("conformal", "std", "isotonic", "none")
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
        self.tool = None

    def fit(self, dist, z):
        """Fit on the calibration rows' predictive `dist` and standardised targets `z`; returns self."""
        from probnn import calibration

        if self.method == "conformal":
            scores = calibration.SplitConformal(score="normalized").scores(dist, z)
            self.tool = np.sort(scores)
        elif self.method == "std":
            self.tool = calibration.StdScaling().fit(_mean_std(dist), z)
        elif self.method == "isotonic":
            self.tool = calibration.IsotonicRecalibrator().fit(dist, z)
        return self

    def distribution(self, dist):
        """The recalibrated predictive distribution (std, isotonic, none), or None (conformal)."""
        if self.method == "conformal":
            return None
        if self.method == "std":
            return self.tool(_mean_std(dist))
        if self.method == "isotonic":
            return self.tool(dist)
        return dist

    def interval(self, dist, level):
        """`(lower, upper)` NumPy arrays of the calibrated central interval of probability `level`."""
        from probnn import calibration, metrics

        if self.method == "conformal":
            conformal = calibration.SplitConformal(1.0 - level, score="normalized").fit_scores(self.tool)
            bounds = conformal.interval(dist)
        else:
            bounds = metrics.interval(self.distribution(dist), level)
        return tuple(np.asarray(b, dtype=np.float64).reshape(-1) for b in bounds)

    def to_json(self):
        """The fitted state as a JSON-serialisable dict."""
        state = {"method": self.method}
        if self.method == "conformal":
            state.update(score="normalized", scores=[float(s) for s in self.tool])
        elif self.method == "std":
            state.update(factor=self.tool.factor_)
        elif self.method == "isotonic":
            state.update(knots_x=self.tool.knots_x.tolist(), knots_y=self.tool.knots_y.tolist())
        return state

    @classmethod
    def from_json(cls, state):
        """The calibrator that `to_json` described (ValueError for an unknown or incomplete record)."""
        from probnn import calibration

        calibrator = cls(state.get("method"))
        if calibrator.method == "conformal":
            calibrator.tool = np.asarray(state["scores"], dtype=np.float64)
        elif calibrator.method == "std":
            calibrator.tool = calibration.StdScaling()
            calibrator.tool.factor_ = float(state["factor"])
        elif calibrator.method == "isotonic":
            calibrator.tool = calibration.IsotonicRecalibrator()
            calibrator.tool.knots_x = np.asarray(state["knots_x"], dtype=np.float64)
            calibrator.tool.knots_y = np.asarray(state["knots_y"], dtype=np.float64)
        return calibrator


def _mean_std(dist):
    """The predictive's `(mean, stddev)`, what `StdScaling` reads as a Normal for any head."""
    from probnn import metrics

    pred, _ = metrics.as_predictive(dist, owner="probnn fit --calibration std")
    return pred.mean(), pred.stddev()
