"""Bayesian linear regression with data-scaled default priors, on the NUTS engine of `sample`."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.bayes.inference_data import Conversion, check_finite, run_and_convert
from probnn.bayes.settings import check_sampler, sampler_seeded

tfd = tfp.distributions

_OWNER = "linear_regression"
_LIKELIHOODS = ("normal", "studentt")


def _check_numeric(x, names):
    """A ValueError naming the first column of `x` (a DataFrame or an array) that is not numbers."""
    dtypes = list(x.dtypes) if hasattr(x, "dtypes") and names else None
    if dtypes is None:
        array = np.asarray(x)
        if array.dtype.kind in "biuf" or array.ndim != 2:
            return
        dtypes = []
        for j in range(array.shape[1]):
            try:
                array[:, j].astype(np.float64)
                dtypes.append(np.dtype(np.float64))
            except (TypeError, ValueError):
                dtypes.append(array.dtype)
        names = names or [f"x{j}" for j in range(array.shape[1])]
    for name, dtype in zip(names, dtypes):
        if getattr(dtype, "kind", "O") not in "biuf":
            raise ValueError(
                f"{_OWNER}: column {str(name)!r} of x is not numeric (dtype {dtype}); "
                "encode it as numbers (e.g. pandas.get_dummies) or drop it"
            )


def _columns(x, feature_names):
    names = list(getattr(x, "columns", [])) or None
    _check_numeric(x, names if feature_names is None else list(feature_names))
    x = check_finite(_OWNER, "x", x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{_OWNER}: x must have shape (n, features), got {x.shape}")
    if feature_names is None:
        feature_names = [str(c) for c in names] if names else [f"x{j}" for j in range(x.shape[1])]
    feature_names = [str(f) for f in feature_names]
    if len(feature_names) != x.shape[1] or len(set(feature_names)) != len(feature_names):
        raise ValueError(f"{_OWNER}: feature_names must be {x.shape[1]} distinct names, got {feature_names}")
    return x.astype(np.float64), feature_names


def _check_prior(name, prior, shape=()):
    if prior is None:
        return None
    if (
        not isinstance(prior, tfd.Distribution)
        or prior.event_shape.rank != 0
        or prior.batch_shape.rank not in (0, len(shape))
        or (prior.batch_shape.rank and tuple(prior.batch_shape) != shape)
    ):
        raise ValueError(
            f"{_OWNER}: {name} must be a scalar tfd.Distribution (or one with batch shape "
            f"{shape}), got {prior!r}"
        )
    return prior


def _default_priors(y_mean, y_sd, coef_scale):
    """The weakly informative, data-scaled default priors (rstanarm's and bambi's recipe).

    - intercept of the centred predictors ~ Normal(mean(y), 2.5 sd(y));
    - coef[j] ~ Normal(0, 2.5 sd(y) / sd(x[:, j])) (`coef_scale` = sd(y) / sd(x));
    - sigma ~ Exponential(rate = 1 / sd(y));
    - nu (Student-t) ~ Gamma(2, 0.1).
    """
    return {
        "intercept": tfd.Normal(y_mean, 2.5 * y_sd),
        "coef": tfd.Normal(tf.zeros_like(coef_scale), 2.5 * coef_scale),
        "sigma": tfd.Exponential(1.0 / y_sd),
        "nu": tfd.Gamma(tf.constant(2.0, y_sd.dtype), tf.constant(0.1, y_sd.dtype)),
    }


def _log_prior(prior, value):
    """`prior.log_prob(value)` in float64, whatever the prior's own dtype."""
    return tf.cast(prior.log_prob(tf.cast(value, prior.dtype)), tf.float64)


def _noise(likelihood, loc, sigma, nu):
    if likelihood == "normal":
        return tfd.Normal(loc, sigma)
    return tfd.StudentT(nu, loc, sigma)


def _data(x, y, feature_names):
    """Checked float64 `x (n, p)`, `y (n,)` and the feature names."""
    x, names = _columns(x, feature_names)
    y = check_finite(_OWNER, "y", y).astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{_OWNER}: y must have shape ({len(x)},) to match x, got {y.shape}")
    if len(x) < 3:
        raise ValueError(f"{_OWNER}: need at least 3 rows, got {len(x)}")
    sx = x.std(axis=0, ddof=1)
    if np.any(sx == 0):
        bad = [names[j] for j in np.flatnonzero(sx == 0)]
        raise ValueError(f"{_OWNER}: feature(s) {bad} are constant; drop them (the intercept is separate)")
    if y.std(ddof=1) == 0:
        raise ValueError(f"{_OWNER}: y is constant; there is nothing to regress")
    return x, y, names


def _user_priors(likelihood, p, intercept, coef, sigma, nu):
    """The priors given (checked), by parameter name; the others take the defaults."""
    if nu is not None and likelihood != "studentt":
        raise ValueError(f"{_OWNER}: prior_nu needs likelihood='studentt'")
    user = {}
    for key, value, shape in (
        ("intercept", intercept, ()),
        ("coef", coef, (p,)),
        ("sigma", sigma, ()),
        ("nu", nu, ()),
    ):
        if _check_prior(f"prior_{key}", value, shape) is not None:
            user[key] = value
    return user


class _LinearModel:
    """The regression on standardised coordinates (centred, scaled x and y, log sigma) and back.

    The state `u` holds the standardised intercept, the standardised
    coefficients, log sigma / sd(y) and (Student-t) log nu. The data enter the
    compiled program as inputs (`self.data`), so a later fit with the same
    shapes (and default priors) reuses it.
    """

    def __init__(self, x, y, likelihood, user):
        self.x, self.y, self.likelihood, self.user = x, y, likelihood, user
        self.studentt = likelihood == "studentt"
        self.p = x.shape[1]
        self.dim = self.p + 2 + self.studentt
        self.xm, sx, ym, sy = x.mean(axis=0), x.std(axis=0, ddof=1), y.mean(), y.std(ddof=1)
        self.data = (
            tf.constant((x - self.xm) / sx),
            tf.constant(y),
            tf.constant(ym),
            tf.constant(sy),
            tf.constant(sy / sx),
        )

    def transform(self, u, ym, sy, scale_coef):
        """Standardised state (chains, dim) -> original-scale parameters."""
        p = self.p
        alpha_s, beta_s, log_sigma_s = u[:, 0], u[:, 1 : 1 + p], u[:, 1 + p]
        nu = tf.exp(u[:, 2 + p]) if self.studentt else None
        return ym + sy * alpha_s, beta_s * scale_coef, sy * tf.exp(log_sigma_s), nu

    def log_prob(self, u, xs, y_obs, ym, sy, scale_coef):
        intercept_c, coef, sigma, nu = self.transform(u, ym, sy, scale_coef)
        # coef @ (x - mean(x)) = sd(y) * beta_s @ x_standardised
        loc = intercept_c[:, None] + sy * tf.matmul(u[:, 1 : 1 + self.p], xs, transpose_b=True)
        noise = _noise(self.likelihood, loc, sigma[:, None], None if nu is None else nu[:, None])
        lp = tf.reduce_sum(noise.log_prob(y_obs[None]), axis=-1)
        priors = {**_default_priors(ym, sy, scale_coef), **self.user}
        lp += _log_prior(priors["intercept"], intercept_c)
        lp += tf.reduce_sum(_log_prior(priors["coef"], coef) * tf.ones_like(coef), axis=-1)
        lp += _log_prior(priors["sigma"], sigma) + tf.math.log(sigma)  # Jacobian of log sigma
        if self.studentt:
            lp += _log_prior(priors["nu"], nu) + tf.math.log(nu)
        return tf.where(tf.math.is_nan(lp), tf.constant(-np.inf, lp.dtype), lp)

    def original(self, draws):
        """Flat draws `(chains, draws, dim)` -> the posterior dict on the original scale."""
        flat = tf.constant(draws.reshape(-1, self.dim))
        transformed = self.transform(flat, *self.data[2:])
        intercept_c, coef, sigma, nu = (None if t is None else t.numpy() for t in transformed)
        out = {"intercept": intercept_c - coef @ self.xm, "coef": coef, "sigma": sigma}
        if self.studentt:
            out["nu"] = nu
        return {k: v.reshape(draws.shape[:2] + v.shape[1:]) for k, v in out.items()}

    def _noise_at_data(self, draws):
        post = self.original(draws)
        loc = post["intercept"][..., None] + post["coef"] @ self.x.T
        nu = post["nu"][..., None] if self.studentt else None
        return _noise(self.likelihood, loc, post["sigma"][..., None], nu)

    def pointwise(self, draws):
        return self._noise_at_data(draws).log_prob(self.y).numpy()

    def predictive(self, seed):
        return lambda draws: self._noise_at_data(draws).sample(seed=(seed, 0)).numpy()


def linear_regression(
    x,
    y,
    *,
    feature_names=None,
    likelihood="normal",
    prior_intercept=None,
    prior_coef=None,
    prior_sigma=None,
    prior_nu=None,
    sampler=None,
):
    """Bayesian linear regression `y ~ likelihood(intercept + x @ coef, sigma)` by NUTS.

    Priors (all on the original scale of the data; None means the default):

    - `prior_intercept`: prior of the intercept of the *centred* predictors,
      `intercept + mean(x) @ coef` (as rstanarm and bambi put it). Default
      Normal(mean(y), 2.5 sd(y)).
    - `prior_coef`: a scalar distribution for every coefficient, or one with
      batch shape `(features,)`. Default Normal(0, 2.5 sd(y) / sd(x_j)).
    - `prior_sigma`: the noise scale's prior (support sigma > 0). Default
      Exponential(rate = 1 / sd(y)).
    - `prior_nu`: the Student-t degrees of freedom (support nu > 0), only
      with `likelihood="studentt"`. Default Gamma(2, 0.1).

    The defaults are weakly informative and scaled to the data, so raw data
    (an intercept of 26, a coefficient of 0.06) get the posterior the data
    say, not one pulled towards zero. The sampler works on standardised
    coordinates (centred and scaled x and y, log sigma), where the
    posterior is close to isotropic; the draws are reported on the
    original scale. Priors are float64 distributions (float32 ones are cast).

    Args:
        x: predictors, shape `(n, features)` (or `(n,)`), e.g. an array or a
            pandas DataFrame (whose column names become the feature names).
        y: targets, shape `(n,)`.
        feature_names: names for the `coef` coordinate (default: the
            DataFrame's columns, else x0, x1, ...).
        likelihood: "normal" or "studentt".
        sampler: `probnn.bayes.NUTS(...)` (default `NUTS()`), or variational
            inference, `probnn.bayes.VI("advi")` (mean-field) or
            `VI("fullrank")` (full-covariance Normal; `probnn.bayes.vi`): the
            draws then come from the fitted approximation. Either with
            `posterior_predictive=True` also draws one replicate of `y` per draw.

    Returns:
        `arviz.InferenceData`: posterior `intercept`, `coef` (dim `feature`,
        the feature names as coordinates), `sigma` (and `nu`); sample_stats;
        log_likelihood `y` per observation; observed_data; sampler_state
        (NUTS); optionally posterior_predictive.
        `probnn.bayes.linear_predictive(idata, x_new)` gives the predictive
        distribution at new inputs.

    Example:
    >>> import numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(100, 500, size=(80, 1))
    >>> y = 26 + 0.06 * x[:, 0] + rng.normal(size=80)
    >>> nuts = probnn.bayes.NUTS(num_chains=2, num_samples=200, num_warmup=200, seed=0, verbose=0)
    >>> idata = probnn.bayes.linear_regression(x, y, feature_names=["size"], sampler=nuts)
    >>> post = idata.posterior
    >>> round(float(post["coef"].sel(feature="size").mean()), 2), round(float(post["sigma"].mean()), 1)
    (0.06, 1.0)
    """
    sampler = check_sampler(_OWNER, sampler)
    if likelihood not in _LIKELIHOODS:
        raise ValueError(f"{_OWNER}: likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")
    x, y, names = _data(x, y, feature_names)
    n, p = x.shape
    user = _user_priors(likelihood, p, prior_intercept, prior_coef, prior_sigma, prior_nu)
    model = _LinearModel(x, y, likelihood, user)
    rng = np.random.default_rng(sampler.seed)
    init = rng.uniform(-2.0, 2.0, size=(sampler.num_chains, model.dim))
    conversion = Conversion(
        unpack=model.original,
        log_likelihood=model.pointwise,
        observed=y,
        coords={"feature": names},
        dims={"coef": ["feature"]},
        posterior_predictive=model.predictive(int(rng.integers(2**31 - 1)))
        if sampler.posterior_predictive
        else None,
        attrs={"probnn_model": "linear_regression", "likelihood": likelihood},
    )
    return run_and_convert(
        _OWNER,
        model.log_prob,
        init,
        sampler_seeded(sampler, rng),
        conversion,
        data=model.data,
        cache_key=None if user else ("linear_regression", likelihood, n, p),
    )


def linear_predictive(posterior, x, *, num_draws=None):
    """The posterior predictive distribution of a `linear_regression` fit at inputs `x`.

    Args:
        posterior: the `InferenceData` returned by `linear_regression`.
        x: inputs, shape `(n, features)`.
        num_draws: None for every draw, or K evenly spaced draws.

    Returns:
        The uniform mixture over the draws (probnn's layout: components on
        axis 1), batch shape `(n,)`, event shape `(1,)` as a `NormalHead`'s.

    Example:
    >>> import arviz as az, numpy as np, probnn
    >>> idata = az.from_dict(posterior={"intercept": np.zeros((1, 3)),
    ...                                 "coef": np.ones((1, 3, 2)), "sigma": np.ones((1, 3))},
    ...                      attrs={"probnn_model": "linear_regression", "likelihood": "normal"})
    >>> dist = probnn.bayes.linear_predictive(idata, np.ones((4, 2)))
    >>> dist.batch_shape.as_list(), dist.event_shape.as_list(), float(dist.mean()[0, 0])
    ([4], [1], 2.0)
    """
    group = getattr(posterior, "posterior", None)
    attrs = {**getattr(group, "attrs", {}), **(getattr(posterior, "attrs", None) or {})}
    if group is None or attrs.get("probnn_model") != "linear_regression":
        raise ValueError(
            "linear_predictive: posterior must be the InferenceData returned by "
            "probnn.bayes.linear_regression"
        )
    studentt = attrs.get("likelihood") == "studentt"
    coef = group["coef"].values.reshape(-1, group["coef"].shape[-1])
    x = check_finite("linear_predictive", "x", x).astype(np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != coef.shape[1]:
        raise ValueError(f"linear_predictive: x must have shape (n, {coef.shape[1]}), got {x.shape}")
    params = {k: group[k].values.reshape(-1) for k in ("intercept", "sigma") + (("nu",) if studentt else ())}
    total = len(coef)
    if num_draws is not None:
        if isinstance(num_draws, bool) or int(num_draws) != num_draws or not 1 <= num_draws <= total:
            raise ValueError(
                f"linear_predictive: num_draws must be an integer in [1, {total}], got {num_draws!r}"
            )
        index = np.round(np.linspace(0, total - 1, int(num_draws))).astype(int)
        coef = coef[index]
        params = {k: v[index] for k, v in params.items()}
    loc = (params["intercept"][None] + x @ coef.T)[..., None]  # (n, K, 1)
    scale = np.broadcast_to(params["sigma"][None, :, None], loc.shape)
    noise = (
        tfd.Normal(loc, scale)
        if not studentt
        else tfd.StudentT(np.broadcast_to(params["nu"][None, :, None], loc.shape), loc, scale)
    )
    components = tfd.Independent(noise, reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(tfd.Categorical(logits=np.zeros(loc.shape[:2])), components)
