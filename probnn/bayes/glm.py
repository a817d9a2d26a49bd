"""Bayesian generalised linear (multilevel) models, on the NUTS engine of `sample` or by VI.

`glm(x, y, family=...)` fits `y ~ family(link^-1(eta))` with the linear predictor

    eta = intercept + x @ coef + offset
          + group_intercept[g] + (x - mean(x))[:, slopes] @ group_slope[g]   (per grouping column)

- Families, links and auxiliary parameters: `probnn.bayes.families`.
- Default priors: weakly informative and scaled to the data as rstanarm's
  (`default_priors`; the table is in docs/bayes.md); `priors=` replaces any of
  them; `prior_summary(idata)` prints what was used.
- Group-level effects are non-centred: `group_intercept = group_sd * z` with
  `z ~ Normal(0, 1)` (and likewise each varying slope, with its own sd; slopes
  are independent of each other and of the intercepts).
- The sampler works on an unconstrained, standardised state: the intercept of
  the centred predictors, the coefficients times sd(x) (divided by sd(y) for
  the identity link), the logs of the positive parameters, and the z's.
"""

import dataclasses
import json

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.bayes.families import get_family
from probnn.bayes.inference_data import Conversion, check_finite, run_and_convert
from probnn.bayes.linear import _log_prior
from probnn.bayes.sample import _batched_over_draws
from probnn.bayes.settings import check_sampler, sampler_seeded

tfd = tfp.distributions

_OWNER = "glm"
GROUP_EFFECTS = ("intercept", "intercept+slopes")


@dataclasses.dataclass(frozen=True)
class GroupFactor:
    """One grouping column: its variable prefix and dim, levels, row codes and varying slopes."""

    prefix: str
    levels: tuple
    codes: np.ndarray = dataclasses.field(compare=False)
    slopes: tuple = ()  # indices of the features whose slopes vary by group


@dataclasses.dataclass(frozen=True, eq=False)
class Groups:
    """Grouping columns and the effects that vary by them (lme4's `(1 | g)`, `(1 + x | g)`).

    Args:
        labels: one label per row, or several columns (a DataFrame, a dict or
            an `(n, k)` array), as `glm(groups=)` takes them.
        effects: "intercept" (varying intercepts), "intercept+slopes" (every
            feature's slope varies too), or a dict from a grouping column to
            the features whose slopes vary (their intercepts always vary).

    Example:
    >>> import numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x, g = rng.normal(size=(200, 1)), rng.integers(0, 5, 200)
    >>> y = x[:, 0] * (1 + 0.3 * g) + rng.normal(size=200)
    >>> nuts = probnn.bayes.NUTS(num_chains=1, num_samples=50, num_warmup=50, seed=0, verbose=0)
    >>> idata = probnn.bayes.glm(x, y, groups=probnn.bayes.Groups(g, effects="intercept+slopes"), sampler=nuts)
    >>> idata.posterior["group_slope"].dims
    ('chain', 'draw', 'group', 'group_slope_feature')
    """

    labels: object = None
    effects: object = "intercept"


# ---------------------------------------------------------------------------- input checks


def _columns(owner, x, feature_names):
    names = [str(c) for c in getattr(x, "columns", [])] or None
    x = check_finite(owner, "x", x).astype(np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{owner}: x must have shape (n, features), got {x.shape}")
    if feature_names is None:
        feature_names = names or [f"x{j}" for j in range(x.shape[1])]
    feature_names = [str(f) for f in feature_names]
    if len(feature_names) != x.shape[1] or len(set(feature_names)) != len(feature_names):
        raise ValueError(f"{owner}: feature_names must be {x.shape[1]} distinct names, got {feature_names}")
    n, p = x.shape
    if p >= n:
        raise ValueError(f"{owner}: x has {p} features and only {n} rows; need fewer features than rows")
    constant = [feature_names[j] for j in np.flatnonzero(x.std(axis=0) == 0)]
    if constant:
        raise ValueError(
            f"{owner}: feature(s) {constant} are constant; drop them (the intercept is separate)"
        )
    return x, feature_names


def _labels(owner, name, labels, n):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"{owner}: groups column {name!r} must have one label per row ({n}), got shape {labels.shape}"
        )
    missing = [v is None or (isinstance(v, float) and np.isnan(v)) for v in labels.tolist()]
    if any(missing):
        raise ValueError(f"{owner}: groups column {name!r} has {sum(missing)} missing label(s)")
    try:
        levels, codes = np.unique(labels, return_inverse=True)
    except TypeError:  # mixed label types
        levels, codes = np.unique(labels.astype(str), return_inverse=True)
    if len(levels) < 2:
        raise ValueError(
            f"{owner}: groups column {name!r} has a single group "
            f"({levels[0]!r}); group-level effects need at least 2 groups"
        )
    return tuple(levels.tolist()), codes.astype(np.int32)


def group_columns(owner, groups, n):
    """`[(name, labels), ...]` from one label per row, a 2-D array, a DataFrame or a dict."""
    if groups is None:
        return []
    if isinstance(groups, dict):
        items = list(groups.items())
    elif hasattr(groups, "columns"):
        items = [(str(c), groups[c].to_numpy()) for c in groups.columns]
    else:
        array = np.asarray(groups)
        if array.ndim == 1:
            items = [("group", array)]
        elif array.ndim == 2:
            items = [(f"g{j}", array[:, j]) for j in range(array.shape[1])]
        else:
            raise ValueError(
                f"{owner}: groups must be one label per row or (n, columns), got shape {array.shape}"
            )
    if not items:
        raise ValueError(f"{owner}: groups has no columns")
    return [(str(k), v) for k, v in items]


def _factors(owner, groups, group_effects, names, n):
    columns = group_columns(owner, groups, n)
    if isinstance(group_effects, str):
        if group_effects not in GROUP_EFFECTS:
            raise ValueError(
                f"{owner}: Groups(effects=) must be one of {GROUP_EFFECTS} or a dict "
                f"{{column: [features]}}, got {group_effects!r}"
            )
        slopes = {c: (names if group_effects == "intercept+slopes" else []) for c, _ in columns}
    else:
        slopes = dict(group_effects)
        unknown = [c for c in slopes if c not in dict(columns)]
        if unknown:
            raise ValueError(
                f"{owner}: Groups(effects=) names grouping column(s) {unknown}; the columns are "
                f"{[c for c, _ in columns]}"
            )
    if not columns and group_effects != "intercept":
        raise ValueError(f"{owner}: Groups(effects={group_effects!r}) needs labels")
    factors = []
    for name, labels in columns:
        levels, codes = _labels(owner, name, labels, n)
        unknown = [f for f in slopes.get(name, []) if f not in names]
        if unknown:
            raise ValueError(f"{owner}: varying slopes {unknown} of {name!r} are not features {names}")
        prefix = "group" if len(columns) == 1 else name
        factors.append(
            GroupFactor(prefix, levels, codes, tuple(names.index(f) for f in slopes.get(name, [])))
        )
    return factors


def _per_row(owner, name, value, n, default):
    if value is None:
        return np.full(n, default, np.float64)
    value = check_finite(owner, name, value).astype(np.float64)
    value = np.broadcast_to(value, (n,)) if value.ndim == 0 else value.reshape(-1)
    if value.shape != (n,):
        raise ValueError(
            f"{owner}: {name} must be a number or have one value per row ({n}), got {len(value)} values"
        )
    return np.array(value)


def _outcome(owner, family, y, trials, n):
    y = check_finite(owner, "y", y)
    if y.dtype == bool:
        y = y.astype(np.float64)
    y = y.astype(np.float64).reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y.astype(np.float64)
    if y.shape != (n,):
        raise ValueError(f"{owner}: y must have shape ({n},) to match x, got {y.shape}")
    if family.name == "binomial":
        if trials is None:
            raise ValueError(f"{owner}: family 'binomial' needs trials (the number of trials per row)")
        trials = _per_row(owner, "trials", trials, n, 1)
        if np.any(trials < 1) or np.any(trials != np.round(trials)):
            raise ValueError(f"{owner}: trials must be positive integers")
    elif trials is not None:
        raise ValueError(f"{owner}: trials is only for family 'binomial', not {family.name!r}")
    family.check_outcome(owner, y, trials)
    return y, trials


# ---------------------------------------------------------------------------- the model


class Model:
    """A GLM's parameter layout, transforms, priors and linear predictor (traceable by TF).

    The flat state `u` (shape `(batch, dim)`) holds, in order: the standardised
    intercept of the centred predictors, the standardised coefficients, the log
    of each auxiliary parameter and, per grouping column, the log group sd, the
    group z's, and with varying slopes the log slope sds and their z's.
    """

    def __init__(self, family, p, factors):
        self.family, self.p, self.factors = family, p, factors
        segments = [("alpha", 1), ("beta", p)] + [(a, 1) for a in family.aux]
        for f in factors:
            g, q = len(f.levels), len(f.slopes)
            segments += [(f"{f.prefix}_sd", 1), (f"{f.prefix}_z", g)]
            if q:
                segments += [(f"{f.prefix}_slope_sd", q), (f"{f.prefix}_slope_z", g * q)]
        self.names = [s[0] for s in segments]
        self.sizes = [s[1] for s in segments]
        self.dim = sum(self.sizes)

    def prior_names(self):
        """The parameters that take a prior (the keys of `priors=`)."""
        names = ["intercept", "coef", *self.family.aux]
        for f in self.factors:
            names += [f"{f.prefix}_sd"] + ([f"{f.prefix}_slope_sd"] if f.slopes else [])
        return names

    def default_priors(self, loc0, s, sx):
        """rstanarm's autoscaled defaults: `loc0`, `s` are (mean(y), sd(y)) or (0, 1)."""
        priors = {
            "intercept": tfd.Normal(loc0, 2.5 * s),
            "coef": tfd.Normal(tf.zeros_like(sx), 2.5 * s / sx),
            "sigma": tfd.Exponential(1.0 / s),
            "nu": tfd.Gamma(tf.constant(2.0, s.dtype), tf.constant(0.1, s.dtype)),
            "phi": tfd.Exponential(tf.ones_like(s)),
        }
        for f in self.factors:
            priors[f"{f.prefix}_sd"] = tfd.Exponential(1.0 / s)
            if f.slopes:
                priors[f"{f.prefix}_slope_sd"] = tfd.Exponential(tf.gather(sx, list(f.slopes)) / s)
        return {k: v for k, v in priors.items() if k in self.prior_names()}

    def constrain(self, u, loc0, s, sx):
        """`u` -> (parameters on the original scale, log |Jacobian| of the positive ones)."""
        parts = dict(zip(self.names, tf.split(u, self.sizes, axis=-1)))
        out = {"intercept_c": loc0 + s * parts["alpha"][:, 0], "coef": s * parts["beta"] / sx}
        log_jac = tf.zeros_like(out["intercept_c"])
        for a in self.family.aux:
            out[a] = tf.exp(parts[a][:, 0]) * (s if a == "sigma" else 1.0)
            log_jac += tf.math.log(out[a])
        for f in self.factors:
            sd = s * tf.exp(parts[f"{f.prefix}_sd"][:, 0])
            out[f"{f.prefix}_sd"], out[f"{f.prefix}_z"] = sd, parts[f"{f.prefix}_z"]
            out[f"{f.prefix}_intercept"] = sd[:, None] * parts[f"{f.prefix}_z"]
            log_jac += tf.math.log(sd)
            if f.slopes:
                slope_sd = s * tf.exp(parts[f"{f.prefix}_slope_sd"]) / tf.gather(sx, list(f.slopes))
                z = tf.reshape(parts[f"{f.prefix}_slope_z"], [-1, len(f.levels), len(f.slopes)])
                out[f"{f.prefix}_slope_sd"], out[f"{f.prefix}_slope_z"] = slope_sd, z
                out[f"{f.prefix}_slope"] = slope_sd[:, None, :] * z
                log_jac += tf.reduce_sum(tf.math.log(slope_sd), axis=-1)
        return out, log_jac

    def eta(self, params, xc, offset, codes):
        """The linear predictor `(batch, n)` at centred inputs `xc` with group codes per factor."""
        eta = params["intercept_c"][:, None] + tf.matmul(params["coef"], xc, transpose_b=True)
        eta += offset[None]
        for f, c in zip(self.factors, codes):
            eta += tf.gather(params[f"{f.prefix}_intercept"], c, axis=1)
            if f.slopes:
                slope = tf.gather(params[f"{f.prefix}_slope"], c, axis=1)  # (batch, n, q)
                eta += tf.reduce_sum(slope * tf.gather(xc, list(f.slopes), axis=1)[None], -1)
        return eta

    def likelihood(self, params, eta, trials):
        aux = {a: params[a][:, None] for a in self.family.aux}
        return self.family.distribution(eta, aux, trials[None])

    def log_prob(self, u, data, priors):
        """The log posterior density (up to a constant) of the states `u`."""
        xc, y, offset, trials, loc0, s, sx, *codes = data
        params, log_jac = self.constrain(u, loc0, s, sx)
        priors = {**self.default_priors(loc0, s, sx), **priors}
        eta = self.eta(params, xc, offset, codes)
        lp = tf.reduce_sum(self.likelihood(params, eta, trials).log_prob(y[None]), axis=-1)
        lp += _log_prior(priors["intercept"], params["intercept_c"]) + log_jac
        lp += tf.reduce_sum(
            _log_prior(priors["coef"], params["coef"]) * tf.ones_like(params["coef"]), axis=-1
        )
        for name in self.prior_names()[2:]:
            value = params[name]
            lp += tf.reduce_sum(
                tf.reshape(_log_prior(priors[name], value) * tf.ones_like(value), [tf.shape(u)[0], -1]),
                axis=-1,
            )
        for f in self.factors:
            for z in ("z", "slope_z") if f.slopes else ("z",):
                value = params[f"{f.prefix}_{z}"]
                lp += tf.reduce_sum(tf.reshape(-0.5 * tf.square(value), [tf.shape(u)[0], -1]), -1)
        return tf.where(tf.math.is_nan(lp), tf.constant(-np.inf, lp.dtype), lp)


def _check_priors(owner, priors, model):
    """User priors: a dict from parameter name to a scalar `tfd.Distribution` (coef: or (p,))."""
    if priors is None:
        return {}
    if not isinstance(priors, dict):
        raise ValueError(
            f"{owner}: priors must be a dict from parameter name to a "
            f"tfd.Distribution, got {type(priors).__name__}"
        )
    valid = model.prior_names()
    for name, prior in priors.items():
        if name not in valid:
            raise ValueError(f"{owner}: priors has no parameter {name!r}; this model's are {valid}")
        shapes = [()] + ([(model.p,)] if name == "coef" else [])
        if (
            not isinstance(prior, tfd.Distribution)
            or prior.event_shape.rank != 0
            or tuple(prior.batch_shape) not in shapes
        ):
            raise ValueError(
                f"{owner}: priors[{name!r}] must be a scalar tfd.Distribution"
                + (f" (or one with batch shape ({model.p},))" if name == "coef" else "")
                + f", got {prior!r}"
            )
    return dict(priors)


def describe(prior):
    """A one-line description of a distribution, e.g. 'Normal(loc=0, scale=2.5)'."""
    params = []
    for key, value in prior.parameters.items():
        if (
            key in ("validate_args", "allow_nan_stats", "name")
            or value is None
            or isinstance(value, (bool, str))
        ):
            continue
        try:
            array = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            continue
        text = (
            f"{float(array):.3g}"
            if array.ndim == 0
            else "[" + ", ".join(f"{v:.3g}" for v in array.ravel()) + "]"
        )
        params.append(f"{key}={text}")
    return f"{type(prior).__name__}({', '.join(params)})"


# ---------------------------------------------------------------------------- the entry point


def glm(
    x,
    y=None,
    family="gaussian",
    *,
    data=None,
    trials=None,
    offset=None,
    groups=None,
    feature_names=None,
    priors=None,
    sampler=None,
):
    """Bayesian generalised linear model, optionally multilevel, by NUTS (or VI).

    `y ~ family(mean = inverse_link(eta))` with `eta = intercept + x @ coef +
    offset`, plus per grouping column a varying intercept `group_intercept[g]`
    (and, on request, varying slopes). The default priors are weakly
    informative and scaled to the data as rstanarm's (see docs/bayes.md and
    `prior_summary`); `priors={"coef": tfd.Normal(0., 1.), ...}` replaces any.

    Args:
        x: predictors `(n, features)` (or `(n,)`), e.g. a DataFrame; or a
            formula string `"y ~ x1 + x2 + (1 | g)"` with `data=` (needs the
            optional `formulae` package: `pip install "probnn[formula]"`).
        y: outcomes `(n,)` (not with a formula).
        family: "gaussian", "student_t", "bernoulli", "binomial", "poisson",
            "negative_binomial" or "gamma" (`probnn.bayes.families`).
        data: the DataFrame a formula refers to.
        trials: binomial trials, one per row (or a number; a column name with
            a formula).
        offset: added to the linear predictor, one per row (log exposure for
            poisson / negative_binomial; a column name with a formula).
        groups: grouping labels, one per row (variables `group_intercept`, dim
            `group`, and `group_sd`), or several columns (a DataFrame, a dict
            or an `(n, k)` array: variables `<column>_intercept`, `<column>_sd`):
            varying intercepts. For varying slopes too, `probnn.bayes.Groups(labels,
            effects="intercept+slopes")` (every feature's slope varies:
            `group_slope`, `group_slope_sd`) or `effects={column: [features]}`.
        feature_names: names for the `feature` coordinate.
        priors: dict from a parameter name (`prior_summary` lists them) to a
            scalar `tfd.Distribution` (for `coef` also one of batch shape
            `(features,)`), on the original scale; the intercept's prior is for
            the intercept of the centred predictors.
        sampler: `probnn.bayes.NUTS(...)` (default `NUTS()`; `initial_state=`
            continues an earlier fit), or variational inference,
            `probnn.bayes.VI("advi")` (mean-field) or `VI("fullrank")` (draws
            from the fitted Normal; ELBO trace in `sample_stats["elbo"]`).
            Either with `posterior_predictive=True` also draws one replicate
            of `y` per draw.

    Returns:
        `arviz.InferenceData`: posterior `intercept`, `coef` (dim `feature`),
        the auxiliary parameters (`sigma`, `nu`, `phi`), the group-level
        effects; `sample_stats`; pointwise `log_likelihood`; `observed_data`;
        `constant_data` (`x`, `offset`, group indices); `sampler_state` (NUTS);
        optionally `posterior_predictive`. `glm_predictive(idata, x_new)` predicts.

    Example:
    >>> import numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 1))
    >>> y = rng.poisson(np.exp(0.5 + 0.8 * x[:, 0]))
    >>> nuts = probnn.bayes.NUTS(num_chains=2, num_samples=200, num_warmup=200, seed=0, verbose=0)
    >>> idata = probnn.bayes.glm(x, y, family="poisson", sampler=nuts)
    >>> round(float(idata.posterior["coef"].mean()), 1)
    0.8
    """
    sampler = check_sampler(_OWNER, sampler)
    groups = groups if isinstance(groups, Groups) else Groups(groups)
    if isinstance(x, str):
        from probnn.bayes.formula import design_from_formula

        if y is not None or groups.effects != "intercept":
            raise ValueError(
                f"{_OWNER}: with a formula, write the outcome and the varying "
                f"slopes in it, not as y= or Groups(effects=)"
            )
        spec = design_from_formula(_OWNER, x, data, trials, offset, groups.labels, feature_names)
        x, y, trials, offset, labels, effects, feature_names = spec
        groups = Groups(labels, effects)
    elif data is not None:
        raise ValueError(f"{_OWNER}: data= is for the formula form; pass x and y as arrays")
    if y is None:
        raise ValueError(f"{_OWNER}: y is missing")
    family = get_family(_OWNER, family)
    x, names = _columns(_OWNER, x, feature_names)
    n, p = x.shape
    y, trials = _outcome(_OWNER, family, y, trials, n)
    offset = _per_row(_OWNER, "offset", offset, n, 0.0)
    factors = _factors(_OWNER, groups.labels, groups.effects, names, n)
    model = Model(family, p, factors)
    user = _check_priors(_OWNER, priors, model)
    fit = _Fit(model, x, y, offset, trials, names)
    rng = np.random.default_rng(sampler.seed)
    init = rng.uniform(-2.0, 2.0, size=(sampler.num_chains, model.dim))
    predictive_fn = fit.predictive(int(rng.integers(2**31 - 1))) if sampler.posterior_predictive else None
    key = ("glm", family.name, n, p, tuple((f.prefix, len(f.levels), f.slopes) for f in factors))
    return run_and_convert(
        _OWNER,
        lambda u, *d: model.log_prob(u, d, user),
        init,
        sampler_seeded(sampler, rng),
        fit.conversion(user, predictive_fn),
        data=fit.data,
        cache_key=None if user else key,
    )


class _Fit:
    """One data set under a `Model`: the program's inputs and the conversions of its draws."""

    def __init__(self, model, x, y, offset, trials, names):
        self.model, self.x, self.y, self.names = model, x, y, names
        self.offset, self.trials = offset, trials
        self.xm, sx = x.mean(axis=0), x.std(axis=0, ddof=1)
        scaled = model.family.continuous_scale
        loc0, s = (y.mean(), y.std(ddof=1)) if scaled else (0.0, 1.0)
        self.data = (
            tf.constant(x - self.xm),
            tf.constant(y),
            tf.constant(offset),
            tf.constant(np.ones_like(y) if trials is None else trials),
            tf.constant(loc0, tf.float64),
            tf.constant(s, tf.float64),
            tf.constant(sx),
            *[tf.constant(f.codes) for f in model.factors],
        )

    def _params(self, u):
        return self.model.constrain(u, *self.data[4:7])[0]

    def unpack(self, draws):
        """Flat draws `(chains, draws, dim)` -> the posterior dict on the original scale."""
        flat = tf.constant(draws.reshape(-1, self.model.dim))
        params = {k: v.numpy() for k, v in self._params(flat).items()}
        out = {"intercept": params["intercept_c"] - params["coef"] @ self.xm, "coef": params["coef"]}
        out.update({a: params[a] for a in self.model.family.aux})
        for f in self.model.factors:
            for part in ("intercept", "sd") + (("slope", "slope_sd") if f.slopes else ()):
                out[f"{f.prefix}_{part}"] = params[f"{f.prefix}_{part}"]
        return {k: v.reshape(draws.shape[:2] + v.shape[1:]) for k, v in out.items()}

    def _likelihood(self, u):
        params = self._params(u)
        xc, _, offset, trials = self.data[:4]
        eta = self.model.eta(params, xc, offset, self.data[7:])
        return self.model.likelihood(params, eta, trials)

    def pointwise(self, draws):
        fn = tf.function(lambda u: self._likelihood(u).log_prob(self.data[1][None]))
        return _batched_over_draws(fn, draws, self.model.dim)

    def predictive(self, seed):
        def draw(draws):
            fn = tf.function(lambda u: self._likelihood(u).sample(seed=(seed, 0)))
            return _batched_over_draws(fn, draws, self.model.dim)

        return draw

    def coords(self):
        coords = {"feature": self.names}
        for f in self.model.factors:
            coords[f.prefix] = list(f.levels)
            if f.slopes:
                coords[f"{f.prefix}_slope_feature"] = [self.names[j] for j in f.slopes]
        return coords

    def dims(self):
        dims = {"coef": ["feature"], "x": ["obs_id", "feature"], "offset": ["obs_id"], "trials": ["obs_id"]}
        for f in self.model.factors:
            dims[f"{f.prefix}_intercept"] = [f.prefix]
            dims[f"{f.prefix}_index"] = ["obs_id"]
            dims[f"{f.prefix}_slope"] = [f.prefix, f"{f.prefix}_slope_feature"]
            dims[f"{f.prefix}_slope_sd"] = [f"{f.prefix}_slope_feature"]
        return dims

    def constant_data(self):
        const = {"x": self.x, "offset": self.offset}
        if self.trials is not None:
            const["trials"] = self.trials
        const.update({f"{f.prefix}_index": f.codes for f in self.model.factors})
        return const

    def conversion(self, user, predictive_fn):
        """How the draws become the `InferenceData` (`probnn.bayes.inference_data.Conversion`)."""
        return Conversion(
            unpack=self.unpack,
            log_likelihood=self.pointwise,
            observed=self.y,
            coords=self.coords(),
            dims=self.dims(),
            posterior_predictive=predictive_fn,
            attrs=self.attrs(user),
            constant_data=self.constant_data(),
        )

    def attrs(self, user):
        defaults = self.model.default_priors(*self.data[4:7])
        used = {
            k: ("" if k in user else "default ") + describe(user.get(k, prior))
            for k, prior in defaults.items()
        }
        factors = [
            {"prefix": f.prefix, "slopes": [self.names[j] for j in f.slopes]} for f in self.model.factors
        ]
        return {
            "probnn_model": "glm",
            "family": self.model.family.name,
            "priors": json.dumps(used),
            "x_mean": json.dumps(self.xm.tolist()),
            "group_factors": json.dumps(factors),
        }


# ---------------------------------------------------------------------------- after the fit


def _glm_attrs(owner, posterior):
    group = getattr(posterior, "posterior", None)
    attrs = {**getattr(group, "attrs", {}), **(getattr(posterior, "attrs", None) or {})}
    if group is None or attrs.get("probnn_model") != "glm":
        raise ValueError(f"{owner}: posterior must be the InferenceData returned by probnn.bayes.glm")
    return group, attrs


def prior_summary(idata):
    """Print, and return as a dict, the priors a `glm` fit used (defaults marked as such).

    Example:
    >>> import arviz as az, json, numpy as np, probnn
    >>> idata = az.from_dict(posterior={"intercept": np.zeros((1, 2))}, attrs={
    ...     "probnn_model": "glm", "priors": json.dumps({"intercept": "default Normal(loc=0, scale=2.5)"})})
    >>> _ = probnn.bayes.prior_summary(idata)
    intercept  default Normal(loc=0, scale=2.5)
    """
    _, attrs = _glm_attrs("prior_summary", idata)
    priors = json.loads(attrs["priors"])
    width = max(len(k) for k in priors)
    for name, text in priors.items():
        print(f"{name:<{width}}  {text}")
    return priors


def _draws(group, name, index):
    values = group[name].values
    return values.reshape((-1,) + values.shape[2:])[index]


def _group_effect(group, factor, labels, xc, index, rng):
    """The group terms of the linear predictor `(n, K)` at new rows; new levels are drawn."""
    prefix, slopes = factor["prefix"], factor["slopes"]
    levels = list(group[f"{prefix}_intercept"].coords[prefix].values)
    effects = [_draws(group, f"{prefix}_intercept", index)]  # (K, G)
    sds = [_draws(group, f"{prefix}_sd", index)[:, None]]  # (K, 1)
    if slopes:
        effects.append(_draws(group, f"{prefix}_slope", index))  # (K, G, q)
        sds.append(_draws(group, f"{prefix}_slope_sd", index)[:, None, :])
    labels = np.asarray(labels).tolist()
    new = sorted({v for v in labels if v not in levels}, key=str)
    as_text = {str(v): v for v in np.asarray(levels).tolist()}
    mistyped = [v for v in new if str(v) in as_text]
    if mistyped:  # numpy turns labels of mixed types ([10, "new"]) into strings: "10" is not 10
        raise ValueError(
            f"glm_predictive: group label {mistyped[0]!r} matches the fitted level "
            f"{as_text[str(mistyped[0])]!r} only as text; pass labels of the fitted levels' type "
            "(a list mixing numbers and strings becomes all strings)"
        )
    if new:  # draws from the group-level distribution, one per posterior draw and new level
        for k, (effect, sd) in enumerate(zip(effects, sds)):
            shape = (effect.shape[0], len(new)) + effect.shape[2:]
            effects[k] = np.concatenate([effect, sd * rng.standard_normal(shape)], axis=1)
    codes = np.array([(levels + new).index(v) for v in labels])
    eta = effects[0][:, codes].T
    if slopes:
        eta = eta + np.einsum("kni,ni->nk", effects[1][:, codes], xc[:, slopes])
    return eta


def glm_predictive(posterior, x, *, groups=None, offset=None, trials=None, num_draws=None, seed=None):
    """The posterior predictive distribution of a `glm` fit at new rows `x`.

    Rows of groups the model has not seen get group effects drawn from the
    group-level distribution (Normal(0, group_sd) per posterior draw).

    Args:
        posterior: the `InferenceData` returned by `probnn.bayes.glm`.
        x: inputs `(n, features)`.
        groups: the rows' group labels, as given to `glm` (needed when the
            model has group-level effects).
        offset, trials: per row, as for `glm`.
        num_draws: None for every draw, or K evenly spaced draws.
        seed: seed for the new groups' effects.

    Returns:
        The uniform mixture over the draws (components on axis 1), batch shape
        `(n,)`, event shape `(1,)`.

    Example:
    >>> import arviz as az, json, numpy as np, probnn
    >>> idata = az.from_dict(posterior={"intercept": np.zeros((1, 3)), "coef": np.ones((1, 3, 1))},
    ...                      attrs={"probnn_model": "glm", "family": "poisson",
    ...                             "x_mean": "[0.0]", "group_factors": "[]"})
    >>> dist = probnn.bayes.glm_predictive(idata, np.log([[2.0], [5.0]]))
    >>> np.round(dist.mean().numpy()[:, 0], 3)
    array([2., 5.])
    """
    owner = "glm_predictive"
    group, attrs = _glm_attrs(owner, posterior)
    family = get_family(owner, attrs["family"])
    coef = group["coef"].values
    total, p = coef.shape[0] * coef.shape[1], coef.shape[-1]
    x = check_finite(owner, "x", x).astype(np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] != p:
        raise ValueError(f"{owner}: x must have shape (n, {p}), got {x.shape}")
    n = len(x)
    index = np.arange(total)
    if num_draws is not None:
        if isinstance(num_draws, bool) or int(num_draws) != num_draws or not 1 <= num_draws <= total:
            raise ValueError(f"{owner}: num_draws must be an integer in [1, {total}], got {num_draws!r}")
        index = np.round(np.linspace(0, total - 1, int(num_draws))).astype(int)
    eta = _draws(group, "intercept", index)[None] + x @ _draws(group, "coef", index).T
    eta = eta + _per_row(owner, "offset", offset, n, 0.0)[:, None]
    factors = json.loads(attrs["group_factors"])
    columns = group_columns(owner, groups, n)
    if len(columns) != len(factors):
        raise ValueError(
            f"{owner}: the model has {len(factors)} grouping column(s); pass groups "
            f"with {len(factors)} column(s) of labels, got {len(columns)}"
        )
    xc = x - np.asarray(json.loads(attrs["x_mean"]))
    rng = np.random.default_rng(seed)
    for factor, (name, labels) in zip(factors, columns):
        if len(np.asarray(labels)) != n:
            raise ValueError(f"{owner}: groups column {name!r} must have {n} labels")
        slopes = [list(group["coef"].coords["feature"].values).index(s) for s in factor["slopes"]]
        eta = eta + _group_effect(group, {**factor, "slopes": slopes}, labels, xc, index, rng)
    if family.name == "binomial" and trials is None:
        raise ValueError(f"{owner}: family 'binomial' needs trials")
    trials = None if trials is None else _per_row(owner, "trials", trials, n, 1)[:, None, None]
    aux = {a: _draws(group, a, index)[None, :, None] for a in family.aux}
    components = tfd.Independent(
        family.distribution(tf.constant(eta[..., None]), aux, trials), reinterpreted_batch_ndims=1
    )
    return tfd.MixtureSameFamily(tfd.Categorical(logits=np.zeros(eta.shape)), components)
