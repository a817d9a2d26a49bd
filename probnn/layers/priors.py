"""Weight priors of the variational layers: a Normal and a scale mixture of two Normals.

A prior is a small serializable object with

- `log_prob(w)`: the element-wise log density of weights `w`;
- `kl(loc, scale)`: the element-wise KL divergence `KL(N(loc, scale) || prior)`
  in closed form, or None when there is none (then the layers use a Monte
  Carlo estimate, `log q(w) - log p(w)` at the sampled weights).

Layers accept a prior object, one of the names `"normal"` / `"scale_mixture"`
(default parameters), or the dict `keras.saving.serialize_keras_object` gives.
"""

import math

import keras
import tensorflow as tf

from probnn._validation import positive_number

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _normal_log_prob(w, scale):
    z = w / scale
    return -0.5 * z * z - math.log(scale) - _HALF_LOG_2PI


@keras.saving.register_keras_serializable(package="probnn")
class NormalPrior:
    """An independent `Normal(0, scale)` prior on every weight; KL in closed form.

    Args:
        scale: prior standard deviation (> 0).

    Example:
    >>> import numpy as np
    >>> prior = NormalPrior(scale=2.0)
    >>> float(prior.kl(np.float32(0.0), np.float32(2.0)))  # posterior equal to the prior
    0.0
    """

    def __init__(self, scale=1.0):
        self.scale = positive_number("NormalPrior", "scale", scale)

    def log_prob(self, w):
        return _normal_log_prob(w, self.scale)

    def kl(self, loc, scale):
        """Element-wise `KL(N(loc, scale) || N(0, self.scale))`."""
        ratio = scale / self.scale
        return 0.5 * (ratio * ratio + (loc / self.scale) ** 2) - 0.5 - tf.math.log(ratio)

    def get_config(self):
        return {"scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"NormalPrior(scale={self.scale})"


_DEFAULT_SCALE2 = math.exp(-6.0)  # Blundell et al. (2015)'s smaller mixture scale, e^-6


@keras.saving.register_keras_serializable(package="probnn")
class ScaleMixturePrior:
    """A scale mixture of two zero-mean Normals (Blundell et al. 2015, "Bayes by Backprop").

    `p(w) = weight * N(w; 0, scale1) + (1 - weight) * N(w; 0, scale2)`: a broad
    component and a narrow one that pulls unneeded weights to zero. There is no
    closed-form KL to a Normal posterior, so the layers estimate it by Monte Carlo.

    Args:
        scale1: standard deviation of the first (broad) component (> 0).
        scale2: standard deviation of the second (narrow) component (> 0).
        weight: mixture weight of the first component, in (0, 1).

    Example:
    >>> prior = ScaleMixturePrior()
    >>> prior.kl(0.0, 1.0) is None, round(prior.scale2, 5)
    (True, 0.00248)
    """

    def __init__(self, scale1=1.0, scale2=_DEFAULT_SCALE2, weight=0.5):
        self.scale1 = positive_number("ScaleMixturePrior", "scale1", scale1)
        self.scale2 = positive_number("ScaleMixturePrior", "scale2", scale2)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < 1:
            raise ValueError(f"ScaleMixturePrior: weight must be in (0, 1), got {weight!r}")
        self.weight = float(weight)

    def log_prob(self, w):
        a = _normal_log_prob(w, self.scale1) + math.log(self.weight)
        b = _normal_log_prob(w, self.scale2) + math.log1p(-self.weight)
        return tf.reduce_logsumexp(tf.stack([a, b]), axis=0)

    def kl(self, loc, scale):
        return None

    def get_config(self):
        return {"scale1": self.scale1, "scale2": self.scale2, "weight": self.weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"ScaleMixturePrior(scale1={self.scale1}, scale2={self.scale2}, weight={self.weight})"


_NAMES = {"normal": NormalPrior, "scale_mixture": ScaleMixturePrior}


def get_prior(identifier, owner="prior"):
    """A prior object from an object, a name (`"normal"`, `"scale_mixture"`) or a config dict.

    Example:
    >>> get_prior("normal")
    NormalPrior(scale=1.0)
    """
    if isinstance(identifier, (NormalPrior, ScaleMixturePrior)):
        return identifier
    if isinstance(identifier, str) and identifier in _NAMES:
        return _NAMES[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if callable(getattr(identifier, "log_prob", None)) and callable(getattr(identifier, "kl", None)):
        return identifier
    raise ValueError(
        f"{owner}: prior must be 'normal', 'scale_mixture' or a prior object with log_prob "
        f"and kl methods (e.g. probnn.layers.NormalPrior(scale=0.5)), got {identifier!r}"
    )
