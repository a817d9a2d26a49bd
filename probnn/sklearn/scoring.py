"""`nll_scorer`: scikit-learn scoring by the negative log-likelihood of held-out targets."""

import numpy as np
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from probnn.metrics import scores


def nll_scorer(estimator, X, y):
    """Minus the mean negative log-likelihood of `y` (greater is better, as scikit-learn scores are).

    A scorer callable for `GridSearchCV(scoring=...)`, `cross_val_score`, etc.
    Works with a `ProbabilisticRegressor` (log density of its predictive
    distribution, in the target's units), a `ProbabilisticClassifier` (log
    probability of the true class) and a `Pipeline` ending in either.

    Example:
    >>> import numpy as np
    >>> from probnn.sklearn import ProbabilisticRegressor, nll_scorer
    >>> X, y = np.arange(40.0).reshape(20, 2), np.arange(20.0)
    >>> reg = ProbabilisticRegressor(hidden_units=(4,), epochs=2, random_state=0).fit(X, y)
    >>> bool(np.isfinite(nll_scorer(reg, X, y)))
    True
    """
    if isinstance(estimator, Pipeline):
        X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_"):
        return -float(log_loss(y, estimator.predict_proba(X), labels=estimator.classes_))
    if not hasattr(estimator, "predict_distribution"):
        raise ValueError(
            "nll_scorer: the estimator must have predict_distribution (a probnn "
            f"regressor) or predict_proba, got {type(estimator).__name__}"
        )
    y = np.asarray(y, np.float64).reshape(-1)
    return -float(scores.nll(estimator.predict_distribution(X), y))
