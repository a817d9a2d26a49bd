"""`ProbabilisticRegressor`: a scikit-learn regressor that predicts a distribution."""

import numpy as np
import tensorflow_probability as tfp
from sklearn.base import RegressorMixin
from sklearn.utils import check_random_state

from probnn._validation import positive_int
from probnn.heads.names import by_name, check_head_name
from probnn.metrics import intervals
from probnn.metrics.predictive import scalar_distribution
from probnn.sklearn._base import NetworkEstimator

tfd = tfp.distributions
tfb = tfp.bijectors


class ProbabilisticRegressor(RegressorMixin, NetworkEstimator):
    """A neural network regressor with a predictive distribution, trained with `probnn.fit`.

    An MLP (ReLU layers `hidden_units`) ends in a probnn distribution head;
    training maximises the likelihood with Adam, holding out
    `validation_fraction` of the rows for early stopping (the best weights
    are kept). Inputs and target are standardised with the training
    statistics (`standardize`); every prediction is in the target's units.

    Args:
        head: the head's name, as `probnn fit --head` takes it: "normal",
            "studentt", "mixture" (3 Normal components) or "rbf-mixture".
        hidden_units: units of the hidden layers.
        members: number of networks; > 1 trains a deep ensemble
            (`probnn.Ensemble`) whose prediction is their uniform mixture.
        epochs: maximum number of epochs.
        batch_size: rows per training step.
        learning_rate: Adam's learning rate.
        validation_fraction: share of the rows held out for early stopping
            (0: no early stopping; also when it would hold out less than one row).
        patience: epochs without a better validation loss before stopping;
            None trains all `epochs`.
        standardize: standardise inputs and target with the training rows'
            mean and standard deviation (constant columns are only centred).
        build_model: None (the MLP above), or a callable
            `build_model(n_features, 1)` returning a new built Keras model that
            ends in a probnn head over one target (`head` and `hidden_units`
            are then ignored; it sees standardised inputs and targets).
        random_state: None, an int or a `np.random.RandomState`: weights,
            validation rows and shuffles; an int makes `fit` reproducible.

    Attributes:
        model_: the trained Keras model (standardised units).
        n_features_in_, feature_names_in_: as in scikit-learn.
        x_mean_, x_scale_, y_mean_, y_scale_: the standardisation.
        n_iter_: epochs trained; loss_curve_, validation_loss_curve_: per epoch.

    Example:
    >>> import numpy as np
    >>> from probnn.sklearn import ProbabilisticRegressor
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 0.3 * np.random.default_rng(1).normal(size=100)
    >>> reg = ProbabilisticRegressor(hidden_units=(8,), epochs=10, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:4], return_std=True)
    >>> mean.shape, std.shape, reg.predict_interval(X[:4], confidence=0.9).shape
    ((4,), (4,), (4, 2))
    """

    _y_numeric = True

    def __init__(
        self,
        head="normal",
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
        self.head = head
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
        return check_head_name(self.head, owner="ProbabilisticRegressor.fit")

    def _head(self, n_outputs):
        return by_name(self._head_name(), event_size=n_outputs)

    def fit(self, X, y, sample_weight=None):
        """Train on inputs `X` (n, features) and targets `y` (n,); optional row weights `sample_weight`.

        Returns:
            self.
        """
        self._check_hyperparameters()
        self._head_name()
        X, y, sample_weight = self._prepare_inputs(X, y, sample_weight)
        y = np.asarray(y, np.float64)
        self.y_mean_, self.y_scale_ = 0.0, 1.0
        if self.standardize:
            scale = float(y.std())
            self.y_mean_, self.y_scale_ = float(y.mean()), scale if scale > 0 else 1.0
        targets = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)
        return self._fit_network(X, targets, sample_weight, n_outputs=1)

    def predict_distribution(self, X):
        """The predictive distribution of the targets of `X`: a TFP distribution, batch shape (n,).

        Example:
        >>> import numpy as np
        >>> from probnn.sklearn import ProbabilisticRegressor
        >>> X, y = np.arange(40.0).reshape(20, 2), np.arange(20.0)
        >>> reg = ProbabilisticRegressor(hidden_units=(4,), epochs=2, random_state=0).fit(X, y)
        >>> reg.predict_distribution(X).batch_shape.as_list()
        [20]
        """
        dist = scalar_distribution(self._distribution(X))
        shift = np.asarray(self.y_mean_, dist.dtype.as_numpy_dtype)
        scale = np.asarray(self.y_scale_, dist.dtype.as_numpy_dtype)
        return tfd.TransformedDistribution(dist, tfb.Chain([tfb.Shift(shift), tfb.Scale(scale)]))

    def predict(self, X, return_std=False):
        """The predictive mean of the targets of `X`, shape (n,); with `return_std`, `(mean, std)`."""
        dist = self.predict_distribution(X)
        mean = np.asarray(dist.mean(), np.float64)
        if not return_std:
            return mean
        return mean, np.asarray(dist.stddev(), np.float64)

    def predict_quantiles(self, X, quantiles):
        """Predictive quantiles, shape (n, len(quantiles)) (mixtures by bisection on the CDF)."""
        levels = np.asarray(quantiles, np.float64)
        if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)):
            raise ValueError(
                "ProbabilisticRegressor.predict_quantiles: quantiles must be a 1-D "
                f"sequence of probabilities in (0, 1), got {quantiles!r}"
            )
        return np.asarray(intervals.quantile(self.predict_distribution(X), levels), np.float64).T

    def predict_interval(self, X, confidence=0.9):
        """Central predictive intervals of probability `confidence`: shape (n, 2), lower and upper."""
        if not 0 < confidence < 1:
            raise ValueError(
                f"ProbabilisticRegressor.predict_interval: confidence must be in (0, 1), got {confidence!r}"
            )
        return self.predict_quantiles(X, [(1 - confidence) / 2, (1 + confidence) / 2])

    def sample(self, X, n_samples=1, random_state=None):
        """`n_samples` draws from the predictive distribution of every row: shape (n, n_samples)."""
        positive_int("ProbabilisticRegressor.sample", "n_samples", n_samples)
        seed = int(check_random_state(random_state).randint(2**31 - 1))
        draws = self.predict_distribution(X).sample(int(n_samples), seed=seed)
        return np.asarray(draws, np.float64).T
