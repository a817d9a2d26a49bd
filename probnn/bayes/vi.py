"""Variational inference: a Gaussian approximation of a log density, fitted by stochastic ELBO ascent.

`fit_vi(log_prob_fn, init, method=...)` fits, on the same flat unconstrained
state as `run_nuts` samples, either

- "advi": a mean-field Normal (`tfd.MultivariateNormalDiag`, the scales
  through a softplus), as Stan's ADVI (Kucukelbir et al. 2017), or
- "fullrank": a full-covariance Normal (`tfd.MultivariateNormalTriL`, the
  Cholesky factor through `tfb.FillScaleTriL`),

by maximising the ELBO estimated by `tfp.vi.monte_carlo_variational_loss`
(reparameterised draws, `_SAMPLE_SIZE` per step) with Adam, at a constant
learning rate for 80 % of the steps and then a cosine decay to 1 % of it (the
decay settles the parameters' jitter), all steps in one XLA-compiled `tf.while_loop` (kept for a later
call with the same `cache_key`: a warm start compiles nothing). The result
has the layout of `run_nuts`: draws `(chains, samples, dim)` from the fitted
approximation (independent draws; "chains" only split them into groups), the
log density of each draw, and the ELBO trace.

Convergence is judged on the trace at the constant learning rate: if the mean
ELBO of steps 70-80 % exceeds that of steps 60-70 % by more than three
standard errors (batch means) and more than 0.5 nats, the ELBO has not flattened and a
`RuntimeWarning` says so. The Pareto k-hat of
the importance ratios p/q over the draws (Yao et al. 2018, "Yes, but did it
work?") is reported too: above 0.7 the approximation misses the posterior's
shape and NUTS is the safer choice.
"""

import math
import time
import warnings

import arviz as az
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.bayes.cache import CompiledCache

tfb, tfd = tfp.bijectors, tfp.distributions

METHODS = ("advi", "fullrank")
_SAMPLE_SIZE = 16  # reparameterised draws per ELBO gradient
_LEARNING_RATE = 0.05  # Adam's initial step; the cosine schedule ends at 1 % of it
_INIT_SCALE = 0.1  # initial sd of every coordinate of the approximation
_DRAW_BATCH = 256
# At a constant learning rate a converged ELBO still wanders by ~0.3 nats (measured on a
# 5,000-row logistic regression): a smaller change is no evidence of progress.
_FLAT_NATS = 0.5
_CONSTANT = 0.8  # share of the steps at the full learning rate
_TRIL = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=None)


def surrogate(method, loc, raw_scale):
    """The approximating Normal from its unconstrained parameters."""
    if method == "advi":
        return tfd.MultivariateNormalDiag(loc, tf.math.softplus(raw_scale))
    return tfd.MultivariateNormalTriL(loc, _TRIL.forward(raw_scale))


def _initial_raw_scale(method, dim, dtype):
    scale = np.full(dim, _INIT_SCALE, dtype)
    if method == "advi":
        return tfb.Softplus().inverse(scale).numpy()
    return _TRIL.inverse(np.diag(scale)).numpy()


def _adam(param, grad, m, v, lr, t):
    """One Adam step downhill (Kingma & Ba 2015, default betas); a non-finite gradient is skipped."""
    finite = tf.reduce_all(tf.math.is_finite(grad))
    grad = tf.where(finite, grad, tf.zeros_like(grad))
    m_new = 0.9 * m + 0.1 * grad
    v_new = 0.999 * v + 0.001 * tf.square(grad)
    step = lr * (m_new / (1.0 - 0.9**t)) / (tf.sqrt(v_new / (1.0 - 0.999**t)) + 1e-8)
    keep = lambda new, old: tf.where(finite, new, old)  # noqa: E731
    return keep(param - step, param), keep(m_new, m), keep(v_new, v)


def _make_fit(log_prob_fn, method, num_steps, dtype):
    """The compiled optimisation: `num_steps` Adam steps on (loc, raw scale), ELBO trace."""

    @tf.function(jit_compile=True, autograph=False)
    def fit(loc, raw, seed, data):
        def negative_elbo(params, step_seed):
            q = surrogate(method, *params)
            return tfp.vi.monte_carlo_variational_loss(
                lambda z: log_prob_fn(z, *data), q, sample_size=_SAMPLE_SIZE, seed=step_seed
            )

        def body(i, params, m, v, trace):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = negative_elbo(params, tf.random.experimental.stateless_fold_in(seed, i))
            grads = tape.gradient(loss, params)
            t = tf.cast(i + 1, dtype)
            # Constant for the first 80 % of the steps, then a cosine down to 1 % of it.
            tail = tf.maximum(t - _CONSTANT * num_steps, 0.0) / ((1.0 - _CONSTANT) * num_steps)
            decay = 0.01 + 0.99 * 0.5 * (1.0 + tf.cos(math.pi * tail))
            updated = [
                _adam(p, g, a, b, _LEARNING_RATE * decay, t) for p, g, a, b in zip(params, grads, m, v)
            ]
            params, m, v = (tuple(u[k] for u in updated) for k in range(3))
            return i + 1, params, m, v, trace.write(i, -loss)

        params = (loc, raw)
        zeros = tuple(tf.zeros_like(p) for p in params)
        _, params, _, _, trace = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (tf.constant(0), params, zeros, zeros, tf.TensorArray(dtype, size=num_steps, element_shape=[])),
            maximum_iterations=num_steps,
        )
        return params, trace.stack()

    return fit


_FITS = CompiledCache(maxsize=8)  # compiled fits by model structure, for warm starts


def elbo_flattened(trace):
    """True if the ELBO had flattened by the end of the constant learning rate.

    The tenth of the steps just before the decay starts (70-80 % of the trace)
    must improve on the tenth before it by at most 3 standard errors or
    `_FLAT_NATS` nats. The standard errors come from batch means (10 batches
    per window): at a constant learning rate the ELBO wanders in autocorrelated
    excursions, which the naive standard error would take for a trend. The
    decaying tail itself always looks flat, so it is not used.

    Example:
    >>> steps = np.arange(1000.0)
    >>> elbo_flattened(-100.0 / (1.0 + steps)), elbo_flattened(-100.0 + 0.05 * steps)
    (True, False)
    """
    k = max(len(trace) // 100, 1) * 10
    end = round(_CONSTANT * len(trace))
    if end < 2 * k:
        return True
    last, before = (trace[end - j * k : end - (j - 1) * k].reshape(10, -1).mean(axis=1) for j in (1, 2))
    se = math.sqrt(np.var(last, ddof=1) / 10 + np.var(before, ddof=1) / 10)
    return bool(last.mean() - before.mean() <= max(3.0 * se, _FLAT_NATS))


def _in_batches(fn, flat):
    """`fn` (eager) over blocks of `_DRAW_BATCH` rows of `flat`, concatenated."""
    return np.concatenate(
        [
            np.asarray(fn(tf.constant(flat[start : start + _DRAW_BATCH])))
            for start in range(0, len(flat), _DRAW_BATCH)
        ]
    )


def fit_vi(log_prob_fn, init, settings, *, data=(), cache_key=None, owner="fit_vi"):
    """Fit a Gaussian approximation to `log_prob_fn` and draw from it.

    Args:
        log_prob_fn: as for `run_nuts`: `(batch, dim)` states (then the tensors
            of `data`) to a `(batch,)` log density.
        init: `(chains, dim)` initial states; the approximation starts at
            `init[0]` with sd `_INIT_SCALE` in every coordinate, and
            `chains * num_samples` draws are returned as `(chains, num_samples, dim)`.
        settings: a `probnn.bayes.VI`: `method` "advi" (mean-field) or
            "fullrank", `num_steps` optimisation steps, `num_samples`, `seed`.
        cache_key: as for `run_nuts` (the compiled loop is kept, among the 8
            most recently used, and reused).

    Returns:
        `(draws, stats, info)` as `run_nuts`: stats holds `lp` (the log density
        of each draw); info the ELBO `trace`, `pareto_k`, `converged`, the
        fitted `loc` and `scale` (or `scale_tril`) and `fit_seconds`.
    """
    method, num_steps, num_samples, seed = (
        settings.method,
        settings.num_steps,
        settings.num_samples,
        settings.seed,
    )
    init = np.asarray(init)
    num_chains, dim = init.shape
    dtype = tf.as_dtype(init.dtype)
    fit = _FITS.get_or_build(
        None if cache_key is None else (cache_key, method, num_steps, dim, dtype.name),
        lambda: _make_fit(log_prob_fn, method, num_steps, dtype),
    )
    data = tuple(tf.convert_to_tensor(d) for d in data)
    seed = int(np.random.default_rng().integers(2**31 - 1)) if seed is None else int(seed)
    base = tf.constant([seed % (2**31 - 1), 20261204], tf.int32)
    t0 = time.perf_counter()
    (loc, raw), trace = fit(
        tf.constant(init[0]), tf.constant(_initial_raw_scale(method, dim, init.dtype)), base, data
    )
    trace = trace.numpy()
    fit_seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(loc.numpy())) or not np.all(np.isfinite(raw.numpy())):
        raise FloatingPointError(
            f"{owner}: the variational fit diverged to non-finite "
            f"parameters; standardise the inputs or use sampler=probnn.bayes.NUTS()"
        )
    q = surrogate(method, loc, raw)
    total = num_chains * int(num_samples)
    flat = q.sample(total, seed=tf.random.experimental.stateless_fold_in(base, -1)).numpy()
    lp = _in_batches(lambda z: log_prob_fn(z, *data), flat)
    log_q = q.log_prob(flat).numpy()
    _, pareto_k = az.psislw(lp - log_q)
    info = {
        "elbo": trace,
        "pareto_k": float(pareto_k),
        "converged": elbo_flattened(trace),
        "loc": loc.numpy(),
        "fit_seconds": fit_seconds,
        ("scale" if method == "advi" else "scale_tril"): q.scale.to_dense().numpy()
        if method == "fullrank"
        else tf.math.softplus(raw).numpy(),
    }
    _warn(owner, method, info, int(num_steps))
    stats = {"lp": lp.reshape(num_chains, int(num_samples))}
    return flat.reshape(num_chains, int(num_samples), dim), stats, info


def _warn(owner, method, info, num_steps):
    if not info["converged"]:
        warnings.warn(
            f"{owner}: the ELBO of method={method!r} had not flattened after {num_steps} steps "
            f"(steps 70-80 %, before the learning rate decays, still improved it by more than 3 "
            f"standard errors and 0.5 nats); increase VI(num_steps=).",
            RuntimeWarning,
            stacklevel=4,
        )
    if info["pareto_k"] > 0.7:
        warnings.warn(
            f"{owner}: Pareto k-hat of the importance ratios p/q is {info['pareto_k']:.2f} > 0.7: "
            f"the {method} approximation misses the posterior's shape (Yao et al. 2018); "
            f"its means may be usable, its tails and sds are not; use sampler=probnn.bayes.NUTS() for those.",
            RuntimeWarning,
            stacklevel=4,
        )
