"""`ProbabilisticClassifier`: a scikit-learn classifier with a probnn categorical head."""

import numpy as np
import tensorflow_probability as tfp
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from probnn.heads.discrete import CategoricalHead
from probnn.sklearn._base import NetworkEstimator

tfd = tfp.distributions


class ProbabilisticClassifier(ClassifierMixin, NetworkEstimator):
    """A neural network classifier trained by likelihood with `probnn.fit`.

    An MLP (ReLU layers `hidden_units`) ends in a `probnn.heads.CategoricalHead`
    over the classes of `y` (any labels: integers, strings, ...); with
    `members > 1` a deep ensemble whose probabilities are the members' mean.

    Args:
        hidden_units: units of the hidden layers.
        members: number of networks; > 1 trains a deep ensemble (`probnn.Ensemble`).
        epochs: maximum number of epochs.
        batch_size: rows per training step.
        learning_rate: Adam's learning rate.
        validation_fraction: share of the rows held out for early stopping (0: none).
        patience: epochs without a better validation loss before stopping;
            None trains all `epochs`.
        standardize: standardise the inputs with the training rows' statistics.
        build_model: None (the MLP above), or a callable
            `build_model(n_features, n_classes)` returning a new built Keras
            model ending in a `CategoricalHead(n_classes)`; the targets it
            sees are class indices `0 .. n_classes - 1` (in `classes_` order).
        random_state: None, an int or a `np.random.RandomState`.

    Attributes:
        classes_: the class labels; model_, n_iter_, loss_curve_,
        validation_loss_curve_, x_mean_, x_scale_, n_features_in_: as in
        `ProbabilisticRegressor`.

    Example:
    >>> import numpy as np
    >>> from probnn.sklearn import ProbabilisticClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    >>> clf = ProbabilisticClassifier(hidden_units=(8,), epochs=30, random_state=0).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict_proba(X[:3]).shape, clf.score(X, y) > 0.9
    (['no', 'yes'], (3, 2), True)
    """

    _y_numeric = False

    def __init__(
        self,
        hidden_units=(64, 64),
        members=1,
        epochs=500,
        batch_size=32,
        learning_rate=3e-3,
        validation_fraction=0.1,
        patience=20,
        standardize=True,
        build_model=None,
        random_state=None,
    ):
        self.hidden_units = hidden_units
        self.members = members
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.standardize = standardize
        self.build_model = build_model
        self.random_state = random_state

    def _head_name(self):
        return "categorical"

    def _head(self, n_outputs):
        return CategoricalHead(n_outputs)

    def fit(self, X, y, sample_weight=None):
        """Train on inputs `X` (n, features) and labels `y` (n,); optional row weights.

        Returns:
            self.
        """
        self._check_hyperparameters()
        X, y, sample_weight = self._prepare_inputs(X, y, sample_weight)
        check_classification_targets(y)
        self.classes_, targets = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "ProbabilisticClassifier.fit: y must hold at least 2 classes, got "
                f"1 class: {self.classes_[0]!r}"
            )
        return self._fit_network(X, targets.astype(np.int32), sample_weight, n_outputs=len(self.classes_))

    def predict_distribution(self, X):
        """The predictive distribution over class indices (in `classes_` order), batch shape (n,)."""
        return self._distribution(X)

    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), columns in `classes_` order."""
        dist = self.predict_distribution(X)
        if isinstance(dist, tfd.MixtureSameFamily):  # an ensemble: the members' mean
            weights = dist.mixture_distribution.probs_parameter()[..., None]
            probs = np.sum(weights * dist.components_distribution.probs_parameter(), axis=-2)
        else:
            probs = dist.probs_parameter()
        probs = np.asarray(probs, np.float64)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of `predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of every row, shape (n,)."""
        probs = self.predict_proba(X)
        return self.classes_[np.argmax(probs, axis=1)]
