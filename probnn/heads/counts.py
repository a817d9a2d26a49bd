"""Heads for over-dispersed and zero-inflated counts: negative binomial and zero-inflated Poisson."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.heads.base import positive_scale
from probnn.heads.blocks import ParameterBlocksHead
from probnn.heads.discrete import invalid_counts

tfd = tfp.distributions


class _CountHead(ParameterBlocksHead):
    """Counts: targets are non-negative integers (floats holding integers are accepted)."""

    def _support(self, y):
        return "non-negative integer counts", ~invalid_counts(y)


@keras.saving.register_keras_serializable(package="probnn")
class NegativeBinomialHead(_CountHead):
    """Independent negative binomial counts with a learned mean and dispersion.

    Parameters are `[log_mean (E), raw_total_count (E)]`. The total count
    (dispersion) is `r = softplus(raw_total_count) + min_scale` and the
    distribution is TFP's `NegativeBinomial(r, logits=log_mean - log r)`:
    mean `μ = exp(log_mean)`, variance `μ + μ²/r` (the Poisson as r → ∞).
    In scipy's terms it is `nbinom(n=r, p=r/(r + μ))`.

    Args:
        event_size: number of count outputs per example (>= 1).
        min_scale: floor added to the total count r (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.NegativeBinomialHead()
    >>> dist = head.distribution(np.array([[np.log(3.0), 0.0]]))  # mean 3, r = log 2
    >>> round(float(dist.mean()[0, 0]), 6), round(float(dist.variance()[0, 0]), 4)
    (3.0, 15.9842)
    """

    def _base(self, log_mean, raw_total_count):
        total_count = positive_scale(raw_total_count, self.min_scale)
        return tfd.NegativeBinomial(
            total_count, logits=log_mean - tf.math.log(total_count), require_integer_total_count=False
        )


@keras.saving.register_keras_serializable(package="probnn")
class ZeroInflatedPoissonHead(_CountHead):
    """Independent zero-inflated Poisson counts: a point mass at 0 mixed with a Poisson.

    Parameters are `[log_rate (E), zero_logit (E)]`: with probability
    `π = sigmoid(zero_logit)` the count is a structural zero, otherwise it is
    `Poisson(exp(log_rate))`; so `P(0) = π + (1 - π) e^{-λ}` and
    `P(k) = (1 - π) Poisson(k; λ)` for k > 0. Built as TFP's
    `Inflated(Poisson(log_rate=...), inflated_loc_logits=zero_logit / 2)` (TFP's
    inflation logits count twice; a
    two-component `Mixture`, log-sum-exp in log space).

    Args:
        event_size: number of count outputs per example (>= 1).
        min_scale: unused by this head's parameters (kept for a uniform configuration).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.ZeroInflatedPoissonHead()
    >>> dist = head.distribution(np.array([[np.log(4.0), 0.0]]))  # λ = 4, π = 0.5
    >>> round(float(dist.mean()[0, 0]), 6)
    2.0
    """

    def _base(self, log_rate, zero_logit):
        # TFP's Inflated reads its logits l as Categorical(logits=[l, -l]), i.e. π = sigmoid(2 l).
        return tfd.Inflated(tfd.Poisson(log_rate=log_rate), inflated_loc_logits=zero_logit / 2)
