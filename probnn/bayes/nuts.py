"""The sampling engine: vectorised NUTS with Stan's windowed warm-up, compiled with XLA.

`run_nuts(log_prob_fn, init, ...)` samples a log density over a flat state of
shape `(chains, dim)`, all chains in one batched program.

- Transition: `tfp.mcmc.NoUTurnSampler` (multinomial NUTS with the generalised
  U-turn criterion, as in Stan and NumPyro), all chains stepped together.
- Diagonal mass matrix: instead of TFP's preconditioned kernels (whose
  momentum is a joint distribution of linear-operator Normals, evaluated at
  every leapfrog step), the chains run on `z = theta / scale` with a unit mass
  matrix. That is the same dynamics as a diagonal metric `scale**2` and costs
  one multiply per gradient. Each chain has its own metric and step size.
- Warm-up: Stan's windows (`tfp.experimental.mcmc.windowed_adaptive_nuts`
  uses the same scheme): a fast initial buffer (75 steps at 1,000 warm-up
  steps), slow windows of 25, 50, 100, 200, 500 steps at whose ends each
  chain's metric is re-estimated from the window's draws (shrunk a little towards
  the previous metric), and a 50-step terminal buffer. Dual averaging (Hoffman & Gelman
  2014, Stan's constants) adapts the step size throughout and restarts after
  each metric update.
- One XLA program runs up to `_CHUNK` transitions; Python calls it repeatedly
  (same compiled program for warm-up and sampling: the metric, step size and
  adaptation switch are its inputs), and reports progress between calls.
"""

import math
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

_CHUNK = 50
# Stan's dual-averaging constants.
_GAMMA, _T0, _KAPPA = 0.05, 10.0, 0.75


def warmup_schedule(num_warmup):
    """Stan's warm-up windows as a list of `(length, kind)`, kind "fast" or "slow".

    Example:
    >>> warmup_schedule(1000)
    [(75, 'fast'), (25, 'slow'), (50, 'slow'), (100, 'slow'), (200, 'slow'), (500, 'slow'), (50, 'fast')]
    """
    if num_warmup < 20:
        return [(num_warmup, "fast")] if num_warmup else []
    init, term, base = 75, 50, 25
    if init + term + base > num_warmup:
        init, term = int(0.15 * num_warmup), int(0.1 * num_warmup)
        base = num_warmup - init - term
    windows, start, size = [], init, base
    end = num_warmup - term
    while start < end:
        if start + size + 2 * size > end:  # the next window would not fit: stretch this one
            size = end - start
        windows.append((size, "slow"))
        start += size
        size *= 2
    return [(init, "fast")] * bool(init) + windows + [(term, "fast")] * bool(term)


class _Progress:
    """A one-line progress bar on a terminal, plain lines (every ~10 %) otherwise."""

    def __init__(self, total, num_chains, verbose, stream=None):
        self.total, self.num_chains, self.verbose = total, num_chains, verbose
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.next_line = 0.0

    def update(self, done, warmup, step_size, divergences, mean_leapfrogs):
        if not self.verbose:
            return
        frac = done / max(self.total, 1)
        phase = "warm-up" if warmup else "sampling"
        text = (
            f"{done}/{self.total} ({phase}) {time.perf_counter() - self.start:.1f} s, "
            f"step size {np.mean(step_size):.3g}, {mean_leapfrogs:.0f} leapfrogs/step, "
            f"{divergences} divergent"
        )
        if self.tty:
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            end = "\n" if done >= self.total else ""
            self.stream.write(f"\rNUTS, {self.num_chains} chains [{bar}] {text}{end}")
            self.stream.flush()
        elif frac >= self.next_line or done >= self.total:
            self.stream.write(f"NUTS, {self.num_chains} chains: {text}\n")
            self.stream.flush()
            self.next_line = frac + 0.1


def _make_chunk(log_prob_fn, num_chains, dim, dtype, max_tree_depth, target_accept):
    """The compiled transition loop: up to `_CHUNK` NUTS steps with optional dual averaging."""
    chunk = _CHUNK

    @tf.function(jit_compile=True, autograph=False)
    def run(theta, scale, step_size, da, adapt, num_steps, seed, data):
        def target(z):
            return log_prob_fn(z * scale, *data)

        kernel = tfp.mcmc.NoUTurnSampler(target, step_size=step_size[:, None], max_tree_depth=max_tree_depth)
        z = theta / scale
        results = kernel.bootstrap_results(z)
        arrays = {
            "theta": tf.TensorArray(dtype, size=chunk, element_shape=[num_chains, dim]),
            "lp": tf.TensorArray(dtype, size=chunk, element_shape=[num_chains]),
            "energy": tf.TensorArray(dtype, size=chunk, element_shape=[num_chains]),
            "acceptance_rate": tf.TensorArray(dtype, size=chunk, element_shape=[num_chains]),
            "step_size": tf.TensorArray(dtype, size=chunk, element_shape=[num_chains]),
            "diverging": tf.TensorArray(tf.bool, size=chunk, element_shape=[num_chains]),
            "n_steps": tf.TensorArray(tf.int32, size=chunk, element_shape=[num_chains]),
        }

        def body(i, z, results, eps, da, arrays):
            mu, h_bar, log_eps_bar, t = da
            results = results._replace(step_size=eps[:, None])
            z, results = kernel.one_step(z, results, seed=tf.random.experimental.stateless_fold_in(seed, i))
            accept = tf.exp(tf.minimum(results.log_accept_ratio, 0.0))
            accept = tf.where(tf.math.is_finite(accept), accept, tf.zeros_like(accept))
            # Dual averaging (Hoffman & Gelman 2014, Algorithm 5; Stan's constants).
            t_new = t + 1.0
            w = 1.0 / (t_new + _T0)
            h_new = (1.0 - w) * h_bar + w * (target_accept - accept)
            log_eps = mu - tf.sqrt(t_new) / _GAMMA * h_new
            eta = t_new**-_KAPPA
            log_eps_bar_new = eta * log_eps + (1.0 - eta) * log_eps_bar
            new_da = tuple(
                tf.where(adapt, new, old) for new, old in zip((mu, h_new, log_eps_bar_new, t_new), da)
            )
            new_eps = tf.where(adapt, tf.exp(log_eps), eps)
            values = {
                "theta": z * scale,
                "lp": results.target_log_prob,
                "energy": results.energy,
                "acceptance_rate": accept,
                "step_size": eps,
                "diverging": results.has_divergence,
                "n_steps": results.leapfrogs_taken,
            }
            arrays = {k: arrays[k].write(i, values[k]) for k in arrays}
            return i + 1, z, results, new_eps, new_da, arrays

        _, z, _, eps, da, arrays = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (tf.constant(0), z, results, step_size, da, arrays),
            maximum_iterations=chunk,
        )
        return z * scale, eps, da, {k: v.stack() for k, v in arrays.items()}

    return run


def _regularised_variance(draws, previous):
    """Each chain's metric from one window's draws `(chains, steps, dim)`.

    Stan shrinks the window variance towards 1e-3 in absolute terms; here it
    is shrunk towards 1e-3 times the previous metric, so a parameter whose
    posterior sd is 1e-3 or less gets its own scale after one window more
    instead of being held at sqrt(1e-3 * 5 / (n + 5)).
    """
    n = draws.shape[1]
    var = draws.var(axis=1, ddof=1) if n > 1 else np.array(previous)
    return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0)) * previous


_COMPILED = {}  # cache_key -> compiled transition loop, reused by later runs (warm starts)


def run_nuts(
    log_prob_fn,
    init,
    *,
    num_samples,
    num_warmup,
    seed=None,
    target_accept=0.8,
    max_tree_depth=10,
    verbose=1,
    stream=None,
    data=(),
    cache_key=None,
):
    """Sample `log_prob_fn` (a batched log density of `(chains, dim)` states) with NUTS.

    Args:
        log_prob_fn: maps a `(chains, dim)` tensor (and the tensors of `data`)
            to a `(chains,)` log density (traceable by TF, differentiable,
            XLA-compatible).
        init: initial states, array of shape `(chains, dim)`.
        data: tensors passed to `log_prob_fn` after the state, as inputs of
            the compiled program (not constants baked into it).
        cache_key: if given, the compiled program is kept under this key and
            reused by a later call with the same key: `log_prob_fn` must then
            depend on nothing but its arguments and the key, and the shapes of
            `init` and `data` must be the same.
        num_samples, num_warmup: transitions kept / used for warm-up, per chain.
        seed: int or None.
        target_accept: dual averaging's target mean acceptance probability.
        max_tree_depth: NUTS takes at most `2**max_tree_depth - 1` leapfrog steps.
        verbose: 0 silent, 1 progress bar (a line every ~10 % when not a terminal).

    Returns:
        `(draws, stats, info)`: draws `(chains, num_samples, dim)`; stats, a dict
        of `(chains, num_samples)` arrays (lp, energy, acceptance_rate,
        step_size, diverging, n_steps, tree_depth); info, a dict with the final
        `step_size` and `inverse_metric` of each chain and the timings.
    """
    init = np.asarray(init)
    num_chains, dim = init.shape
    dtype = tf.as_dtype(init.dtype)
    np_dtype = init.dtype
    key = (
        None
        if cache_key is None
        else (cache_key, num_chains, dim, dtype.name, int(max_tree_depth), float(target_accept))
    )
    run = _COMPILED.get(key) if key is not None else None
    if run is None:
        run = _make_chunk(log_prob_fn, num_chains, dim, dtype, int(max_tree_depth), float(target_accept))
        if key is not None:
            _COMPILED[key] = run
    data = tuple(tf.convert_to_tensor(d) for d in data)
    seed = int(np.random.default_rng().integers(2**31 - 1)) if seed is None else int(seed)
    base_seed = tf.constant([seed % (2**31 - 1), 20261124], tf.int32)

    theta = tf.constant(init)
    scale = tf.ones((num_chains, dim), dtype)
    eps0 = np.full(num_chains, 0.5 * dim**-0.25, np_dtype)
    step = tf.constant(eps0)

    def fresh_da(eps):
        eps = np.asarray(eps)
        return (
            tf.constant(np.log(10.0 * eps), dtype),
            tf.zeros(num_chains, dtype),
            tf.zeros(num_chains, dtype),
            tf.zeros(num_chains, dtype),
        )

    da = fresh_da(eps0)
    progress = _Progress(num_warmup + num_samples, num_chains, verbose, stream)
    state = {"done": 0, "calls": 0, "divergent": 0}
    timings = {}

    def advance(length, adapt, keep):
        nonlocal theta, step, da
        out = []
        remaining = length
        while remaining > 0:
            n = min(_CHUNK, remaining)
            t0 = time.perf_counter()
            chunk_seed = tf.random.experimental.stateless_fold_in(base_seed, state["calls"])
            theta, step, da, trace = run(
                theta, scale, step, da, tf.constant(adapt), tf.constant(n, tf.int32), chunk_seed, data
            )
            trace = {k: v.numpy()[:n] for k, v in trace.items()}
            if state["calls"] == 0:
                timings["first_call_seconds"] = time.perf_counter() - t0
            state["calls"] += 1
            state["done"] += n
            remaining -= n
            if not adapt:
                state["divergent"] += int(trace["diverging"].sum())
            progress.update(
                state["done"], adapt, step.numpy(), state["divergent"], float(trace["n_steps"].mean())
            )
            if keep:
                out.append(trace)
        if not keep:
            return None
        return {k: np.concatenate([o[k] for o in out], axis=0) for k in out[0]}

    t_start = time.perf_counter()
    for length, kind in warmup_schedule(int(num_warmup)):
        trace = advance(length, True, keep=kind == "slow")
        if kind == "slow":
            # (steps, chains, dim) -> per-chain variance over the window's draws.
            var = _regularised_variance(
                np.moveaxis(trace["theta"], 0, 1), scale.numpy().astype(np.float64) ** 2
            )
            scale = tf.constant(np.sqrt(var).astype(np_dtype))
            eps = np.exp(da[2].numpy())
            step = tf.constant(eps.astype(np_dtype))
            da = fresh_da(eps)
    if num_warmup:
        step = tf.constant(np.exp(da[2].numpy()).astype(np_dtype))  # the averaged step size
    timings["warmup_seconds"] = time.perf_counter() - t_start
    t_sample = time.perf_counter()
    trace = advance(int(num_samples), False, keep=True)
    timings["sampling_seconds"] = time.perf_counter() - t_sample
    draws = np.moveaxis(trace.pop("theta"), 0, 1)
    stats = {k: np.moveaxis(v, 0, 1) for k, v in trace.items()}
    stats["tree_depth"] = np.ceil(np.log2(stats["n_steps"] + 1.0)).astype(np.int64)
    info = {
        "step_size": step.numpy(),
        "inverse_metric": scale.numpy() ** 2,
        "num_divergent": int(stats["diverging"].sum()),
        **timings,
    }
    return draws, stats, info


def check_sampling_args(owner, num_chains, num_samples, num_warmup, target_accept, max_tree_depth, verbose):
    """Validate the sampling keywords shared by `sample` and `linear_regression`."""
    for name, value, minimum in (
        ("num_chains", num_chains, 1),
        ("num_samples", num_samples, 1),
        ("num_warmup", num_warmup, 0),
        ("max_tree_depth", max_tree_depth, 1),
    ):
        if isinstance(value, bool) or not float(value).is_integer() or value < minimum:
            raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    if not 0.0 < float(target_accept) < 1.0:
        raise ValueError(f"{owner}: target_accept must be in (0, 1), got {target_accept!r}")
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"{owner}: verbose must be 0 or 1, got {verbose!r}")
    if math.isnan(float(target_accept)):
        raise ValueError(f"{owner}: target_accept must be a number, got {target_accept!r}")
