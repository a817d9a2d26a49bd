"""probnn in scikit-learn: probabilistic regressor and classifier estimators.

`ProbabilisticRegressor` and `ProbabilisticClassifier` train an MLP with a
probnn distribution head (or your own Keras model) with `probnn.fit` and
predict through `probnn.predict_distribution`; they pass scikit-learn's
`check_estimator` and work in pipelines, grid searches, cross-validation and
MAPIE. `nll_scorer` scores them by their negative log-likelihood.

Needs scikit-learn, an optional extra: `pip install "probnn[sklearn]"`.
`import probnn` never imports this module.
"""

try:
    import sklearn  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'probnn.sklearn needs scikit-learn, which is not installed: pip install "probnn[sklearn]"'
    ) from error

from probnn.sklearn.classifier import ProbabilisticClassifier
from probnn.sklearn.regressor import ProbabilisticRegressor
from probnn.sklearn.scoring import nll_scorer

_SAMPLE_WEIGHT_REASON = (
    "a network trained by mini-batch gradient descent on shuffled rows sees a row of weight 2 "
    "once per epoch with a doubled gradient, not twice in two batches, and early stopping holds "
    "out other rows: the two fits agree in distribution, not to rtol=1e-7"
)

#: Checks of `sklearn.utils.estimator_checks` that cannot apply to these estimators, with the
#: reason; pass `EXPECTED_FAILED_CHECKS[type(est).__name__]` as `expected_failed_checks`.
EXPECTED_FAILED_CHECKS = {
    "ProbabilisticRegressor": {
        "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_REASON,
    },
    "ProbabilisticClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_REASON,
    },
}

__all__ = ["EXPECTED_FAILED_CHECKS", "ProbabilisticClassifier", "ProbabilisticRegressor", "nll_scorer"]
