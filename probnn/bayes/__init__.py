"""Bayesian inference on probnn models, with arviz `InferenceData` as the result.

- `sample`: NUTS over all trainable weights of a Keras model ending in a probnn
  head (chains vectorised, warm-up in Stan's windows, XLA-compiled).
- `from_predictive`: predictive samples (or a predictive distribution) of any
  model as `InferenceData`, for `arviz.plot_ppc` and `arviz.loo_pit`.
"""

from probnn.bayes.predictive import from_predictive
from probnn.bayes.sample import sample

__all__ = ["from_predictive", "sample"]
