"""Predictive samples of any model as arviz `InferenceData`.

Variational layers, ensembles, MC dropout and MCMC all end in samples of the
target given the inputs. `from_predictive` puts them in the shape arviz
documents (`posterior_predictive` with dims `(chain, draw, obs_id, ...)` and
`observed_data`), so `arviz.plot_ppc`, `arviz.loo_pit` and `arviz.bpv` work on
them without knowing which model made them.
"""

import arviz as az
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import error, finite_array, positive_int

tfd = tfp.distributions

_OWNER = "from_predictive"


def _finite(name, array):
    """`array` as a numeric numpy array (its dtype kept) with no NaN or infinite value."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise error(_OWNER, f"{name} must be numeric, got dtype {array.dtype}")
    return finite_array(_OWNER, name, array, dtype=None)


def _match_observed(samples, observed, lead_ndims=None):
    """Split `samples` into leading (chain, draw) axes and the observation shape."""
    obs_shape = observed.shape
    k = len(obs_shape)
    shape = samples.shape
    # A head's scalar event comes as a trailing axis of 1 ((draws, n, 1) for y of shape (n,)).
    if k and shape[-k:] != obs_shape and shape[-1] == 1 and shape[-k - 1 : -1] == obs_shape:
        samples = samples[..., 0]
        shape = samples.shape
    if shape[len(shape) - k :] != obs_shape or len(shape) - k not in (1, 2):
        raise ValueError(
            f"{_OWNER}: samples of shape {shape} do not match observed of shape {obs_shape}; "
            f"expected (draws,) + {obs_shape} or (chains, draws) + {obs_shape}"
        )
    return samples


def _distribution_samples(dist, observed, num_samples, seed):
    """Draws (num_samples, n, ...) and, when `observed` is given, each draw's log likelihood.

    For a mixture over posterior draws / members / samples (probnn's predictive
    mixtures: component axis 1), draw d comes from component d mod K, and its
    log likelihood is that component's, so the draws are the posterior draws
    arviz expects (LOO weights then mean something). For any other
    distribution every draw has the same log likelihood.
    """
    if isinstance(dist, tfd.MixtureSameFamily):
        comps = dist.components_distribution
        k = int(comps.batch_shape[-1])
        reps = -(-num_samples // k)
        draws = comps.sample(reps, seed=seed)  # (reps, n, K, *event)
        perm = [0, 2, 1] + list(range(3, len(draws.shape)))
        draws = tf.reshape(
            tf.transpose(draws, perm), [reps * k] + draws.shape[1:2].as_list() + draws.shape[3:].as_list()
        )[:num_samples]
        loglik = None
        if observed is not None:
            y = _as_event(observed, dist)
            lp = comps.log_prob(tf.expand_dims(y, len(dist.batch_shape)))  # (n, K)
            lp = tf.transpose(lp)  # (K, n)
            loglik = tf.tile(lp, [reps, 1])[:num_samples]
        return np.asarray(draws), (None if loglik is None else np.asarray(loglik))
    draws = dist.sample(num_samples, seed=seed)
    loglik = None
    if observed is not None:
        lp = dist.log_prob(_as_event(observed, dist))
        loglik = np.broadcast_to(np.asarray(lp), (num_samples,) + tuple(lp.shape))
    return np.asarray(draws), loglik


def _as_event(observed, dist):
    y = tf.convert_to_tensor(observed, dtype=dist.dtype)
    want = dist.batch_shape.rank + dist.event_shape.rank
    if y.shape.rank == want - 1 and dist.event_shape.rank == 1 and dist.event_shape[0] == 1:
        y = y[..., None]
    return y


def from_predictive(
    predictive,
    observed=None,
    *,
    num_samples=500,
    seed=None,
    var_name="y",
    log_likelihood=None,
    coords=None,
    dims=None,
):
    """Turn predictive samples (or a predictive distribution) into `arviz.InferenceData`.

    Args:
        predictive: either an array of predictive samples, shape
            `(draws,) + obs_shape` or `(chains, draws) + obs_shape` (a trailing
            axis of 1 for a scalar event is dropped to match `observed`), or a
            `tfd.Distribution` with batch shape `(n,)` (e.g. from
            `probnn.predict_distribution`), from which `num_samples` draws are
            taken. For a mixture over posterior draws / ensemble members
            (`MixtureSameFamily`, component axis 1), draw d comes from
            component d mod K and gets that component's log likelihood.
        observed: the observed targets, shape `obs_shape` (optional; needed by
            `plot_ppc`'s observed line and `loo_pit`).
        num_samples: draws taken from a distribution (ignored for arrays).
        seed: seed for the draws from a distribution (int or None).
        var_name: name of the variable in both groups.
        log_likelihood: optional pointwise log likelihood of `observed`, same
            leading axes as the samples and shape `obs_shape` after them; with
            a distribution and `observed` it is computed.
        coords, dims: passed to `arviz.from_dict`; by default the observation
            axis is named `obs_id`.

    Returns:
        `arviz.InferenceData` with groups `posterior_predictive`, and with
        `observed` also `observed_data` (and `log_likelihood` when known).
        There is no `posterior` group (no parameters were sampled), so give
        `arviz.loo_pit` its weights: the draws are independent (reff = 1),
        `lw, _ = arviz.psislw(-idata.log_likelihood["y"].stack(
        __sample__=("chain", "draw")), reff=1.0)`, then
        `arviz.loo_pit(idata, y="y", log_weights=lw)`.

    Example:
    >>> import arviz as az, numpy as np, probnn
    >>> y = np.random.default_rng(0).normal(size=20)
    >>> draws = np.random.default_rng(1).normal(size=(200, 20))
    >>> idata = probnn.bayes.from_predictive(draws, y)
    >>> sorted(idata.groups()), idata.posterior_predictive["y"].shape
    (['observed_data', 'posterior_predictive'], (1, 200, 20))
    """
    if not isinstance(var_name, str) or not var_name:
        raise ValueError(f"{_OWNER}: var_name must be a non-empty string, got {var_name!r}")
    if observed is not None:
        observed = _finite("observed", observed)
    if isinstance(predictive, tfd.Distribution):
        num_samples = positive_int(_OWNER, "num_samples", num_samples, whole_floats=True)
        samples, computed = _distribution_samples(predictive, observed, num_samples, seed)
        if log_likelihood is None:
            log_likelihood = computed
    else:
        samples = _finite("predictive samples", predictive)
    if observed is not None:
        samples = _match_observed(samples, observed)
        lead = samples.ndim - observed.ndim
    else:
        lead = 1
        if samples.ndim < 2:
            raise ValueError(f"{_OWNER}: expected samples of shape (draws, n, ...), got {samples.shape}")
    if lead == 1:
        samples = samples[None]
    if log_likelihood is not None:
        log_likelihood = _finite("log_likelihood", log_likelihood)
        if lead == 1:
            log_likelihood = log_likelihood[None]
        if log_likelihood.shape != samples.shape[: log_likelihood.ndim] or log_likelihood.ndim < 3:
            raise ValueError(
                f"{_OWNER}: log_likelihood of shape {log_likelihood.shape} does not match the "
                f"samples' (chains, draws, n) = {samples.shape[:3]}"
            )
    extra = samples.ndim - 3
    if dims is None:
        dims = {var_name: ["obs_id"] + [f"{var_name}_dim_{i}" for i in range(extra)]}
    groups = {"posterior_predictive": {var_name: samples}}
    if observed is not None:
        groups["observed_data"] = {var_name: observed}
    idata = az.from_dict(**groups, coords=coords, dims=dims)
    if log_likelihood is not None:
        # A multivariate event has one log likelihood per observation: its own dims.
        ll_dims = {var_name: list(dims[var_name])[: log_likelihood.ndim - 2]}
        idata.extend(az.from_dict(log_likelihood={var_name: log_likelihood}, coords=coords, dims=ll_dims))
    return idata
