"""Bayesian inference on probnn models, with arviz `InferenceData` as the result.

- `from_predictive`: predictive samples (or a predictive distribution) of any
  model as `InferenceData`, for `arviz.plot_ppc` and `arviz.loo_pit`.
"""

from probnn.bayes.predictive import from_predictive

__all__ = ["from_predictive"]
