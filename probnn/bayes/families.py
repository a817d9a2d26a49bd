"""The response families of `probnn.bayes.glm`: likelihood, link, auxiliary parameters, checks.

Each family maps the linear predictor `eta` (and its auxiliary parameters) to
a `tfd.Distribution` of one observation per row:

| family | link | distribution | auxiliary |
| --- | --- | --- | --- |
| gaussian | identity | Normal(eta, sigma) | sigma |
| student_t | identity | StudentT(nu, eta, sigma) | sigma, nu |
| bernoulli | logit | Bernoulli(logits=eta) | |
| binomial | logit | Binomial(trials, logits=eta) | |
| poisson | log | Poisson(exp(eta)) | |
| negative_binomial | log | mean mu = exp(eta), variance mu + mu^2 / phi | phi |
| gamma | log | mean exp(eta), shape phi | phi |
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class Family:
    """One response family: its name, link, auxiliary parameters and the kind of outcome.

    `continuous_scale` is True when the linear predictor is on the scale of y
    (identity link): then the default priors are scaled by sd(y), as rstanarm's are.
    `outcome` names the support checked by `check_outcome`.
    """

    name: str
    link: str
    aux: tuple
    outcome: str  # "real", "binary", "count", "trials", "positive"

    @property
    def continuous_scale(self):
        return self.link == "identity"

    def distribution(self, eta, aux, trials=None):
        """The distribution of y given the linear predictor `eta` (and aux, trials), same shape."""
        if self.name == "gaussian":
            return tfd.Normal(eta, aux["sigma"])
        if self.name == "student_t":
            return tfd.StudentT(aux["nu"], eta, aux["sigma"])
        if self.name == "bernoulli":
            return tfd.Bernoulli(logits=eta, dtype=eta.dtype)
        if self.name == "binomial":
            return tfd.Binomial(total_count=trials, logits=eta)
        if self.name == "poisson":
            return tfd.Poisson(log_rate=eta)
        phi = aux["phi"]
        if self.name == "negative_binomial":
            # total_count phi and odds mu / phi: mean mu, variance mu (1 + mu / phi).
            return tfd.NegativeBinomial(total_count=phi, logits=eta - tf.math.log(phi))
        return tfd.Gamma(concentration=phi, log_rate=tf.math.log(phi) - eta)

    def check_outcome(self, owner, y, trials):
        """Raise a one-line ValueError if `y` (and `trials`) are outside the family's support."""
        if self.outcome == "binary" and not np.all((y == 0) | (y == 1)):
            bad = np.unique(y[(y != 0) & (y != 1)])[:5]
            raise ValueError(f"{owner}: family 'bernoulli' needs y in {{0, 1}}, got values {bad.tolist()}")
        if self.outcome in ("count", "trials") and np.any((y < 0) | (y != np.round(y))):
            bad = y[(y < 0) | (y != np.round(y))][:5]
            raise ValueError(
                f"{owner}: family {self.name!r} needs non-negative integer counts y, got {bad.tolist()}"
            )
        if self.outcome == "trials" and np.any(y > trials):
            i = int(np.flatnonzero(y > trials)[0])
            raise ValueError(
                f"{owner}: y must be <= trials, got y = {y[i]:g} > trials = {trials[i]:g} at row {i}"
            )
        if self.outcome == "positive" and np.any(y <= 0):
            raise ValueError(f"{owner}: family 'gamma' needs y > 0, got {int(np.sum(y <= 0))} value(s) <= 0")
        if self.outcome == "real" and np.std(y) == 0:
            raise ValueError(f"{owner}: y is constant; there is nothing to regress")


FAMILIES = {
    f.name: f
    for f in (
        Family("gaussian", "identity", ("sigma",), "real"),
        Family("student_t", "identity", ("sigma", "nu"), "real"),
        Family("bernoulli", "logit", (), "binary"),
        Family("binomial", "logit", (), "trials"),
        Family("poisson", "log", (), "count"),
        Family("negative_binomial", "log", ("phi",), "count"),
        Family("gamma", "log", ("phi",), "positive"),
    )
}


def get_family(owner, family):
    """The `Family` named `family`, or a one-line ValueError listing the choices."""
    if isinstance(family, Family):
        return family
    if family not in FAMILIES:
        raise ValueError(f"{owner}: family must be one of {sorted(FAMILIES)}, got {family!r}")
    return FAMILIES[family]
