"""NUTS over all trainable weights of a Keras model that ends in a probnn head."""

import numbers

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.bayes.inference_data import Conversion, check_finite, run_and_convert
from probnn.bayes.settings import check_sampler, sampler_seeded
from probnn.functional import in_chunks, stacked_call
from probnn.heads.base import find_head

tfd = tfp.distributions

_OWNER = "sample"
_DRAW_BATCH = 256  # posterior draws per vectorised forward pass after sampling


def _find_head(model, owner):
    try:
        return find_head(model)
    except (ValueError, AttributeError) as err:
        raise ValueError(
            f"{owner}: the model must end in a probnn distribution head "
            f"(e.g. probnn.heads.NormalHead()); {err}"
        ) from None


def _weight_names(variables):
    """Posterior variable names `<layer>_<weight>` and their dims, in variable order."""
    names, dims = [], []
    for v in variables:
        parts = v.path.split("/")
        name = "_".join(parts[-2:])
        base, k = name, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
        layer, weight = (parts[-2] if len(parts) > 1 else parts[-1]), parts[-1]
        if weight == "kernel" and len(v.shape) == 2:
            dims.append([f"{layer}_in", f"{layer}_out"])
        elif weight == "bias" and len(v.shape) == 1:
            dims.append([f"{layer}_out"])
        else:
            dims.append([f"{name}_dim_{i}" for i in range(len(v.shape))])
    return names, dims


def _prior_terms(prior, variables, names, owner):
    """One elementwise prior distribution per weight (default Normal(0, 1))."""

    def one(spec, where):
        if isinstance(spec, tfd.Distribution):
            if spec.batch_shape.rank != 0 or spec.event_shape.rank != 0:
                raise ValueError(
                    f"{owner}: prior{where} must be a scalar distribution applied to each weight, "
                    f"got batch shape {spec.batch_shape} and event shape {spec.event_shape}"
                )
            return spec
        if (
            isinstance(spec, (int, float, np.floating, np.integer))
            and not isinstance(spec, bool)
            and float(spec) > 0
        ):
            return tfd.Normal(np.float32(0.0), np.float32(spec))
        raise ValueError(
            f"{owner}: prior{where} must be a positive Normal scale or a scalar "
            f"tfd.Distribution, got {spec!r}"
        )

    if not isinstance(prior, dict):
        return [one(prior, "")] * len(variables)
    terms = [tfd.Normal(np.float32(0.0), np.float32(1.0))] * len(variables)
    for key, spec in prior.items():
        hits = [
            i
            for i, (v, n) in enumerate(zip(variables, names))
            if key in (n, v.path) or key in v.path.split("/")[:-1]
        ]
        if not hits:
            raise ValueError(
                f"{owner}: prior key {key!r} matches no weight; expected a layer name or one of {names}"
            )
        for i in hits:
            terms[i] = one(spec, f"[{key!r}]")
    return terms


def _as_inputs(x, owner):
    flat = tf.nest.flatten(x)
    if not flat:
        raise ValueError(f"{owner}: x is empty")
    flat = [check_finite(owner, "x", a) for a in flat]
    lengths = {len(a) for a in flat}
    if len(lengths) != 1:
        raise ValueError(f"{owner}: the inputs in x have different numbers of rows {lengths}")
    flat = [a.astype(keras.config.floatx()) if np.issubdtype(a.dtype, np.floating) else a for a in flat]
    return tf.nest.pack_sequence_as(x, flat), lengths.pop()


def _as_targets(y, head, n, owner):
    y = check_finite(owner, "y", y)
    if len(y) != n:
        raise ValueError(f"{owner}: x has {n} rows but y has {len(y)}")
    event = tuple(head.event_shape)
    if y.ndim == 1 and event == (1,):
        y = y[:, None]
    if y.shape[1:] != event:
        raise ValueError(
            f"{owner}: y must have shape (n,) + {event} for {type(head).__name__}, got {y.shape}"
        )
    if np.issubdtype(y.dtype, np.floating):
        y = y.astype(keras.config.floatx())
    return y


class _Flat:
    """Flattening of a model's trainable weights to one state vector and back."""

    def __init__(self, variables):
        self.shapes = [tuple(v.shape) for v in variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.dim = sum(self.sizes)

    def unflatten(self, theta):
        """`(S, dim)` -> list of `(S,) + shape` tensors."""
        parts = tf.split(theta, self.sizes, axis=-1)
        lead = tf.shape(theta)[:-1]
        return [tf.reshape(p, tf.concat([lead, s], 0)) for p, s in zip(parts, self.shapes)]

    def flatten(self, weights):
        return np.concatenate([np.reshape(w, (w.shape[0], -1)) for w in weights], axis=-1)


def _batched_over_draws(fn, draws, dim):
    """Apply a compiled `(B, dim) -> (B, ...)` function to `(chains, draws, dim)` in fixed batches."""
    chains, num = draws.shape[:2]
    result = in_chunks(lambda block: fn(tf.constant(block)), draws.reshape(chains * num, dim), _DRAW_BATCH)
    return result.reshape((chains, num) + result.shape[1:])


def sample(model, x, y, *, prior=1.0, sampler=None, init_jitter=0.1):
    """Sample the posterior over all trainable weights of `model` with NUTS.

    The log density is the head's full-batch log likelihood of `y` given `x`
    plus the log prior of every trainable weight. All chains run in one
    vectorised XLA program (`probnn.functional.stacked_call` over the chains,
    and over the posterior draws afterwards for the log likelihood);
    warm-up adapts each chain's step size (dual averaging, target acceptance
    `target_accept`) and diagonal mass matrix in Stan's windows (see
    `probnn.bayes.nuts`). Non-trainable state (e.g. BatchNorm statistics) is
    held fixed; layers run with `training=False` (dropout off).

    Args:
        model: a built Keras model whose output is a probnn head's parameters.
        x: inputs (array, or the nested structure the model takes), finite.
        y: targets, shape `(n,) + head.event_shape` (or `(n,)` for a scalar event).
        prior: the prior of the weights, independent for every scalar weight:
            a positive number s (Normal(0, s); default s = 1), a scalar
            `tfd.Distribution`, or a dict from a layer name, a weight path or
            a posterior variable name to either (weights not named in the dict
            get Normal(0, 1)).
        sampler: a `probnn.bayes.NUTS` (default `NUTS()`: 4 chains of 1,000
            warm-up and 1,000 kept draws; `NUTS(initial_state=idata)` continues
            an earlier run), or variational inference over the same weights,
            `probnn.bayes.VI("advi")` (mean-field Normal) or `VI("fullrank")`
            (full-covariance Normal; its Cholesky factor has dim^2 / 2
            parameters: small models only), starting at the model's current
            weights (`probnn.bayes.vi`); the draws come from the approximation
            and its ELBO trace is `sample_stats["elbo"]`. Either with
            `posterior_predictive=True` also draws one `y` per posterior draw.
        init_jitter: each chain starts at the model's current weights plus
            independent Normal(0, init_jitter**2) noise (train the model first
            for a good start).

    Returns:
        `arviz.InferenceData` with groups `posterior` (one variable per weight,
        named `<layer>_<weight>`, dims `<layer>_in`/`<layer>_out` for kernels
        and biases), `sample_stats` (`lp`, `energy`, `diverging`,
        `acceptance_rate`, `step_size`, `tree_depth`, `n_steps`),
        `log_likelihood` (`y`, per observation: `arviz.loo` and `arviz.waic`
        work), `observed_data`, `sampler_state` (NUTS: where to continue from)
        and, on request, `posterior_predictive`.

    Raises:
        ValueError: NaN/inf in `x` or `y`, a model without a head, bad keywords.

    Warns:
        RuntimeWarning: with the number of divergent transitions, if any.

    Example:
    >>> import keras, numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 1)).astype("float32")
    >>> y = 2 * x[:, 0] + rng.normal(size=50).astype("float32")
    >>> model = keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead(name="head")])
    >>> nuts = probnn.bayes.NUTS(num_chains=2, num_samples=100, num_warmup=100, seed=0, verbose=0)
    >>> idata = probnn.bayes.sample(model, x, y, sampler=nuts)
    >>> sorted(idata.posterior.data_vars)
    ['head_bias', 'head_kernel']
    >>> idata.posterior["head_kernel"].dims
    ('chain', 'draw', 'head_in', 'head_out')
    """
    head = _find_head(model, _OWNER)
    sampler = check_sampler(_OWNER, sampler)
    if isinstance(init_jitter, bool) or not isinstance(init_jitter, numbers.Real) or not init_jitter >= 0:
        raise ValueError(f"{_OWNER}: init_jitter must be >= 0, got {init_jitter!r}")
    x, n = _as_inputs(x, _OWNER)
    y = _as_targets(y, head, n, _OWNER)
    if not model.built:
        model(tf.nest.map_structure(lambda a: a[:1], x))
    variables = list(model.trainable_variables)
    if not variables:
        raise ValueError(f"{_OWNER}: model {model.name!r} has no trainable weights to sample")
    names, dims_list = _weight_names(variables)
    posterior = _WeightPosterior(model, head, x, y, _prior_terms(prior, variables, names, _OWNER), names)
    rng = np.random.default_rng(sampler.seed)
    current = np.concatenate([np.reshape(v.numpy(), -1) for v in variables])
    init = current[None] + float(init_jitter) * rng.standard_normal((sampler.num_chains, posterior.flat.dim))
    init = init.astype(keras.config.floatx())
    predictive_fn = (
        posterior.predictive(int(rng.integers(2**31 - 1))) if sampler.posterior_predictive else None
    )
    conversion = Conversion(
        unpack=posterior.unpack,
        log_likelihood=posterior.pointwise,
        observed=y,
        dims={name: d for name, d in zip(names, dims_list)},
        posterior_predictive=predictive_fn,
        attrs={"probnn_weights": ",".join(names)},
    )
    return run_and_convert(_OWNER, posterior.log_prob, init, sampler_seeded(sampler, rng), conversion)


class _WeightPosterior:
    """The log posterior density of a model's weights, and the conversions of its draws."""

    def __init__(self, model, head, x, y, priors, names):
        self.model, self.head, self.x, self.y = model, head, x, y
        self.priors, self.names = priors, names
        self.flat = _Flat(list(model.trainable_variables))
        self.y_t = tf.constant(y)[None]
        self._pointwise = tf.function(lambda th: head.log_prob(self._params(th), self.y_t), jit_compile=True)

    def _params(self, theta):
        return stacked_call(self.model, self.flat.unflatten(theta), self.x)

    def log_prob(self, theta):  # the model and data are constants of this program
        weights = self.flat.unflatten(theta)
        loglik = tf.reduce_sum(
            self.head.log_prob(stacked_call(self.model, weights, self.x), self.y_t), axis=-1
        )
        logprior = tf.add_n(
            [
                tf.reduce_sum(tf.reshape(p.log_prob(w), [tf.shape(w)[0], -1]), axis=-1)
                for p, w in zip(self.priors, weights)
            ]
        )
        lp = loglik + logprior
        return tf.where(tf.math.is_nan(lp), tf.constant(-np.inf, lp.dtype), lp)

    def unpack(self, draws):
        parts = np.split(draws, np.cumsum(self.flat.sizes)[:-1], axis=-1)
        return {
            name: p.reshape(draws.shape[:2] + shape)
            for name, p, shape in zip(self.names, parts, self.flat.shapes)
        }

    def pointwise(self, draws):
        return _batched_over_draws(self._pointwise, draws, self.flat.dim)

    def predictive(self, seed):
        def draw(draws):
            draw_y = tf.function(lambda th: self.head.distribution(self._params(th)).sample(seed=(seed, 1)))
            out = _batched_over_draws(draw_y, draws, self.flat.dim)
            return out.reshape(out.shape[:2] + self.y.shape)

        return draw
