"""What the regressor and the classifier share: checks, data preparation, the network, training."""

import numbers

import keras
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from probnn._validation import int_at_least, positive_number
from probnn.ensemble import Ensemble
from probnn.heads import RBFMixtureHead
from probnn.prediction import predict_distribution
from probnn.sklearn._training import seeded, train


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class NetworkEstimator(BaseEstimator):
    """Base of the probnn estimators: a network with a probnn head, trained with `probnn.fit`.

    Subclasses define `__init__` (the scikit-learn parameters), `_head()` and
    `fit`, which calls `_fit_network`.
    """

    def _check_hyperparameters(self):
        """One clear ValueError for a bad hyperparameter, before any work."""
        owner = f"{type(self).__name__}.fit"
        units = self.hidden_units
        if not isinstance(units, (tuple, list)) or not all(_is_int(u) and u >= 1 for u in units):
            raise ValueError(f"{owner}: hidden_units must be a tuple of positive integers, got {units!r}")
        int_at_least(owner, "members", self.members, 1)
        int_at_least(owner, "epochs", self.epochs, 1)
        int_at_least(owner, "batch_size", self.batch_size, 1)
        if self.patience is not None:
            int_at_least(owner, "patience", self.patience, 0)
        positive_number(owner, "learning_rate", self.learning_rate)
        fraction = self.validation_fraction
        if not (isinstance(fraction, numbers.Real) and 0 <= fraction < 1):
            raise ValueError(f"{owner}: validation_fraction must be in [0, 1), got {fraction!r}")
        if self.build_model is not None and not callable(self.build_model):
            raise ValueError(
                f"{owner}: build_model must be None or a callable returning a "
                f"Keras model, got {self.build_model!r}"
            )

    def _prepare_inputs(self, X, y, sample_weight):
        """Validated `(X, y, sample_weight)`; sets `n_features_in_` and the input scaling."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=self._y_numeric)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.standardize:
            self.x_mean_ = X.mean(axis=0)
            scale = X.std(axis=0)
            self.x_scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.x_mean_ = np.zeros(X.shape[1])
            self.x_scale_ = np.ones(X.shape[1])
        return X, y, sample_weight

    def _network_inputs(self, X):
        return ((np.asarray(X, np.float64) - self.x_mean_) / self.x_scale_).astype(np.float32)

    def _fit_network(self, X, targets, sample_weight, n_outputs):
        """Build and train `model_` on network inputs from `X` and network `targets`."""
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        x = self._network_inputs(X)
        train_rows, val_rows = _split(len(x), self.validation_fraction, seed)
        validation = None if val_rows is None else (x[val_rows], targets[val_rows])
        weights = None if np.all(sample_weight == 1) else sample_weight[train_rows].astype(np.float32)
        data = (x[train_rows], targets[train_rows], weights, validation)
        x_adapt = x[train_rows]

        def build(member_seed=seed):
            return self._build_network(x.shape[1], n_outputs, x_adapt, member_seed)

        model = self._build_model(build, seed)
        options = dict(
            learning_rate=float(self.learning_rate),
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            patience=self.patience,
            seed=seed,
            jit_compile=_jit_compile(len(train_rows), self.epochs, self.batch_size),
        )
        key = None
        if self.build_model is None:  # the built-in MLP: one architecture per key
            key = (
                type(self).__name__,
                self._head_name(),
                tuple(self.hidden_units),
                x.shape[1],
                n_outputs,
                int(self.members),
                keras.config.floatx(),
                keras.config.dtype_policy().name,
            )
        history = train(model, data, options, key=key, build=lambda: self._build_model(build, seed))
        self.model_ = model
        self.n_iter_ = len(history.epoch)
        self.loss_curve_ = [float(v) for v in history.history["loss"]]
        self.validation_loss_curve_ = [float(v) for v in history.history.get("val_loss", [])]
        return self

    def _build_model(self, build, seed):
        """The model: `build(seed)`, or an `Ensemble` of `members` of them (seeds seed, seed+1, ...)."""
        if self.members == 1:
            return build(seed)
        seeds = iter(range(seed, seed + int(self.members)))
        return Ensemble(lambda: build(next(seeds)), members=int(self.members))

    def _build_network(self, n_features, n_outputs, x_adapt, seed):
        """One network, initialised from `seed`: `build_model(...)`, or the built-in MLP."""
        with seeded(seed):
            if self.build_model is not None:
                model = self.build_model(n_features, n_outputs)
                if not isinstance(model, keras.Model):
                    raise ValueError(
                        f"{type(self).__name__}.fit: build_model must return a "
                        f"keras.Model, got {type(model).__name__}"
                    )
                return model
            dense = [keras.layers.Dense(units, activation="relu") for units in self.hidden_units]
            head = self._head(n_outputs)
            if x_adapt is not None and isinstance(head, RBFMixtureHead):  # prototypes on the features
                features = (
                    keras.Sequential([keras.Input((n_features,)), *dense]).predict(x_adapt, verbose=0)
                    if dense
                    else x_adapt
                )
                head.adapt(features, seed=seed)
            return keras.Sequential([keras.Input((n_features,)), *dense, head])

    def _distribution(self, X):
        """The network's distribution on (checked) `X`, in the network's units."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return predict_distribution(self.model_, self._network_inputs(X))


#: Below this many planned training steps a fit runs as a plain TensorFlow graph, not XLA.
#: Measured on the default 10-64-64-Normal MLP, warm, 2 shared cores: XLA 1,500 steps/s,
#: a plain graph 420 steps/s, while XLA's compilation costs about 1.0-1.7 s more
#: (docs/design.md): XLA pays off from about 700-1,200 steps. scikit-learn's small fits
#: (estimator checks, tiny cross-validation folds) thus skip the compilation.
XLA_MIN_STEPS = 1000


def _jit_compile(n_train, epochs, batch_size):
    """`jit_compile` for `probnn.fit`: "auto" (XLA) for long fits, False for short ones."""
    steps = int(epochs) * -(-int(n_train) // int(batch_size))
    return "auto" if steps >= XLA_MIN_STEPS else False


def _split(n, fraction, seed):
    """`(train_rows, val_rows)`: `floor(fraction * n)` random rows held out, or `(all, None)`."""
    n_val = int(fraction * n)
    if n_val < 1 or n - n_val < 1:
        return np.arange(n), None
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
