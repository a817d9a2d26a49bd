"""The UCI regression protocol: standard splits, validation-chosen hyperparameters, test LL and RMSE.

Protocol (Hernández-Lobato & Adams 2015; Gal & Ghahramani 2016), for each data
set and each of its standard splits:

- inputs and target are standardised with the statistics of the training split;
- the last 20 % of the training split's rows (its index files are shuffled) is
  the validation part; every hyperparameter configuration of a method is trained
  on the other 80 % with early stopping on the validation NLL (best weights
  kept), and the configuration with the best validation NLL is chosen; the
  test split is never seen until the final evaluation;
- the chosen configuration is retrained on the whole training split for the
  number of epochs early stopping chose, and evaluated on the test split:
  log likelihood per test point and RMSE of the predictive mean, in the
  target's original units (the standardisation's log-Jacobian subtracted);
- results are reported as mean ± standard error over splits.

Network: one hidden layer of `n_hidden.txt` ReLU units (50; protein 100).

Methods (`METHODS`):
    normal       a Normal head (heteroscedastic); grid: learning rate x weight decay
    ensemble     5 Normal-head networks, independently initialised and shuffled,
                 their uniform mixture (deep ensembles without adversarial training);
                 the configuration and epochs are chosen on one network per split
    mc-dropout   `probnn.layers.MCDropout` after the hidden layer, 100 test passes;
                 grid: dropout rate x learning rate x weight decay
    flipout      a variational network: `probnn.layers.DenseFlipout` hidden and output
                 layers (KL weight 1/n_train, N(0, 1) prior), then the Normal head's
                 2x2 affine map; 100 test passes; grid: learning rate
    mixture      `MixtureNormalHead` with K in {2, 3, 5} components (the best per split
                 on validation); grid: K x learning rate x weight decay
    flow         `FlowHead`: a conditional normalising flow, two rational-quadratic
                 spline layers of 8 bins with affine layers between; grid: learning
                 rate x weight decay
    laplace      the Normal-head method's model (same search, same refit: its MAP),
                 then `probnn.bayes.laplace` on the last layer (KFAC, prior precision
                 by marginal likelihood) and its linearised predictive
    swag         a Normal head with one shared scale (homoscedastic: SGD from the
                 heteroscedastic head's MAP diverged on yacht, its scale's gradients
                 ~1/sigma^2), grid as the Normal head; then `probnn.bayes.swag` (SGD
                 from the MAP, `methods.swag_schedule`), the mixture over 100 draws;
                 SGD's learning rate is chosen per split on the validation part
                 (`swag_learning_rate`)
    evidential   `EvidentialHead` (Normal-Inverse-Gamma) trained with
                 `EvidentialLoss(reg_weight=1e-2)`, its Student-t predictive scored;
                 epochs and configuration chosen on the validation evidential loss

"Weight decay" is an L2 penalty `wd * sum(kernel**2)` on the hidden layer's and the
head's kernels in the training loss, as in the published protocol (Keras's
`kernel_regularizer=L2(wd)`; Keras's decoupled `weight_decay` is another method).
`probnn.GridSearch` applies it as its `kernel_l2` key: `probnn.training.MemberAdam`
adds its gradient `2 * wd * kernel`, so every (learning rate, penalty) pair of a
network structure is a member of one stack.

Every method is built from the public API: `probnn.GridSearch` trains every
split's grid at once (its split mode: each (learning rate, L2 penalty, split)
is a member of one compiled program per network structure, with early
stopping on its split's validation NLL: for the stochastic methods that of the
mixture of `Settings.val_samples` = 4 noisy passes, `probnn.fit`'s
`validation_samples`, as the old engine did), its
`refit` of every split retrains each split's chosen configuration on its whole
training split for its chosen number of epochs (the splits that chose one
structure as members of one program; the ensemble's `members` seeds each),
and `probnn.predict_distribution` gives the test predictive distribution
(the mixture over members or noise draws).
"""

import dataclasses
import math
import time

import numpy as np

from probnn.apps.uci.methods import build_network
from probnn.datasets.standardise import Standardisation
from probnn.datasets.uci import load_uci


@dataclasses.dataclass
class SplitResult:
    test_ll: float
    rmse: float
    config: dict
    epochs: int
    split: int = None  # the standard split's index
    map_test_ll: float = None  # a post-hoc posterior (Laplace, SWAG): the test LL of the MAP it starts from


def integer_valued(y):
    """True if every target is a whole number (the table marks mixture heads on such data)."""
    y = np.asarray(y, np.float64)
    return bool(np.all(y == np.round(y)))


@dataclasses.dataclass
class MethodResult:
    dataset: str
    method: str
    splits: list
    seconds: float  # wall time (time.perf_counter)
    cpu_seconds: float = float("nan")  # process CPU time (time.process_time), all threads
    integer_target: bool = False
    meta: dict = dataclasses.field(default_factory=dict)  # settings, grid, versions, date (JSON files)

    def summary(self):
        ll = np.array([s.test_ll for s in self.splits])
        rmse = np.array([s.rmse for s in self.splits])
        k = len(self.splits)

        def se(a):
            return float(a.std(ddof=1) / math.sqrt(k)) if k > 1 else float("nan")

        return float(ll.mean()), se(ll), float(rmse.mean()), se(rmse)


def _standardised(split, val_fraction):
    """The split's arrays standardised with its training rows' statistics (`Standardisation`).

    The last `val_fraction` of the training rows is the validation part.
    """
    scaling = Standardisation.fit(split.x_train, split.y_train, owner="probnn bench uci")
    x_train, y_train = scaling.standardise_inputs(split.x_train), scaling.standardise_targets(split.y_train)
    n = split.x_train.shape[0]
    n_fit = n - int(round(val_fraction * n))
    return dict(
        x_fit=x_train[:n_fit],
        y_fit=y_train[:n_fit],
        x_val=x_train[n_fit:],
        y_val=y_train[n_fit:],
        x_train=x_train,
        y_train=y_train,
        x_test=scaling.standardise_inputs(split.x_test),
        y_test=split.y_test,
        scaling=scaling,
    )


def _scores(dist, data):
    """Test log likelihood per point and RMSE of the predictive mean, in the target's units."""
    nll, rmse = data["scaling"].nll_and_rmse(dist, data["y_test"])
    return -nll, rmse


def _grid(method):
    """`probnn.GridSearch`'s grid of a method: its structures, learning rates and L2 penalties."""
    grid = {}
    for structure in method.structures:
        for key, value in structure.items():
            grid.setdefault(key, []).append(value)
    grid["kernel_l2"] = list(method.weight_decays)
    grid["learning_rate"] = list(method.learning_rates)
    return grid


def search_splits(search, method, prepared, settings, max_epochs):
    """Every split's grid on its 80 %, early stopping on its 20 %: ONE program per structure.

    `probnn.GridSearch`'s split mode: each (configuration, split) is a member
    of the structure's stack, trained on its own split's rows.
    """
    fit_rows = len(prepared[0]["x_fit"])
    search.fit(
        [data["x_fit"] for data in prepared],
        [data["y_fit"] for data in prepared],
        validation_data=([data["x_val"] for data in prepared], [data["y_val"] for data in prepared]),
        epochs=max_epochs,
        batch_size=settings.batch_for(fit_rows),
        patience=settings.patience,
        validation_samples=settings.val_samples if method.stochastic else None,
    )


def refit_splits(search, refit_build, method, prepared, settings):
    """Every split's chosen configuration retrained on its whole training split, for its chosen epochs.

    `probnn.GridSearch.refit` with lists: the splits that chose one structure
    retrain as members of one program. The ensemble's members are more seeds
    of the configuration chosen on one network.
    """
    return search.refit(
        [data["x_train"] for data in prepared],
        [data["y_train"] for data in prepared],
        build_model=refit_build,
        seeds=[settings.seed + 1 + i for i in range(method.members)],
        batch_size=settings.batch_for(len(prepared[0]["x_train"])),
    )


def score_split(search, index, model, method, data, settings):
    """Split `index`'s refitted `model` on its test rows.

    Returns `(test_ll, rmse, chosen configuration, epochs, MAP test LL or None)`.
    """
    import probnn

    chosen = dict(search.best_params_per_split[index])
    epochs = search.best_epochs(split=index)[0]
    dist = probnn.predict_distribution(
        model,
        data["x_test"],
        num_samples=settings.test_samples if method.stochastic else None,
        seed=settings.seed,
    )
    ll, rmse = _scores(dist, data)
    lr, wd = chosen.pop("learning_rate"), chosen.pop("kernel_l2")
    config = dict(chosen, lr=lr, wd=wd)
    map_ll = None
    if method.posterior == "swag":
        config["swag_lr"] = swag_learning_rate(search, index, data, settings)
    if method.posterior is not None:
        map_ll = ll
        dist = _posterior_predictive(method, model, data, settings, config.get("swag_lr"))
        ll, rmse = _scores(dist, data)
    return ll, rmse, config, epochs, map_ll


def _swag_predictive(model, x, y, x_new, settings, learning_rate):
    """SWAG around `model` (SGD on `(x, y)` at `learning_rate`), its predictive at `x_new`."""
    import probnn
    from probnn.apps.uci.methods import swag_schedule

    schedule = swag_schedule(len(x), learning_rate)
    posterior = probnn.bayes.swag(model, x, y, schedule=schedule, seed=settings.seed)
    return probnn.predict_distribution(
        model, x_new, posterior=posterior, num_draws=settings.test_samples, seed=settings.seed
    )


def swag_learning_rate(search, index, data, settings):
    """SWAG's learning rate for split `index`, chosen as the protocol chooses every hyperparameter.

    SWAG around the search's best model of the split (trained on the split's
    80 %), its SGD on the same 80 %, for each of `SWAG_LEARNING_RATES`: the
    rate whose predictive has the lowest NLL on the 20 % validation part.
    """
    from probnn.apps.uci.methods import SWAG_LEARNING_RATES

    best = search.best_params_per_split[index]
    (trained,) = [i for i, r in enumerate(search.results) if r["split"] == index and r["params"] == best]
    model = search.trained_model(trained)
    scores = []
    for rate in SWAG_LEARNING_RATES:
        dist = _swag_predictive(model, data["x_fit"], data["y_fit"], data["x_val"], settings, rate)
        nll = -float(np.mean(dist.log_prob(data["y_val"]).numpy()))
        scores.append(nll if math.isfinite(nll) else math.inf)
    return SWAG_LEARNING_RATES[int(np.argmin(scores))]


def _posterior_predictive(method, model, data, settings, swag_lr=None):
    """The test predictive of a post-hoc posterior around the refitted (MAP) model."""
    import probnn

    x, y = data["x_train"], data["y_train"]
    if method.posterior == "laplace":
        posterior = probnn.bayes.laplace(
            model, x, y, weights="last_layer", hessian="kron", prior_precision="marglik"
        )
        return probnn.predict_distribution(model, data["x_test"], posterior=posterior)
    return _swag_predictive(model, x, y, data["x_test"], settings, swag_lr)


def run_method(dataset, method, splits, data_dir, settings, log=print):
    """Run `method` on the given splits of `dataset`; return a `MethodResult`."""
    import probnn

    started, cpu_started = time.perf_counter(), time.process_time()
    loaded = [load_uci(dataset, k, data_dir) for k in splits]
    shape = (loaded[0].x_train.shape[1], loaded[0].n_hidden)
    max_epochs = settings.max_epochs_factor * loaded[0].n_epochs
    prepared = [_standardised(split, settings.val_fraction) for split in loaded]
    n_features, n_hidden = shape

    def builder(n_train):
        return lambda **structure: build_network(method, n_features, n_hidden, n_train, **structure)

    search = probnn.GridSearch(
        builder(len(prepared[0]["x_fit"])), _grid(method), seeds=[settings.seed], loss=method.loss
    )
    search_splits(search, method, prepared, settings, max_epochs)
    log(f"  {dataset} {method.name}: {len(splits)} splits searched, {time.perf_counter() - started:.0f} s")
    models = refit_splits(search, builder(len(prepared[0]["x_train"])), method, prepared, settings)
    log(f"  {dataset} {method.name}: {len(splits)} splits refitted, {time.perf_counter() - started:.0f} s")
    results = []
    for index, (k, data, model) in enumerate(zip(splits, prepared, models)):
        ll, rmse, config, epochs, map_ll = score_split(search, index, model, method, data, settings)
        results.append(SplitResult(ll, rmse, config, int(epochs), split=int(k), map_test_ll=map_ll))
        log(
            f"  {dataset} {method.name} split {k}: test LL {ll:.3f}, {config}, {epochs} epochs, "
            f"{time.perf_counter() - started:.0f} s"
        )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    log(f"  {dataset} {method.name}: done in {seconds:.0f} s wall, {cpu:.0f} s CPU")
    return MethodResult(
        dataset,
        method.name,
        results,
        seconds,
        cpu,
        integer_valued(np.concatenate([s.y_train for s in loaded])),
    )
