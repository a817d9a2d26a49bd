"""The sampling engine: vectorised NUTS with Stan's windowed warm-up, compiled with XLA.

`run_nuts(log_prob_fn, init, settings)` samples a log density over a flat state
of shape `(chains, dim)`, all chains in one batched program, with the
settings of a `probnn.bayes.NUTS`. As in NumPyro, a kernel steps and a driver
runs it:

- The kernel (`make_kernel`): one XLA program that makes up to `_CHUNK`
  transitions of all chains (`tfp.mcmc.NoUTurnSampler`: multinomial NUTS with
  the generalised U-turn criterion, as in Stan and NumPyro), with the step
  size adapted by dual averaging (Hoffman & Gelman 2014, Stan's constants)
  when asked. Its state goes in and comes out as explicit values: positions,
  metric scales, step sizes, dual-averaging values.
- Diagonal mass matrix: instead of TFP's preconditioned kernels (whose
  momentum is a joint distribution of linear-operator Normals, evaluated at
  every leapfrog step), the chains run on `z = theta / scale` with a unit mass
  matrix. That is the same dynamics as a diagonal metric `scale**2` and costs
  one multiply per gradient. Each chain has its own metric and step size.
- The driver (`_Driver`, `run_nuts`): warm-up in Stan's windows
  (`tfp.experimental.mcmc.windowed_adaptive_nuts` uses the same scheme): a
  fast initial buffer (75 steps at 1,000 warm-up steps), slow windows of 25,
  50, 100, 200, 500 steps at whose ends each chain's metric is re-estimated
  from the window's draws (shrunk a little towards the previous metric), and a
  50-step terminal buffer; dual averaging restarts after each metric update.
  Then sampling, progress reports between kernel calls, and the final state
  (`NUTSState`: last draws, step sizes, metrics, random stream) from which
  `NUTS(initial_state=...)` continues.
- Compiled kernels are kept by model structure (`cache_key`) in a cache of the
  8 most recently used (`probnn.bayes.cache.CompiledCache`).
"""

import dataclasses
import sys
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import xarray as xr

from probnn.bayes.cache import CompiledCache

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


def make_kernel(log_prob_fn, num_chains, dim, dtype, max_tree_depth, target_accept):
    """The kernel: one compiled call makes up to `_CHUNK` NUTS transitions of all chains.

    Its inputs are the explicit state (positions, metric scales, step sizes,
    dual-averaging values), whether to adapt the step size, the number of
    steps, a seed and the data; it returns the state after and the trace.
    """
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


_KERNELS = CompiledCache(maxsize=8)  # compiled kernels by model structure, for warm starts


@dataclasses.dataclass(frozen=True, eq=False)
class NUTSState:
    """Where a NUTS run's chains are and what its warm-up adapted, as plain arrays.

    Attributes:
        position: the last draws, `(chains, dim)`, in the sampler's flat
            (unconstrained, standardised) coordinates.
        step_size: each chain's step size, `(chains,)`.
        inverse_metric: each chain's diagonal inverse mass matrix, `(chains, dim)`.
        seed, calls: the run's random stream and the kernel calls made on it.

    `run_nuts` returns it as `info["state"]`; `probnn.bayes.NUTS(initial_state=...)`
    continues from it (or from the `InferenceData`, which keeps it as its
    `sampler_state` group).

    Example:
    >>> import arviz as az, numpy as np
    >>> state = NUTSState(np.zeros((2, 3)), np.full(2, 0.5), np.ones((2, 3)), seed=7, calls=4)
    >>> idata = az.from_dict(posterior={"a": np.zeros((2, 5))})
    >>> idata.add_groups({"sampler_state": state.to_dataset()})
    >>> back = NUTSState.from_inference_data(idata)
    >>> back.step_size.tolist(), back.seed, back.calls
    ([0.5, 0.5], 7, 4)
    """

    position: np.ndarray
    step_size: np.ndarray
    inverse_metric: np.ndarray
    seed: int
    calls: int

    def to_dataset(self):
        """The state as an `xarray.Dataset` (the `sampler_state` group of the InferenceData)."""
        dims = ("chain", "state_dim")
        return xr.Dataset(
            {
                "position": (dims, self.position),
                "step_size": (("chain",), self.step_size),
                "inverse_metric": (dims, self.inverse_metric),
            },
            attrs={"seed": int(self.seed), "calls": int(self.calls)},
        )

    @classmethod
    def from_inference_data(cls, idata):
        """The state kept by an earlier run's `InferenceData` (or `idata` itself if a `NUTSState`)."""
        if isinstance(idata, cls):
            return idata
        group = getattr(idata, "sampler_state", None)
        if group is None:
            raise ValueError(
                "NUTS: initial_state has no sampler_state group; pass the InferenceData of a NUTS run "
                "(VI fits have none)"
            )
        return cls(
            position=group["position"].values,
            step_size=group["step_size"].values,
            inverse_metric=group["inverse_metric"].values,
            seed=int(group.attrs["seed"]),
            calls=int(group.attrs["calls"]),
        )


class _Chains(NamedTuple):
    """The explicit values carried from one kernel call to the next."""

    theta: tf.Tensor  # (chains, dim) positions
    scale: tf.Tensor  # (chains, dim) square roots of the inverse metric
    step: tf.Tensor  # (chains,) step sizes
    da: tuple  # dual averaging: (mu, h_bar, log_eps_bar, t), each (chains,)
    calls: int  # kernel calls so far (each has its own seed, folded in from the run's)


def _fresh_da(eps, dtype):
    """Dual averaging restarted at step sizes `eps`: it explores around `10 * eps`."""
    zeros = tf.zeros(len(eps), dtype)
    return (tf.constant(np.log(10.0 * np.asarray(eps)), dtype), zeros, zeros, zeros)


class _Driver:
    """Calls the compiled kernel for runs of transitions, reports progress and keeps the timings."""

    def __init__(self, kernel, base_seed, data, progress):
        self.kernel, self.base_seed, self.data, self.progress = kernel, base_seed, data, progress
        self.done, self.divergent, self.timings = 0, 0, {}

    def advance(self, chains, length, adapt, keep):
        """`length` transitions from `chains`: `(chains after, trace or None)`."""
        out = []
        for start in range(0, length, _CHUNK):
            n = min(_CHUNK, length - start)
            t0 = time.perf_counter()
            seed = tf.random.experimental.stateless_fold_in(self.base_seed, chains.calls)
            theta, step, da, trace = self.kernel(
                chains.theta,
                chains.scale,
                chains.step,
                chains.da,
                tf.constant(adapt),
                tf.constant(n),
                seed,
                self.data,
            )
            trace = {k: v.numpy()[:n] for k, v in trace.items()}
            self.timings.setdefault("first_call_seconds", time.perf_counter() - t0)
            chains = chains._replace(theta=theta, step=step, da=da, calls=chains.calls + 1)
            self.done += n
            self.divergent += 0 if adapt else int(trace["diverging"].sum())
            self.progress.update(
                self.done, adapt, step.numpy(), self.divergent, float(trace["n_steps"].mean())
            )
            out.append(trace)
        if not keep or not out:
            return chains, None
        return chains, {k: np.concatenate([o[k] for o in out], axis=0) for k in out[0]}

    def warm_up(self, chains, num_warmup):
        """Stan's windows: step size adapted throughout, the metric at the end of each slow window."""
        dtype = chains.theta.dtype.as_numpy_dtype
        for length, kind in warmup_schedule(num_warmup):
            chains, trace = self.advance(chains, length, True, keep=kind == "slow")
            if kind == "slow":
                # (steps, chains, dim) -> per-chain variance over the window's draws.
                previous = chains.scale.numpy().astype(np.float64) ** 2
                var = _regularised_variance(np.moveaxis(trace["theta"], 0, 1), previous)
                eps = np.exp(chains.da[2].numpy())
                chains = chains._replace(
                    scale=tf.constant(np.sqrt(var).astype(dtype)),
                    step=tf.constant(eps.astype(dtype)),
                    da=_fresh_da(eps, dtype),
                )
        if num_warmup:  # sample with the averaged step size
            chains = chains._replace(step=tf.constant(np.exp(chains.da[2].numpy()).astype(dtype)))
        return chains


def _initial_chains(init, settings, seed, owner):
    """`(chains, base seed)`: a fresh start at `init`, or where `settings.initial_state` left off."""
    num_chains, dim = init.shape
    dtype = tf.as_dtype(init.dtype)
    if settings.initial_state is None:
        eps = np.full(num_chains, 0.5 * dim**-0.25, init.dtype)
        scale = tf.ones((num_chains, dim), dtype)
        return _Chains(tf.constant(init), scale, tf.constant(eps), _fresh_da(eps, dtype), 0), seed
    state = NUTSState.from_inference_data(settings.initial_state)
    if state.position.shape != init.shape:
        raise ValueError(
            f"{owner}: initial_state has {state.position.shape[0]} chain(s) of dimension "
            f"{state.position.shape[1]}; this run has {num_chains} of dimension {dim} (another model, "
            "or set NUTS(num_chains=...) to the earlier run's)"
        )
    eps = state.step_size.astype(init.dtype)
    chains = _Chains(
        tf.constant(state.position.astype(init.dtype)),
        tf.constant(np.sqrt(state.inverse_metric).astype(init.dtype)),
        tf.constant(eps),
        _fresh_da(eps, dtype),
        0 if seed is not None else state.calls,
    )
    return chains, state.seed if seed is None else seed


def run_nuts(log_prob_fn, init, settings, *, data=(), cache_key=None, stream=None, owner="run_nuts"):
    """Sample `log_prob_fn` (a batched log density of `(chains, dim)` states) with NUTS.

    Args:
        log_prob_fn: maps a `(chains, dim)` tensor (and the tensors of `data`)
            to a `(chains,)` log density (traceable by TF, differentiable,
            XLA-compatible).
        init: initial states, array of shape `(chains, dim)` (not used when
            `settings.initial_state` continues an earlier run).
        settings: a `probnn.bayes.NUTS` (its `num_chains` is `init`'s).
        data: tensors passed to `log_prob_fn` after the state, as inputs of
            the compiled program (not constants baked into it).
        cache_key: if given, the compiled kernel is kept (in a cache of the 8
            most recently used) under this key and reused by a later call with
            the same key: `log_prob_fn` must then depend on nothing but its
            arguments and the key, and the shapes of `init` and `data` must be the same.
        stream: where the progress goes (default stderr).
        owner: the name error messages start with.

    Returns:
        `(draws, stats, info)`: draws `(chains, num_samples, dim)`; stats, a dict
        of `(chains, num_samples)` arrays (lp, energy, acceptance_rate,
        step_size, diverging, n_steps, tree_depth); info, a dict with the final
        `step_size` and `inverse_metric` of each chain, the `NUTSState` to
        continue from (`state`) and the timings.

    Example:
    >>> import numpy as np, probnn
    >>> settings = probnn.bayes.NUTS(num_samples=200, num_warmup=200, num_chains=2, seed=0, verbose=0)
    >>> log_prob = lambda theta: -0.5 * tf.reduce_sum(tf.square(theta / [1.0, 10.0]), axis=-1)
    >>> draws, stats, info = run_nuts(log_prob, np.zeros((2, 2)), settings)
    >>> draws.shape, np.round(draws.std(axis=(0, 1)), -1)
    ((2, 200, 2), array([ 0., 10.]))
    """
    init = np.asarray(init)
    dtype = tf.as_dtype(init.dtype)
    kernel = _KERNELS.get_or_build(
        None
        if cache_key is None
        else (cache_key, *init.shape, dtype.name, settings.max_tree_depth, settings.target_accept),
        lambda: make_kernel(log_prob_fn, *init.shape, dtype, settings.max_tree_depth, settings.target_accept),
    )
    seed = settings.seed
    if seed is None and settings.initial_state is None:
        seed = int(np.random.default_rng().integers(2**31 - 1))
    chains, seed = _initial_chains(init, settings, seed, owner)
    base_seed = tf.constant([seed % (2**31 - 1), 20261124], tf.int32)
    progress = _Progress(settings.num_warmup + settings.num_samples, init.shape[0], settings.verbose, stream)
    driver = _Driver(kernel, base_seed, tuple(tf.convert_to_tensor(d) for d in data), progress)
    t_start = time.perf_counter()
    chains = driver.warm_up(chains, settings.num_warmup)
    driver.timings["warmup_seconds"] = time.perf_counter() - t_start
    t_sample = time.perf_counter()
    chains, trace = driver.advance(chains, settings.num_samples, False, keep=True)
    driver.timings["sampling_seconds"] = time.perf_counter() - t_sample
    draws = np.moveaxis(trace.pop("theta"), 0, 1)
    stats = {k: np.moveaxis(v, 0, 1) for k, v in trace.items()}
    stats["tree_depth"] = np.ceil(np.log2(stats["n_steps"] + 1.0)).astype(np.int64)
    state = NUTSState(draws[:, -1], chains.step.numpy(), chains.scale.numpy() ** 2, seed, chains.calls)
    info = {
        "step_size": state.step_size,
        "inverse_metric": state.inverse_metric,
        "state": state,
        "num_divergent": int(stats["diverging"].sum()),
        **driver.timings,
    }
    return draws, stats, info
