"""The inference settings of `sample`, `linear_regression` and `glm`, each passed whole.

- `NUTS`: the sampler (NumPyro's split: the kernel's settings `target_accept`
  and `max_tree_depth`, the driver's `num_warmup`, `num_samples`,
  `num_chains`, `seed`, `verbose`), optionally the state of an earlier run
  to continue (`initial_state`).
- `VI`: variational inference instead (`probnn.bayes.vi`): `method` "advi" or
  "fullrank", `num_steps`, and the draws taken from the fitted approximation.

Both also say what the driver returns besides the draws: with
`posterior_predictive=True` one replicate of `y` per draw (the
`posterior_predictive` group, for `arviz.plot_ppc`).

Both are frozen dataclasses that check their values once, when made, with a
one-line message naming the setting: `dataclasses.replace(settings, seed=1)`
gives a checked variant.
"""

import dataclasses

from probnn._validation import error, int_at_least, probability

_METHODS = ("advi", "fullrank")


def _flag(owner, name, value):
    if value not in (True, False):
        raise error(owner, f"{name} must be True or False, got {value!r}")


def _seed(owner, seed):
    if seed is None:
        return None
    return int_at_least(owner, "seed", seed, 0, whole_floats=True)


@dataclasses.dataclass(frozen=True)
class NUTS:
    """NUTS settings: warm-up, draws, chains, the kernel's acceptance target and tree depth.

    Args:
        num_samples: kept draws per chain.
        num_warmup: warm-up transitions per chain (Stan's windows: step size
            and diagonal metric adapted; `probnn.bayes.nuts`).
        num_chains: chains, all run in one vectorised program.
        target_accept: the mean acceptance probability warm-up aims for;
            raise it (e.g. 0.95) when there are divergences.
        max_tree_depth: at most `2**max_tree_depth - 1` leapfrog steps per draw.
        seed: int for reproducible chains, or None.
        verbose: 1 shows a progress bar (plain lines when not a terminal), 0 none.
        posterior_predictive: also draw one replicate of `y` per draw.
        initial_state: continue an earlier run: its `InferenceData` (or the
            `NUTSState` of `probnn.bayes.nuts.NUTSState.from_inference_data`).
            The chains start at its last draws with its adapted step sizes and
            metrics; `num_warmup=0` samples on without adapting (more warm-up
            adapts on from there), and `seed=None` continues its random stream
            (the draws are those the uninterrupted run would have made when
            its draws were a multiple of 50). `num_chains` must match.

    Example:
    >>> import probnn
    >>> probnn.bayes.NUTS(num_samples=500, num_warmup=500, seed=0)
    NUTS(num_samples=500, num_warmup=500, num_chains=4, target_accept=0.8, max_tree_depth=10, seed=0, verbose=1, posterior_predictive=False)
    >>> probnn.bayes.NUTS(target_accept=1.5)
    Traceback (most recent call last):
    ...
    ValueError: NUTS: target_accept must be in (0, 1), got 1.5
    """

    num_samples: int = 1000
    num_warmup: int = 1000
    num_chains: int = 4
    target_accept: float = 0.8
    max_tree_depth: int = 10
    seed: int | None = None
    verbose: int = 1
    posterior_predictive: bool = False
    initial_state: object = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        owner = "NUTS"
        for name, minimum in (
            ("num_samples", 1),
            ("num_warmup", 0),
            ("num_chains", 1),
            ("max_tree_depth", 1),
        ):
            object.__setattr__(
                self, name, int_at_least(owner, name, getattr(self, name), minimum, whole_floats=True)
            )
        object.__setattr__(self, "target_accept", probability(owner, "target_accept", self.target_accept))
        object.__setattr__(self, "seed", _seed(owner, self.seed))
        if self.verbose not in (0, 1, 2, True, False):
            raise error(owner, f"verbose must be 0 or 1, got {self.verbose!r}")
        _flag(owner, "posterior_predictive", self.posterior_predictive)
        state = self.initial_state
        if state is not None and not (hasattr(state, "sampler_state") or hasattr(state, "inverse_metric")):
            raise ValueError(
                f"{owner}: initial_state must be the InferenceData of an earlier NUTS run "
                f"(with a sampler_state group) or a NUTSState, got {type(state).__name__}"
            )


@dataclasses.dataclass(frozen=True)
class VI:
    """Variational inference settings: the approximation, its optimisation steps and the draws.

    Args:
        method: "advi" (a mean-field Normal) or "fullrank" (a full-covariance
            Normal; its Cholesky factor has dim^2 / 2 parameters: small models only).
        num_steps: Adam steps of the ELBO ascent (>= 20).
        num_samples, num_chains: `num_chains x num_samples` independent draws
            from the fitted approximation (the chains only split them into groups).
        seed: int or None.
        posterior_predictive: also draw one replicate of `y` per draw.

    Example:
    >>> import probnn
    >>> probnn.bayes.VI("fullrank", num_steps=1000, num_chains=2, num_samples=500, seed=0)
    VI(method='fullrank', num_steps=1000, num_samples=500, num_chains=2, seed=0, posterior_predictive=False)
    """

    method: str = "advi"
    num_steps: int = 2000
    num_samples: int = 1000
    num_chains: int = 4
    seed: int | None = None
    posterior_predictive: bool = False

    def __post_init__(self):
        owner = "VI"
        if self.method not in _METHODS:
            raise error(owner, f"method must be 'advi' or 'fullrank', got {self.method!r}")
        for name, minimum in (("num_steps", 20), ("num_samples", 1), ("num_chains", 1)):
            object.__setattr__(
                self, name, int_at_least(owner, name, getattr(self, name), minimum, whole_floats=True)
            )
        object.__setattr__(self, "seed", _seed(owner, self.seed))
        _flag(owner, "posterior_predictive", self.posterior_predictive)


def check_sampler(owner, sampler):
    """`sampler` if it is a `NUTS` or `VI` (None: `NUTS()`), else a one-line ValueError."""
    if sampler is None:
        return NUTS()
    if not isinstance(sampler, (NUTS, VI)):
        raise ValueError(
            f"{owner}: sampler must be probnn.bayes.NUTS(...) or probnn.bayes.VI(...), got {sampler!r}"
        )
    return sampler


def sampler_seeded(sampler, rng):
    """`sampler` with its seed replaced by the next draw of `rng` (None stays None).

    The entry points seed one generator with the user's seed for the initial
    states and the predictive draws, and give the sampler a seed of its own from it.
    """
    if sampler.seed is None:
        return sampler
    return dataclasses.replace(sampler, seed=int(rng.integers(2**31 - 1)))
