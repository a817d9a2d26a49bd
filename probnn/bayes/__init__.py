"""Bayesian inference on probnn models, with arviz `InferenceData` as the result.

- `sample`: NUTS over all trainable weights of a Keras model ending in a probnn
  head (chains vectorised, warm-up in Stan's windows, XLA-compiled).
- `NUTS(...)` / `VI(...)`: the inference settings, passed whole as `sampler=`
  to `sample`, `linear_regression` and `glm`; `NUTS(initial_state=idata)`
  continues an earlier run (its `sampler_state`: `NUTSState`).
- `linear_regression`: Bayesian linear regression (intercept, coef, sigma)
  with rstanarm-style data-scaled default priors, on the same engine;
  `linear_predictive` is its posterior predictive at new inputs.
- `posterior_weights` / `posterior_params`: the draws stacked for
  `probnn.functional.stacked_call`; `probnn.predict_distribution(model, x,
  posterior=idata)` mixes the predictive distributions over them.
- `laplace`: a Laplace approximation of a trained model's posterior (last
  layer, all weights or a subnetwork; full, Kronecker-factored or diagonal
  GGN; evidence-maximising prior and noise); its predictive goes through
  `probnn.predict_distribution(model, x, posterior=la)`.
- `swag`: SWAG (Maddox et al. 2019): continued SGD from the trained weights
  (`SWAGSchedule`), summarised as a diagonal plus low-rank Gaussian; the same
  predictive route.
- `glm`: Bayesian generalised linear (multilevel) models: gaussian,
  student_t, bernoulli, binomial, poisson, negative_binomial, gamma; varying
  intercepts and slopes (`Groups`); a formula form; `glm_predictive` predicts (new
  groups included), `prior_summary` lists the priors used.
- `sampler=VI("advi")` / `VI("fullrank")` (in `glm`, `linear_regression`,
  `sample`): variational inference instead of NUTS (`probnn.bayes.vi`).
- `from_predictive`: predictive samples (or a predictive distribution) of any
  model as `InferenceData`, for `arviz.plot_ppc` and `arviz.loo_pit`.
"""

from probnn.bayes.glm import Groups, glm, glm_predictive, prior_summary
from probnn.bayes.laplace import Laplace, laplace
from probnn.bayes.linear import linear_predictive, linear_regression
from probnn.bayes.nuts import NUTSState
from probnn.bayes.posterior import posterior_params, posterior_weights
from probnn.bayes.predictive import from_predictive
from probnn.bayes.sample import sample
from probnn.bayes.settings import NUTS, VI
from probnn.bayes.swag import SWAG, SWAGSchedule, swag

__all__ = [
    "NUTS",
    "SWAG",
    "VI",
    "Groups",
    "Laplace",
    "NUTSState",
    "SWAGSchedule",
    "from_predictive",
    "glm",
    "glm_predictive",
    "laplace",
    "linear_predictive",
    "linear_regression",
    "posterior_params",
    "posterior_weights",
    "prior_summary",
    "sample",
    "swag",
]
