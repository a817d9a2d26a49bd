"""RBF-gated mixture head: mixture weights from normalised Gaussian radial basis functions."""

import math

import keras
import numpy as np

from probnn._validation import positive_number
from probnn.heads.mixture import _NormalMixtureLayout
from probnn.layers._adapt import AdaptMixin
from probnn.layers.prototypes import select_centers, typical_distance
from probnn.layers.rbf import squared_distances


@keras.saving.register_keras_serializable(package="probnn")
class RBFMixtureHead(AdaptMixin, _NormalMixtureLayout):
    """A mixture of Normals whose weights are normalised Gaussian RBF activations of the input.

    For an input h, component k has a prototype c_k and a width σ_k, and

        π_k(h) = exp(-‖h − c_k‖² / σ_k²) / Σ_j exp(-‖h − c_j‖² / σ_j²),

    a normalised RBF gating network, computed as a softmax of the log
    activations so it stays exact far from every prototype. The RBF
    convention (σ in `exp(-d²/σ²)`, widths stored as `log_width`) and the
    distance computation are those of `probnn.layers.RBF`. Each component's
    mean and raw scale are affine functions of h (scale `softplus(·) +
    min_scale`). The emitted parameters have `MixtureNormalHead`'s layout —
    `[gate logits (K), loc (K·E), raw_scale (K·E)]` — so the two heads share
    `distribution` and the likelihood loss.

    Prototypes start from `prototype_initializer` and widths at `width`;
    `adapt(x)` sets them from data instead (and builds the head if it is not built).

    Args:
        num_components: number of components / prototypes K (>= 1).
        event_size: dimension E of each output (>= 1).
        min_scale: floor added to every component scale (> 0).
        width: starting RBF width σ of every component (> 0).
        prototype_initializer: initializer of the (K, features) prototypes.
        trainable_prototypes: whether prototypes and widths are trained.
        **kwargs: see `DistributionHead`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> x = np.random.default_rng(0).normal(size=(200, 2)).astype("float32")
    >>> head = probnn.heads.RBFMixtureHead(num_components=4)
    >>> head.adapt(x, seed=0)
    >>> model = keras.Sequential([keras.Input((2,)), head])
    >>> weights = head.distribution(model(x[:3])).mixture_distribution.probs_parameter()
    >>> bool(np.allclose(weights.numpy().sum(-1), 1.0))
    True
    """

    def __init__(
        self,
        num_components,
        event_size=1,
        *,
        min_scale=1e-6,
        width=1.0,
        prototype_initializer="random_normal",
        trainable_prototypes=True,
        **kwargs,
    ):
        super().__init__(num_components, event_size, min_scale=min_scale, **kwargs)
        self.width = positive_number("RBFMixtureHead", "width", width)
        self.prototype_initializer = keras.initializers.get(prototype_initializer)
        self.trainable_prototypes = bool(trainable_prototypes)

    @property
    def projection_size(self):
        return 2 * self.num_components * self.event_size

    def build(self, input_shape):
        features = self._check_build_shape(input_shape)
        if self.built:  # by adapt or an earlier build: keep the weights
            return
        self._features = features
        super().build(input_shape)
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.num_components, self._features),
            initializer=self.prototype_initializer,
            trainable=self.trainable_prototypes,
        )
        self.log_width = self.add_weight(
            name="log_width",
            shape=(self.num_components,),
            initializer=keras.initializers.Constant(math.log(self.width)),
            trainable=self.trainable_prototypes,
        )

    def adapt(self, x, *, method="kmeans++", max_samples=2000, seed=None):
        """Set the prototypes and widths from rows `x` of this head's input.

        Prototypes: `select_centers(x, num_components, method=method)` —
        data rows chosen by k-means++ seeding (default), at random, or
        k-means cluster means. Widths: every σ_k is the median pairwise
        distance of a random subsample of `max_samples` rows.

        Args:
            x: array of shape (n, ..., features), n >= num_components, finite.
            method: `"kmeans++"`, `"random"` or `"kmeans"`.
            max_samples: rows of the random subsample used for the width.
            seed: an integer seed, or None for fresh randomness.
        """
        x = self._adapt_data(x)
        if x.shape[0] < self.num_components:
            raise ValueError(
                f"{self._describe()}: adapt needs at least num_components={self.num_components} "
                f"data points, got {x.shape[0]}"
            )
        seed_prototypes, seed_width = np.random.SeedSequence(seed).spawn(2)
        prototypes = select_centers(x, self.num_components, method=method, seed=seed_prototypes)
        sigma = typical_distance(x, max_samples=max_samples, seed=seed_width)
        self._store_adapted(
            x.shape[1], {"prototypes": prototypes, "log_width": np.full(self.num_components, math.log(sigma))}
        )

    @property
    def widths(self):
        """The RBF widths σ_k (shape `(num_components,)`), `exp(log_width)`."""
        return keras.ops.exp(self.log_width)

    def call(self, inputs):
        inv_sq_width = keras.ops.exp(-2.0 * self.log_width)  # 1 / σ²
        gate_logits = -squared_distances(inputs, self.prototypes) * inv_sq_width
        return keras.ops.concatenate([gate_logits, self.project(inputs)], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            width=self.width,
            prototype_initializer=keras.initializers.serialize(self.prototype_initializer),
            trainable_prototypes=self.trainable_prototypes,
        )
        return config
