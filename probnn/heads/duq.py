"""Deterministic uncertainty quantification (van Amersfoort et al. 2020): a classifier of RBF kernels."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import int_at_least, positive_number
from probnn.heads.base import DistributionHead

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="probnn")
class DUQHead(DistributionHead):
    """One RBF kernel per class around a centroid moved by exponential moving average (DUQ).

    For features h, class c has an embedding `e_c = W_c h` (the head's affine
    projection, `centroid_size` values per class) and a centroid `μ_c`; its
    kernel value is `K_c = exp(-mean((e_c - μ_c)²) / (2σ²))` with σ =
    `length_scale`, in (0, 1]: near 1 close to the class centroid, near 0
    far from every centroid (the certainty DUQ reports). The distribution
    is one-vs-all, `Independent(Bernoulli(K_c))` over the one-hot label, so
    the negative log likelihood of a label is the paper's binary cross
    entropy `-Σ_c [y_c log K_c + (1 - y_c) log(1 - K_c)]`;
    `probnn.metrics.max_probability` of it is `max_c K_c`, the OOD score.
    Targets are integer class labels (shape `batch` or `batch + (1,)`), so
    `event_shape` is `()`.

    Centroids (not trained by gradient): the head keeps `N_c` and `m_c`
    (non-trainable variables, saved with the model) and `μ_c = m_c / N_c`,
    with `N_c ← γ N_c + (1 - γ) n_c` and `m_c ← γ m_c + (1 - γ) Σ_{i: y_i = c} e_c(x_i)`
    after every training batch (γ = `gamma`; `N_c` starts at 13 and `m_c`
    at `N_c` times N(0, 0.05²) draws, as in the authors' code). The update
    needs the labels, so it happens in the likelihood: the head emits the
    embeddings after the C log kernels, and `log_prob` updates the
    variables when the last call of the head was a training call
    (`probnn.fit` and `model.fit`, never on validation or prediction). The
    authors update with the embeddings after the optimiser step, this head
    with those of the step (as BatchNormalization's moving statistics).

    Gradient penalty: with `gradient_penalty = λ > 0`, each training call
    adds `λ mean((‖∇_x Σ_c K_c‖ - 1)²)` to the model's losses (two-sided, as
    in the paper), the gradient taken with respect to the head's input x.
    For the paper's penalty on the network's input, pass the network as
    `feature_extractor`: the head then applies it to its input first (and
    the head is the whole model).

    Args:
        num_classes: number of classes C (>= 2).
        centroid_size: embedding size per class (>= 1).
        length_scale: σ of the kernels (> 0; the paper's 0.1).
        gamma: EMA factor in (0, 1) (the paper's 0.999).
        gradient_penalty: λ >= 0 (the paper's 0.5 on two moons; 0 disables).
        feature_extractor: optional Keras layer or model applied to the input first.
        **kwargs: see `DistributionHead`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> head = probnn.heads.DUQHead(2, centroid_size=4)
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "relu"), head])
    >>> x, y = np.random.default_rng(0).normal(size=(64, 3)).astype("float32"), np.arange(64) % 2
    >>> _ = probnn.fit(model, x, y, epochs=2, batch_size=32, verbose=0, seed=0)
    >>> certainty = probnn.metrics.max_probability(probnn.predict_distribution(model, x))
    >>> tuple(certainty.shape), bool(np.all((certainty.numpy() > 0) & (certainty.numpy() <= 1)))
    ((64,), True)
    """

    probnn_loss_updates_state = True  # NegativeLogLikelihood keeps this head itself, not a copy

    def __init__(
        self,
        num_classes,
        centroid_size=16,
        *,
        length_scale=0.1,
        gamma=0.999,
        gradient_penalty=0.0,
        feature_extractor=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.num_classes = int_at_least(name, "num_classes", num_classes, 2, whole_floats=True)
        self.centroid_size = int_at_least(name, "centroid_size", centroid_size, 1, whole_floats=True)
        self.length_scale = positive_number(name, "length_scale", length_scale)
        if not 0.0 < float(gamma) < 1.0:
            raise ValueError(f"{name}: gamma must be in (0, 1), got {gamma!r}")
        if not float(gradient_penalty) >= 0.0:
            raise ValueError(f"{name}: gradient_penalty must be >= 0, got {gradient_penalty!r}")
        self.gamma = float(gamma)
        self.gradient_penalty = float(gradient_penalty)
        if isinstance(feature_extractor, dict):
            feature_extractor = keras.saving.deserialize_keras_object(feature_extractor)
        self.feature_extractor = feature_extractor

    @property
    def params_size(self):
        return self.num_classes * (1 + self.centroid_size)

    @property
    def projection_size(self):
        return self.num_classes * self.centroid_size

    @property
    def event_shape(self):
        return ()

    def build(self, input_shape):
        if self.feature_extractor is not None:
            if not self.feature_extractor.built:
                self.feature_extractor.build(input_shape)
            input_shape = self.feature_extractor.compute_output_shape(input_shape)
        super().build(input_shape)
        self.counts = self.add_weight(
            name="counts",
            shape=(self.num_classes,),
            trainable=False,
            initializer=keras.initializers.Constant(13.0),
        )
        self.sums = self.add_weight(
            name="sums",
            shape=(self.centroid_size, self.num_classes),
            trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=0.05 * 13.0),
        )
        self.training_call = self.add_weight(
            name="training_call", shape=(), trainable=False, initializer="zeros"
        )

    @property
    def centroids(self):
        """The class centroids `μ_c = m_c / N_c`, shape `(centroid_size, num_classes)`."""
        return self.sums / self.counts

    def _params_of(self, inputs):
        features = inputs if self.feature_extractor is None else self.feature_extractor(inputs)
        embeddings = tf.reshape(self.project(features), (-1, self.centroid_size, self.num_classes))
        centroids = tf.cast(self.centroids, embeddings.dtype)
        log_kernel = -tf.reduce_mean(tf.square(embeddings - centroids), axis=1) / (2 * self.length_scale**2)
        params = tf.concat([log_kernel, tf.reshape(embeddings, (-1, self.projection_size))], axis=-1)
        return tf.reshape(params, tf.concat([tf.shape(inputs)[:-1], [self.params_size]], 0)), log_kernel

    def call(self, inputs, training=False):
        if training is not None:
            self.training_call.assign(1.0 if training else 0.0)
        if not (training and self.gradient_penalty > 0):
            return self._params_of(inputs)[0]
        inputs = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            params, log_kernel = self._params_of(inputs)
            total = tf.reduce_sum(tf.exp(log_kernel))
        grad = tf.reshape(tape.gradient(total, inputs), (tf.shape(inputs)[0], -1))
        norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=-1) + 1e-12)
        self.add_loss(self.gradient_penalty * tf.reduce_mean(tf.square(norm - 1.0)))
        return params

    def distribution(self, params):
        log_kernel = tf.minimum(self._params(params)[..., : self.num_classes], -1e-6)
        logits = log_kernel - tfp.math.log1mexp(log_kernel)  # log K - log(1 - K)
        return tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=log_kernel.dtype), reinterpreted_batch_ndims=1
        )

    def log_prob(self, params, y):
        """Log likelihood of class labels `y`; after a training call, also the centroid update."""
        params = self._params(params)
        y = tf.convert_to_tensor(y)
        if y.shape.rank is not None and y.shape.rank == params.shape.rank and y.shape[-1] == 1:
            y = y[..., 0]
        if y.dtype.is_floating:
            y = tf.round(y)
        onehot = tf.one_hot(tf.cast(y, tf.int32), self.num_classes, dtype=params.dtype)
        if getattr(self, "built", False) and hasattr(self, "counts"):
            self._update_centroids(params, onehot)
        return self.distribution(params).log_prob(onehot)

    def _update_centroids(self, params, onehot):
        embeddings = tf.reshape(
            tf.stop_gradient(params[..., self.num_classes :]), (-1, self.centroid_size, self.num_classes)
        )
        onehot = tf.reshape(onehot, (-1, self.num_classes))
        keep = tf.where(self.training_call > 0, self.gamma, 1.0)
        new = 1.0 - keep
        self.counts.assign(keep * self.counts + new * tf.cast(tf.reduce_sum(onehot, 0), self.counts.dtype))
        batch_sums = tf.einsum("ndc,nc->dc", embeddings, onehot)
        self.sums.assign(keep * self.sums + new * tf.cast(batch_sums, self.sums.dtype))

    def _invalid_targets(self, y):
        return (
            f"integer class indices in [0, {self.num_classes})",
            ~((y >= 0) & (y < self.num_classes) & (y == np.round(y))),
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.params_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            centroid_size=self.centroid_size,
            length_scale=self.length_scale,
            gamma=self.gamma,
            gradient_penalty=self.gradient_penalty,
            feature_extractor=None
            if self.feature_extractor is None
            else keras.saving.serialize_keras_object(self.feature_extractor),
        )
        return config
