"""From the sampler's arrays to arviz `InferenceData`, and the input checks shared by the samplers."""

import dataclasses
import warnings
from collections.abc import Callable

import arviz as az
import numpy as np
import xarray as xr

from probnn._validation import error
from probnn.bayes.nuts import run_nuts
from probnn.bayes.settings import NUTS
from probnn.bayes.vi import fit_vi


def check_finite(owner, name, value):
    """Return `value` as an array, or raise a one-line ValueError if it has NaN/inf."""
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise error(owner, f"{name} must be numeric, got dtype {array.dtype}")
    finite = np.isfinite(array)
    if not finite.all():
        # not `finite_array`: this message also gives the total and the remedy (drop or impute rows)
        raise error(
            owner,
            f"{name} has {int(array.size - finite.sum())} NaN/inf value(s) of "
            f"{array.size}; expected finite numbers (drop or impute those rows)",
        )
    return array


def warn_divergences(owner, stats, num_draws):
    """Warn with the count of divergent transitions and what to try."""
    count = int(np.sum(stats["diverging"]))
    if count:
        warnings.warn(
            f"{owner}: {count} of {num_draws} transitions after warm-up diverged; the posterior "
            f"may be biased there. Try NUTS(target_accept=0.95) (smaller steps), a longer warm-up, "
            f"or reparameterising the model (standardised inputs and outputs, tighter priors).",
            RuntimeWarning,
            stacklevel=3,
        )
    return count


def sample_stats_dict(stats):
    """The sampler's statistics under arviz's names."""
    return {
        "lp": stats["lp"],
        "energy": stats["energy"],
        "diverging": stats["diverging"],
        "acceptance_rate": stats["acceptance_rate"],
        "step_size": stats["step_size"],
        "tree_depth": stats["tree_depth"],
        "n_steps": stats["n_steps"],
    }


def _run(owner, log_prob_fn, init, settings, data, cache_key):
    """Draws, statistics, info and the attributes of the inference method in `settings`."""
    if isinstance(settings, NUTS):
        draws, stats, info = run_nuts(
            log_prob_fn, init, settings, data=data, cache_key=cache_key, owner=owner
        )
        warn_divergences(owner, stats, draws.shape[0] * draws.shape[1])
        attrs = {
            "method": "nuts",
            "sampler": "NUTS (tfp.mcmc.NoUTurnSampler), windowed diagonal-metric warm-up",
            "num_warmup": settings.num_warmup,
            "target_accept": settings.target_accept,
            "warmup_seconds": float(info["warmup_seconds"]),
            "sampling_seconds": float(info["sampling_seconds"]),
        }
        return draws, sample_stats_dict(stats), info, attrs
    draws, stats, info = fit_vi(log_prob_fn, init, settings, data=data, cache_key=cache_key, owner=owner)
    attrs = {
        "method": settings.method,
        "sampler": f"variational inference, {settings.method} ({_VI_NAMES[settings.method]})",
        "num_steps": settings.num_steps,
        "vi_converged": int(info["converged"]),
        "vi_pareto_k": float(info["pareto_k"]),
        "fit_seconds": float(info["fit_seconds"]),
    }
    return draws, stats, info, attrs


_VI_NAMES = {"advi": "mean-field Normal", "fullrank": "full-covariance Normal"}


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How a model's flat draws `(chains, draws, dim)` become the groups of its `InferenceData`.

    Attributes:
        unpack: draws -> the posterior dict of named variables.
        log_likelihood: draws -> the pointwise log likelihood `(chains, draws, n)`.
        observed: the observed `y`.
        coords, dims: arviz's coordinates and dims of the variables.
        posterior_predictive: draws -> predictive samples of `y`, or None.
        attrs: extra attributes of every group.
        constant_data: the `constant_data` group, or None.
    """

    unpack: Callable
    log_likelihood: Callable
    observed: np.ndarray
    coords: dict | None = None
    dims: dict | None = None
    posterior_predictive: Callable | None = None
    attrs: dict | None = None
    constant_data: dict | None = None


def run_and_convert(owner, log_prob_fn, init, settings, conversion, *, data=(), cache_key=None):
    """Run NUTS (or fit a variational approximation) and assemble the `InferenceData`.

    `settings` is a `probnn.bayes.NUTS` or `VI` (`probnn.bayes.settings`);
    `conversion` a `Conversion`. A VI fit's ELBO trace is `sample_stats["elbo"]`
    (dim `vi_step`); a NUTS run's final state (`probnn.bayes.nuts.NUTSState`)
    is the `sampler_state` group, from which `NUTS(initial_state=idata)` continues.
    `data` and `cache_key` are passed to `run_nuts` / `fit_vi`.
    """
    draws, stats, info, method_attrs = _run(owner, log_prob_fn, init, settings, data, cache_key)
    observed = np.asarray(conversion.observed)
    squeeze = observed.ndim == 2 and observed.shape[1] == 1  # a scalar event kept as (n, 1)
    groups = {
        "posterior": conversion.unpack(draws),
        "sample_stats": stats,
        "observed_data": {"y": observed[:, 0] if squeeze else observed},
    }
    if conversion.constant_data:
        groups["constant_data"] = conversion.constant_data
    if conversion.posterior_predictive is not None:
        predictive = conversion.posterior_predictive(draws)
        groups["posterior_predictive"] = {"y": predictive[..., 0] if squeeze else predictive}
    dims = dict(conversion.dims or {})
    dims["y"] = ["obs_id"] + [f"y_dim_{i}" for i in range(observed.ndim - 1 - squeeze)]
    all_attrs = {"inference_library": "probnn", **method_attrs, **(conversion.attrs or {})}
    idata = az.from_dict(**groups, coords=conversion.coords, dims=dims, attrs=all_attrs)
    if "elbo" in info:
        idata.sample_stats["elbo"] = xr.DataArray(info["elbo"], dims=["vi_step"])
    if "state" in info:
        idata.add_groups({"sampler_state": info["state"].to_dataset()})
    # One log likelihood per observation (also for a multivariate event): dims of its own.
    idata.extend(
        az.from_dict(
            log_likelihood={"y": conversion.log_likelihood(draws)}, dims={"y": ["obs_id"]}, attrs=all_attrs
        )
    )
    return idata
