"""Deep evidential regression (Amini et al. 2020): a Normal-Inverse-Gamma head and its Student-t predictive."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import dtype_util, parameter_properties

from probnn.heads.base import RealEventHead, positive_scale

tfd = tfp.distributions


class NormalInverseGammaPredictive(tfd.StudentT):
    """The Student-t predictive of a Normal-Inverse-Gamma evidence `NIG(γ, ν, α, β)`.

    With `y ~ Normal(μ, σ²)`, `μ ~ Normal(γ, σ²/ν)` and `σ² ~ InvGamma(α, β)`,
    the marginal of y is a Student-t with `df = 2α`, location γ and scale
    `√(β (1 + ν) / (ν α))` (Amini et al. 2020, eq. 6 and 8). It is a
    `tfd.StudentT` and also keeps the evidence, so `uncertainty()` splits its
    variance into the aleatoric `E[σ²] = β/(α - 1)` and the epistemic
    `Var[μ] = β/(ν (α - 1))` parts (α > 1); they sum to `variance()`.

    Args:
        loc: γ. lam: ν > 0. alpha: α > 1. beta: β > 0.

    Example:
    >>> import numpy as np
    >>> d = NormalInverseGammaPredictive(np.float64(0.0), 1.0, 2.0, 1.0)
    >>> [round(float(v), 6) for v in (d.df, d.scale, *d.uncertainty())]
    [4.0, 1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        loc,
        lam,
        alpha,
        beta,
        validate_args=False,
        allow_nan_stats=True,
        name="NormalInverseGammaPredictive",
    ):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([loc, lam, alpha, beta], tf.float32)
            self._lam, self._alpha, self._beta = (tf.convert_to_tensor(v, dtype) for v in (lam, alpha, beta))
            scale = tf.sqrt(self._beta * (1 + self._lam) / (self._lam * self._alpha))
            super().__init__(
                df=2 * self._alpha,
                loc=loc,
                scale=scale,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                name=name,
            )
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        props = parameter_properties.ParameterProperties
        return dict(loc=props(), lam=props(), alpha=props(), beta=props())

    def _batch_shape_tensor(self, **kwargs):
        # tfd.StudentT's methods pass their own (df, scale); the shape follows from the evidence.
        return super()._batch_shape_tensor(loc=kwargs.get("loc", self.loc))

    @property
    def lam(self):
        return self._lam

    @property
    def alpha(self):
        return self._alpha

    @property
    def beta(self):
        return self._beta

    def uncertainty(self):
        """`(aleatoric, epistemic)`: `β/(α - 1)` and `β/(ν (α - 1))`."""
        aleatoric = self._beta / (self._alpha - 1)
        return aleatoric, aleatoric / self._lam


@keras.saving.register_keras_serializable(package="probnn")
class EvidentialHead(RealEventHead):
    """Deep evidential regression: a Normal-Inverse-Gamma evidence per output (Amini et al. 2020).

    Parameters are `[γ (E), raw_ν (E), raw_α (E), raw_β (E)]`, with
    `ν = softplus(raw_ν) + min_scale`, `α = 1 + softplus(raw_α) + min_scale`
    (so the variances exist) and `β = softplus(raw_β) + min_scale`.
    `distribution(params)` is the Student-t predictive
    (`NormalInverseGammaPredictive`, inside an `Independent` over the
    outputs); its negative log density is Amini et al.'s `L^NLL`.
    Train with `probnn.losses.EvidentialLoss(head, reg_weight)`, which adds
    their evidence regulariser; `probnn.decompose_uncertainty` of the
    distribution gives the aleatoric and epistemic variances.

    Args:
        event_size: number of real outputs per example (>= 1).
        min_scale: floor of ν, α - 1 and β (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.EvidentialHead()
    >>> dist = head.distribution(np.zeros((2, 4)))
    >>> alea, epi = probnn.decompose_uncertainty(dist)
    >>> np.allclose(alea + epi, dist.variance())
    True
    """

    @property
    def params_size(self):
        return 4 * self.event_size

    def evidence(self, params):
        """`(γ, ν, α, β)`, each of shape `batch + (event_size,)`."""
        gamma, raw_lam, raw_alpha, raw_beta = tf.split(self._params(params), 4, axis=-1)
        floor = self.min_scale
        return (
            gamma,
            positive_scale(raw_lam, floor),
            1 + positive_scale(raw_alpha, floor),
            positive_scale(raw_beta, floor),
        )

    def distribution(self, params):
        return tfd.Independent(
            NormalInverseGammaPredictive(*self.evidence(params)), reinterpreted_batch_ndims=1
        )
