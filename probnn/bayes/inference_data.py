"""From the sampler's arrays to arviz `InferenceData`, and the checks shared by the samplers."""

import warnings

import arviz as az
import numpy as np
import xarray as xr

from probnn.bayes.nuts import run_nuts
from probnn.bayes.vi import METHODS, fit_vi


def check_finite(owner, name, value):
    """Return `value` as an array, or raise a one-line ValueError if it has NaN/inf."""
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{owner}: {name} must be numeric, got dtype {array.dtype}")
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(
            f"{owner}: {name} has {int(array.size - finite.sum())} NaN/inf value(s) of "
            f"{array.size}; expected finite numbers (drop or impute those rows)"
        )
    return array


def warn_divergences(owner, stats, num_draws):
    """Warn with the count of divergent transitions and what to try."""
    count = int(np.sum(stats["diverging"]))
    if count:
        warnings.warn(
            f"{owner}: {count} of {num_draws} transitions after warm-up diverged; the posterior "
            f"may be biased there. Try target_accept=0.95 (smaller steps), a longer warm-up, "
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


def _run(owner, log_prob_fn, init, options, data, cache_key):
    """Draws, statistics, info and the attributes of the inference method in `options`."""
    method = options.get("method", "nuts")
    if method == "nuts":
        draws, stats, info = run_nuts(
            log_prob_fn,
            init,
            num_samples=options["num_samples"],
            num_warmup=options["num_warmup"],
            seed=options["seed"],
            target_accept=options["target_accept"],
            max_tree_depth=options["max_tree_depth"],
            verbose=options["verbose"],
            data=data,
            cache_key=cache_key,
        )
        warn_divergences(owner, stats, draws.shape[0] * draws.shape[1])
        attrs = {
            "sampler": "NUTS (tfp.mcmc.NoUTurnSampler), windowed diagonal-metric warm-up",
            "num_warmup": int(options["num_warmup"]),
            "target_accept": float(options["target_accept"]),
            "warmup_seconds": float(info["warmup_seconds"]),
            "sampling_seconds": float(info["sampling_seconds"]),
        }
        return draws, sample_stats_dict(stats), info, attrs
    draws, stats, info = fit_vi(
        log_prob_fn,
        init,
        method=method,
        num_steps=options["num_steps"],
        num_samples=options["num_samples"],
        seed=options["seed"],
        data=data,
        cache_key=cache_key,
        owner=owner,
    )
    attrs = {
        "sampler": f"variational inference, {method} ({_VI_NAMES[method]})",
        "num_steps": int(options["num_steps"]),
        "vi_converged": int(info["converged"]),
        "vi_pareto_k": float(info["pareto_k"]),
        "fit_seconds": float(info["fit_seconds"]),
    }
    return draws, stats, info, attrs


_VI_NAMES = {"advi": "mean-field Normal", "fullrank": "full-covariance Normal"}


def check_method(owner, method, num_steps):
    """Validate `method` ("nuts", "advi", "fullrank") and the VI step count."""
    if method not in ("nuts",) + METHODS:
        raise ValueError(f"{owner}: method must be 'nuts', 'advi' or 'fullrank', got {method!r}")
    if isinstance(num_steps, bool) or not float(num_steps).is_integer() or num_steps < 20:
        raise ValueError(f"{owner}: num_steps must be an integer >= 20, got {num_steps!r}")


def run_and_convert(
    owner,
    log_prob_fn,
    init,
    *,
    num_samples,
    num_warmup,
    seed,
    target_accept,
    max_tree_depth,
    verbose,
    unpack,
    log_likelihood_fn,
    observed,
    coords,
    dims,
    posterior_predictive_fn=None,
    attrs=None,
    data=(),
    cache_key=None,
    method="nuts",
    num_steps=2000,
    constant_data=None,
):
    """Run NUTS (or fit a variational approximation) and assemble the `InferenceData`.

    `unpack(draws)` maps flat draws `(chains, draws, dim)` to the posterior dict;
    `log_likelihood_fn(draws)` gives the pointwise log likelihood
    `(chains, draws, n)`; `posterior_predictive_fn(draws)` predictive samples.
    `method` "advi" or "fullrank" draws from a variational approximation fitted
    in `num_steps` steps (`probnn.bayes.vi`) instead of NUTS; its ELBO trace is
    `sample_stats["elbo"]` (dim `vi_step`). `constant_data` becomes that group.
    """
    options = dict(
        method=method,
        num_samples=num_samples,
        num_warmup=num_warmup,
        seed=seed,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        verbose=verbose,
        num_steps=num_steps,
    )
    draws, stats, info, method_attrs = _run(owner, log_prob_fn, init, options, data, cache_key)
    observed = np.asarray(observed)
    squeeze = observed.ndim == 2 and observed.shape[1] == 1  # a scalar event kept as (n, 1)
    groups = {
        "posterior": unpack(draws),
        "sample_stats": stats,
        "observed_data": {"y": observed[:, 0] if squeeze else observed},
    }
    if constant_data:
        groups["constant_data"] = constant_data
    if posterior_predictive_fn is not None:
        predictive = posterior_predictive_fn(draws)
        groups["posterior_predictive"] = {"y": predictive[..., 0] if squeeze else predictive}
    dims = dict(dims or {})
    dims["y"] = ["obs_id"] + [f"y_dim_{i}" for i in range(observed.ndim - 1 - squeeze)]
    all_attrs = {"inference_library": "probnn", "method": method, **method_attrs, **(attrs or {})}
    idata = az.from_dict(**groups, coords=coords, dims=dims, attrs=all_attrs)
    if method != "nuts":
        idata.sample_stats["elbo"] = xr.DataArray(info["elbo"], dims=["vi_step"])
    # One log likelihood per observation (also for a multivariate event): dims of its own.
    idata.extend(
        az.from_dict(log_likelihood={"y": log_likelihood_fn(draws)}, dims={"y": ["obs_id"]}, attrs=all_attrs)
    )
    return idata
