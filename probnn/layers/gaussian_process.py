"""SNGP's output layer: a random-feature Gaussian process with a Laplace covariance (Liu et al. 2020)."""

import math

import keras
from keras import ops

from probnn._validation import int_at_least, positive_number


@keras.saving.register_keras_serializable(package="probnn")
class RandomFeatureGaussianProcess(keras.layers.Layer):
    """A Gaussian process output layer on random Fourier features, distance aware (SNGP).

    For hidden features h (from spectrally normalised layers, so distances in
    h follow distances in the input), the layer computes `D = num_inducing`
    random Fourier features `φ(h) = sqrt(2 / D) cos(W h / ℓ + b)` with fixed
    `W ~ N(0, 1)` and `b ~ U(0, 2π)` (Rahimi and Recht 2007), so `φ(h)·φ(h')`
    approximates the Gaussian kernel `exp(-‖h - h'‖² / (2ℓ²))`, and the
    logits `φ(h) β` with trainable `β` (the posterior mode of a GP with that
    kernel). β starts at zero, so it only grows along the features of the
    training data and the logits stay near zero (the prior mean) far from
    it; with a random start the logits far away keep the start's noise.

    Laplace covariance: while training (`call(training=True)`, under
    `probnn.fit` or `model.fit`) the layer adds `Σ φφᵀ` of every batch to
    the precision matrix `P = ridge_penalty · I + Σ φφᵀ` (a non-trainable
    variable, updated by `assign` as BatchNormalization updates its moving
    statistics, so it works inside compiled training loops). Pass the
    `CovarianceReset` callback to restart `P` at every epoch, so that it
    holds the last epoch's features as in the paper (without it `P` sums
    every epoch: the variances come out too small by about the number of
    epochs). The likelihood weight of each feature is 1 (the Gaussian
    likelihood of tf-models' SNGP; the paper's p(1 - p) for binary outputs).

    Prediction (`training=False`): the posterior variance
    `v(h) = ridge_penalty · φᵀ P⁻¹ φ` (large far from the training features)
    shrinks the logits by the mean-field approximation,
    `logits / sqrt(1 + mean_field_factor · v)` (factor π/8 for softmax,
    Lu et al. 2020): far from the data every class tends to the same logit.

    Follow it by `probnn.heads.CategoricalHead(units, kernel_initializer="identity",
    trainable=False)`, a head whose projection is the identity, so the model
    is exactly SNGP and trains with `probnn.fit` and saves like any model.

    Args:
        units: number of outputs (classes).
        num_inducing: number D of random features.
        length_scale: ℓ of the Gaussian kernel (> 0).
        ridge_penalty: prior precision of β (> 0).
        mean_field_factor: λ of the mean-field adjustment (> 0; π/8 for softmax).
        l2: L2 penalty on β, added to the model's losses.
        seed: seed of the random features.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np, probnn
    >>> gp = probnn.layers.RandomFeatureGaussianProcess(2, num_inducing=64, seed=0)
    >>> x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    >>> _ = gp(x, training=True)  # training calls accumulate the precision
    >>> far = gp(100 + x, training=False)  # far from the training features: logits shrink
    >>> bool(np.all(np.abs(far) <= np.abs(gp.logits(100 + x)) + 1e-6))
    True
    """

    def __init__(
        self,
        units,
        *,
        num_inducing=1024,
        length_scale=1.0,
        ridge_penalty=1.0,
        mean_field_factor=math.pi / 8,
        l2=1e-6,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = int_at_least(name, "units", units, 1, whole_floats=True)
        self.num_inducing = int_at_least(name, "num_inducing", num_inducing, 1, whole_floats=True)
        self.length_scale = positive_number(name, "length_scale", length_scale)
        self.ridge_penalty = positive_number(name, "ridge_penalty", ridge_penalty)
        self.mean_field_factor = positive_number(name, "mean_field_factor", mean_field_factor)
        if not float(l2) >= 0:
            raise ValueError(f"{name}: l2 must be >= 0, got {l2!r}")
        self.l2 = float(l2)
        self.seed = seed

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"{type(self).__name__}: the last (feature) dimension must be known, got {tuple(input_shape)}"
            )
        self.random_kernel = self.add_weight(
            name="random_kernel",
            shape=(features, self.num_inducing),
            trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
        )
        self.random_bias = self.add_weight(
            name="random_bias",
            shape=(self.num_inducing,),
            trainable=False,
            initializer=keras.initializers.RandomUniform(0.0, 2 * math.pi, seed=self.seed),
        )
        self.beta = self.add_weight(
            name="beta",
            shape=(self.num_inducing, self.units),
            initializer="zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
        )
        self.precision = self.add_weight(
            name="precision",
            shape=(self.num_inducing, self.num_inducing),
            trainable=False,
            initializer=keras.initializers.Identity(self.ridge_penalty),
        )

    def random_features(self, inputs):
        """`φ(h) = sqrt(2 / D) cos(W h / ℓ + b)`, shape `(..., num_inducing)`."""
        projected = ops.matmul(inputs / self.length_scale, self.random_kernel) + self.random_bias
        return math.sqrt(2.0 / self.num_inducing) * ops.cos(projected)

    def logits(self, inputs):
        """The posterior-mode logits `φ(h) β`, without the mean-field adjustment."""
        return ops.matmul(self.random_features(inputs), self.beta)

    def variance(self, inputs):
        """The posterior variance `ridge_penalty · φᵀ P⁻¹ φ` of the logits at each input."""
        phi = self.random_features(inputs)
        chol = ops.linalg.cholesky(self.precision)
        flat = ops.reshape(phi, (-1, self.num_inducing))
        solved = ops.linalg.solve_triangular(chol, ops.transpose(flat), lower=True)
        variance = self.ridge_penalty * ops.sum(ops.square(solved), axis=0)
        return ops.reshape(variance, ops.shape(phi)[:-1])

    def call(self, inputs, training=False):
        if training:
            phi = self.random_features(inputs)
            flat = ops.reshape(phi, (-1, self.num_inducing))
            self.precision.assign_add(ops.matmul(ops.transpose(flat), flat))
            return ops.matmul(phi, self.beta)
        scale = ops.sqrt(1.0 + self.mean_field_factor * self.variance(inputs))
        return self.logits(inputs) / scale[..., None]

    def reset_covariance(self):
        """Restart the precision at `ridge_penalty · I` (before the epoch that should fill it)."""
        self.precision.assign(self.ridge_penalty * ops.eye(self.num_inducing, dtype=self.precision.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_inducing=self.num_inducing,
            length_scale=self.length_scale,
            ridge_penalty=self.ridge_penalty,
            mean_field_factor=self.mean_field_factor,
            l2=self.l2,
            seed=self.seed,
        )
        return config


class CovarianceReset(keras.callbacks.Callback):
    """Restart the precision of every `RandomFeatureGaussianProcess` of the model at each epoch's start.

    So the Laplace covariance after training is that of the last epoch
    (Liu et al. 2020, Algorithm 1). Works with `probnn.fit` and `model.fit`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> model = keras.Sequential([keras.Input((2,)), probnn.layers.RandomFeatureGaussianProcess(2, num_inducing=16),
    ...     probnn.heads.CategoricalHead(2, kernel_initializer="identity", trainable=False)])
    >>> x, y = probnn.datasets.two_moons(64, seed=0)
    >>> _ = probnn.fit(model, x, y, epochs=2, batch_size=64, verbose=0, callbacks=[probnn.layers.CovarianceReset()])
    >>> trace = float(model.layers[0].precision.numpy().trace())  # 16 (ridge) + one epoch of Σ‖φ‖² (≈ 64)
    >>> 70 < trace < 90
    True
    """

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, RandomFeatureGaussianProcess):
                layer.reset_covariance()
