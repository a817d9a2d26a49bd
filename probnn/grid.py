"""`probnn.GridSearch`: a hyperparameter grid trained as stacks, one compiled program per structure.

Keys of the grid that only change the optimizer (`learning_rate`,
`weight_decay`, `beta_1`, `beta_2`, `epsilon`; `kernel_l2`, an L2 penalty on
the kernels that the optimizer applies to the gradient) and the seeds do not
change the network: all configurations that share the other keys (the structure,
passed to `build_model(**structure)`) train together as the members of one
stack (`probnn.Ensemble.from_models`), in ONE compiled program of
`probnn.fit`, each member with its own Adam/AdamW hyperparameters
(`probnn.training.MemberAdam`), its own shuffles (`seed=[...]`) and its own
early stopping (`probnn.training.MemberEarlyStopping`). Each member ends
exactly where `probnn.fit` would have left it trained alone:

```python-signature
keras.utils.set_random_seed(seed)
model = build_model(**structure)
probnn.fit(model, x, y, optimizer=keras.optimizers.Adam(**optimizer_params),
           validation_data=(xv, yv), epochs=epochs, batch_size=batch_size, seed=seed,
           callbacks=[keras.callbacks.EarlyStopping("val_nll", mode="min",
                                                    patience=patience,
                                                    restore_best_weights=True)])
```

KerasTuner and scikit-learn train such trials one after another; on the
small networks of probabilistic regression the per-trial overhead (tracing,
compiling, dispatch) dominates, and a stack pays it once.
"""

import inspect
import itertools
import time

import keras
import numpy as np

from probnn.ensemble import Ensemble
from probnn.training import MemberAdam, MemberEarlyStopping, MemberEpochs
from probnn.training import fit as probnn_fit

__all__ = ["GridSearch"]

OPTIMIZER_KEYS = ("learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon")
# Per-member keys: the optimizer's, and an L2 penalty on kernels that MemberAdam applies.
MEMBER_KEYS = OPTIMIZER_KEYS + ("kernel_l2",)
_OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW}


def _err(message):
    return ValueError(f"GridSearch: {message}")


def _check_grid(grid):
    if not isinstance(grid, dict) or not grid:
        raise _err(f"grid must be a non-empty dict of hyperparameter -> list of values, got {grid!r}")
    checked = {}
    for key, values in grid.items():
        if not isinstance(key, str):
            raise _err(f"grid keys must be strings, got {key!r}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise _err(f"grid[{key!r}] must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise _err(f"grid[{key!r}] is empty; give at least one value")
        checked[key] = values
    return checked


def _check_seeds(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise _err(f"seeds must be a positive integer or a list of seeds, got {seeds!r}")
        return list(range(int(seeds)))
    seeds = list(seeds) if hasattr(seeds, "__iter__") else [seeds]
    if not seeds or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise _err(f"seeds must be a positive integer or a list of non-negative integers, got {seeds!r}")
    return [int(s) for s in seeds]


def _base_optimizer(optimizer):
    """`(class, config)` of the optimizer every configuration starts from."""
    if isinstance(optimizer, str) and optimizer.lower() in _OPTIMIZERS:
        cls = _OPTIMIZERS[optimizer.lower()]
        return cls, cls().get_config()
    if isinstance(optimizer, keras.optimizers.Adam):
        return type(optimizer), optimizer.get_config()
    raise _err(
        f"optimizer must be 'adam', 'adamw' or a keras.optimizers.Adam / AdamW instance, got {optimizer!r}"
    )


def _column(a):
    """An array; 1-D becomes a column, as `probnn.fit` takes it."""
    a = np.asarray(a)
    return a[:, None] if a.ndim == 1 else a


def _check_splits(x, y, validation_data):
    """The number of splits S when `y` is a list (one array per split), else None; checks their shapes."""
    if not isinstance(y, list):
        return None
    xv, yv = validation_data if isinstance(validation_data, (tuple, list)) else (None, None)
    if not (isinstance(x, list) and isinstance(xv, list) and isinstance(yv, list)):
        raise _err(
            "with y a list of splits, x and validation_data=(x_val, y_val) must be lists of splits too"
        )
    if not y or not len(x) == len(y) == len(xv) == len(yv):
        raise _err(
            f"x, y, x_val and y_val must list the same number of splits (at least one), "
            f"got {len(x)}, {len(y)}, {len(xv)} and {len(yv)}"
        )
    for name, parts in (("x", x), ("y", y), ("validation x", xv), ("validation y", yv)):
        _same_shapes(name, parts)
    return len(y)


def _member_wise(parts, per_split):
    """The splits' arrays `[a_0, ..., a_{S-1}]` as member-wise data `(rows, S * per_split, ...)`.

    Member `k * per_split + r` gets split k's rows.

    Example:
    >>> import numpy as np
    >>> _member_wise([np.zeros(4), np.ones(4)], 2)[0, :, 0].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    return keras.tree.map_structure(
        lambda *split: np.repeat(np.stack([_column(a) for a in split], axis=1), per_split, axis=1), *parts
    )


class GridSearch:
    """Every configuration of a hyperparameter grid, trained as stacks; the best on validation.

    Args:
        build_model: a callable returning a new, built Keras model with a
            probnn head (start it with `keras.Input`); called with the grid's
            structural keys as keyword arguments (`build_model(**structure)`).
        grid: a dict from a hyperparameter name to a list of values. The keys
            `learning_rate`, `weight_decay`, `beta_1`, `beta_2` and `epsilon`
            set the optimizer, `kernel_l2` an L2 penalty on every kernel
            (`keras.regularizers.L2(kernel_l2)` as each Dense or convolution
            layer's `kernel_regularizer`, applied to the gradient by
            `probnn.training.MemberAdam`: configurations that differ only in it
            share one program); every other key goes to `build_model`.
        seeds: the number of seeds (0, 1, ... `seeds - 1`) or a list of seeds;
            every configuration trains once per seed (its initialisation,
            `keras.utils.set_random_seed(seed)` before `build_model`, and its
            shuffles).
        optimizer: `"adam"` (default), `"adamw"`, or a `keras.optimizers.Adam`
            / `AdamW` whose settings are the defaults of the keys not in the grid.
        loss: None (the head's negative log-likelihood, `probnn.fit`'s
            default), or a callable `loss(model)` returning the training loss
            of a built model, e.g. `lambda m: probnn.losses.EvidentialLoss(
            probnn.heads.find_head(m), reg_weight=0.01)` (it is called with
            each stack, whose head is its template's). Epochs and
            configurations are then chosen by the validation value of that
            loss (`probnn.fit`'s per-member `val_data_loss`), reported as
            `val_loss` in `results` instead of `val_nll`.

    Attributes (after `fit`):
        results: a list of dicts, one per (configuration, seed): `params` (the
            configuration), `seed`, `best_epoch` (epochs trained up to the best
            validation NLL, 1-based: what `refit` trains), `val_nll` (the best
            validation NLL per row), `seconds` (the wall time of the program
            that trained its stack, divided by the stack's members).
        best_params: the configuration with the lowest validation NLL, averaged
            over seeds.
        best_model: a Keras model with the best configuration's best weights
            (an `Ensemble` of its seeds when there are several).

    Several splits in one program: `fit(x, y, validation_data=(x_val, y_val))`
    with `x`, `y`, `x_val`, `y_val` LISTS of arrays, one per split (data set
    split or cross-validation fold; every split's arrays the same shape),
    trains every (configuration, seed, split) as a member of its structure's
    stack, member-wise data (`probnn.fit`) giving each member its split's
    rows: the per-step overhead that dominates small networks is paid once
    for all splits. Each member ends where a one-split search on its split
    leaves it. Then `results` have a `split` key (0-based),
    `best_params_per_split[k]` is split k's best configuration,
    `best_epochs(split=k)` and `refit(x, y, split=k)` are split k's, and
    `best_params` is the configuration with the lowest validation NLL averaged
    over seeds and splits (cross-validation); `best_model` is then refused
    (use `trained_model` or `refit(..., split=k)`).

    Example:
    >>> import keras, numpy as np, probnn
    >>> def build(units=8):
    ...     return keras.Sequential([keras.Input((1,)), keras.layers.Dense(units, "relu"),
    ...                              probnn.heads.NormalHead()])
    >>> x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    >>> search = probnn.GridSearch(build, {"learning_rate": [1e-3, 1e-2], "units": [4, 8]})
    >>> search.fit(x, 2 * x, validation_data=(x, 2 * x), epochs=3, batch_size=16, verbose=0)
    >>> len(search.results), sorted(search.best_params)
    (4, ['learning_rate', 'units'])
    """

    def __init__(self, build_model, grid, *, seeds=1, optimizer="adam", loss=None):
        if not callable(build_model) or isinstance(build_model, keras.layers.Layer):
            raise _err(f"build_model must be a callable returning a new Keras model, got {build_model!r}")
        self.build_model = build_model
        self.grid = _check_grid(grid)
        self.seeds = _check_seeds(seeds)
        if loss is not None and (not callable(loss) or isinstance(loss, keras.losses.Loss)):
            raise _err(
                f"loss must be None or a callable loss(model) returning the loss of a model, got {loss!r}"
            )
        self.loss = loss
        self._optimizer_class, self._optimizer_config = _base_optimizer(optimizer)
        self._check_keys()
        self.results = None
        self.best_params = None
        self.best_params_per_split = None
        self._splits = None  # the number of splits of the last fit (None: one, the plain API)
        self._stacks = {}
        self._cache = {}  # (kind, structure, ...) -> (stack, MemberAdam), reused by later calls

    def _check_keys(self):
        """Optimizer keys must be per-member ones; the others must be accepted by build_model."""
        accepted = set(inspect.signature(self._optimizer_class).parameters)
        for key in self.grid:
            if key in MEMBER_KEYS:
                continue
            if key in accepted or key in ("optimizer", "seed", "seeds"):
                raise _err(
                    f"unknown optimizer key {key!r}: a grid can vary the optimizer's "
                    f"{', '.join(MEMBER_KEYS)} (set other optimizer options with "
                    f"optimizer=keras.optimizers.Adam(...), seeds with seeds=)"
                )
        structural = [k for k in self.grid if k not in MEMBER_KEYS]
        try:
            signature = inspect.signature(self.build_model)
        except (TypeError, ValueError):  # a builtin or C callable: checked when called
            return
        for key in structural:
            try:
                signature.bind_partial(**{key: self.grid[key][0]})
            except TypeError:
                raise _err(
                    f"build_model does not accept the grid key {key!r} (its parameters: "
                    f"{list(signature.parameters)}); optimizer keys are "
                    f"{', '.join(MEMBER_KEYS)}"
                ) from None

    def _configurations(self):
        """`{structure (a tuple of items): [configuration dict, ...]}`, in grid order."""
        keys = list(self.grid)
        groups = {}
        for values in itertools.product(*(self.grid[k] for k in keys)):
            params = dict(zip(keys, values))
            structure = tuple((k, v) for k, v in params.items() if k not in MEMBER_KEYS)
            groups.setdefault(structure, []).append(params)
        return groups

    def _build(self, structure, seed, build_model=None):
        keras.utils.set_random_seed(seed)
        try:
            model = (build_model or self.build_model)(**dict(structure))
        except TypeError as exc:
            raise _err(f"build_model(**{dict(structure)!r}) failed: {exc}") from None
        if not isinstance(model, keras.Model) or not model.built:
            raise _err(
                f"build_model must return a built keras.Model (start it with keras.Input), got {model!r}"
            )
        return model

    @property
    def _score_key(self):
        """The results' key of the validation score: the NLL, or the validation value of `loss`."""
        return "val_nll" if self.loss is None else "val_loss"

    def _loss(self, model):
        return None if self.loss is None else self.loss(model)

    def _optimizer(self, params):
        config = dict(self._optimizer_config)
        config.update({k: v for k, v in params.items() if k in OPTIMIZER_KEYS})
        return self._optimizer_class.from_config(config)

    def fit(
        self,
        x,
        y,
        *,
        validation_data,
        epochs,
        batch_size=32,
        patience=None,
        validation_samples=None,
        verbose=0,
    ):
        """Train every (configuration, seed) with early stopping on the validation NLL.

        Calling `fit` again (another fold, another split) trains every member
        afresh, as a new search would, but reuses the stacks (and compiled
        programs) of the previous call; `results`, `best_params` and
        `best_model` are those of the last call.

        Args:
            x, y: training inputs and targets (arrays, as `probnn.fit` takes
                them), or lists of them, one per split (see the class
                docstring: every split in one program).
            validation_data: `(x_val, y_val)`, whose negative log-likelihood
                chooses the best epoch of every member and the best
                configuration (lists of arrays, one per split, with lists `x`, `y`).
            epochs: the most epochs any member trains.
            batch_size: rows per step.
            patience: stop a member after this many epochs without improvement
                (Keras's `EarlyStopping`); None: train every member for `epochs`
                (its best epoch's weights are still the ones kept).
            validation_samples: None, or for a stochastic model (MC dropout,
                variational layers) K: every member's validation NLL is that
                of the mixture of its K stochastic passes (`probnn.fit`'s
                `validation_samples`).
            verbose: passed to `probnn.fit`.
        """
        if validation_data is None:
            raise _err("fit needs validation_data=(x_val, y_val) to choose epochs and configurations")
        splits = _check_splits(x, y, validation_data)
        groups = self._configurations()
        # Build every stack before training anything: bad keys fail at once.
        stacks = {}
        for structure, configs in groups.items():
            models = [self._build(structure, seed) for _ in configs for seed in self.seeds]
            stacks[structure] = (models, [params for params in configs for _ in self.seeds])
        self.results, self._stacks, self._splits = [], {}, splits
        self.best_params_per_split = None
        settings = dict(
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            validation_samples=validation_samples,
            verbose=verbose,
        )
        for structure, configs in groups.items():
            models, member_params = stacks[structure]
            self._fit_structure(structure, configs, models, member_params, (x, y, validation_data), settings)
        if splits is None:
            self.best_params = min(self._mean_val_nll(), key=lambda pair: pair[1])[0]
            return
        self.best_params_per_split = [
            min(self._mean_val_nll(split=k), key=lambda pair: pair[1])[0] for k in range(splits)
        ]
        self.best_params = min(self._mean_val_nll(), key=lambda pair: pair[1])[0]

    def _fit_structure(self, structure, configs, models, member_params, data, settings):
        """Trains one structure's stack (every configuration, seed and split) and appends its results."""
        x, y, validation_data = data
        splits, per_split = self._splits or 1, len(models)
        if self._splits is not None:  # member k * per_split + r: split k's rows
            x, y = _member_wise(x, per_split), _member_wise(y, per_split)
            validation_data = tuple(_member_wise(part, per_split) for part in validation_data)
        stack, optimizer = self._reused_stack(
            ("fit", structure, self._splits), models * splits, member_params * splits
        )
        # patience=None: never stop (patience = epochs), still keep each member's best epoch.
        patience = settings["patience"]
        stopper = MemberEarlyStopping(
            "val_nll" if self.loss is None else "val_data_loss",
            patience=settings["epochs"] if patience is None else patience,
        )
        started = time.perf_counter()
        probnn_fit(
            stack,
            x,
            y,
            loss=self._loss(stack),
            optimizer=optimizer,
            seed=self.seeds * len(configs) * splits,
            validation_data=validation_data,
            validation_samples=settings["validation_samples"],
            epochs=settings["epochs"],
            initial_epoch=0,
            batch_size=settings["batch_size"],
            callbacks=[stopper],
            verbose=settings["verbose"],
        )
        seconds = (time.perf_counter() - started) / (per_split * splits)
        self._stacks[structure] = (stack, configs)
        for k in range(splits):
            for i, params in enumerate(configs):
                for j, seed in enumerate(self.seeds):
                    m = k * per_split + i * len(self.seeds) + j
                    result = {"params": dict(params), "seed": seed}
                    if self._splits is not None:
                        result["split"] = k
                    result["best_epoch"] = int(stopper.best_epoch[m]) + 1
                    result[self._score_key] = float(stopper.best[m])
                    result["seconds"] = seconds
                    self.results.append(result)

    def _reused_stack(self, key, models, member_params):
        """A stack of `models` and its `MemberAdam` (member m with `member_params[m]`'s settings).

        New, or an earlier call's reinitialised.

        An earlier `fit` (or `refit`) with the same structure and optimizer
        settings left a stack whose compiled programs fit this one: its
        members get the new models' weights (`Ensemble.set_members`) and the
        optimizer starts afresh (`MemberAdam.reset`), so another fit (another
        cross-validation fold, another split) compiles nothing again. The
        training is the same as with a new stack.
        """
        cached = self._cache.get(key)
        if cached is None:
            optimizers = [self._optimizer(params) for params in member_params]
            kernel_l2 = [params.get("kernel_l2", 0.0) for params in member_params]
            cached = (_stack(models), MemberAdam.from_optimizers(optimizers, kernel_l2=kernel_l2))
            self._cache[key] = cached
        else:
            cached[0].set_members(models)
            if cached[1].built:
                cached[1].reset()
        return cached

    def _mean_val_nll(self, split=None):
        """`[(params, mean validation NLL over seeds (and splits))]` per configuration, in grid order.

        `split=k`: the results of split k only.
        """
        per = {}
        for r in self.results:
            if split is not None and r["split"] != split:
                continue
            per.setdefault(tuple(r["params"].items()), []).append(r[self._score_key])
        return [(dict(k), float(np.mean(v))) for k, v in per.items()]

    def _check_fitted(self, what):
        if self.results is None:
            raise _err(f"{what} needs fit() first")

    @property
    def best_model(self):
        """The best configuration's trained model (an `Ensemble` of its seeds if several)."""
        self._check_fitted("best_model")
        if self._splits is not None:
            raise _err(
                "best_model: the search ran several splits; use trained_model(index) or refit(x, y, split=k)"
            )
        structure = tuple((k, v) for k, v in self.best_params.items() if k not in MEMBER_KEYS)
        stack, configs = self._stacks[structure]
        i = configs.index(self.best_params)
        members = [stack.member(i * len(self.seeds) + j) for j in range(len(self.seeds))]
        return members[0] if len(members) == 1 else _stack(members)

    def trained_model(self, index):
        """The trained model of `results[index]` (its configuration and seed, best weights)."""
        self._check_fitted("trained_model")
        result = self.results[index]
        params = result["params"]
        structure = tuple((k, v) for k, v in params.items() if k not in MEMBER_KEYS)
        stack, configs = self._stacks[structure]
        per_split = len(configs) * len(self.seeds)
        return stack.member(
            result.get("split", 0) * per_split
            + configs.index(params) * len(self.seeds)
            + self.seeds.index(result["seed"])
        )

    def best_epochs(self, split=None):
        """Per seed, the best configuration's `best_epoch` (of split `split` after a several-split `fit`)."""
        self._check_fitted("best_epochs")
        params, split = self._best_of(split, "best_epochs")
        return [
            r["best_epoch"]
            for r in self.results
            if r["params"] == params and (split is None or r["split"] == split)
        ]

    def _best_of(self, split, what):
        """`(best params, split)`: the search's, or split `split`'s after a several-split `fit`."""
        if self._splits is None:
            if split is not None:
                raise _err(f"{what}: split={split!r} needs a fit over several splits (lists of arrays)")
            return self.best_params, None
        if (
            isinstance(split, bool)
            or not isinstance(split, (int, np.integer))
            or not 0 <= split < self._splits
        ):
            raise _err(
                f"{what}: the search ran {self._splits} splits; pass split=k with 0 <= k < {self._splits}"
            )
        return self.best_params_per_split[split], int(split)

    def refit(self, x, y, *, epochs=None, seeds=None, build_model=None, batch_size=32, verbose=0, split=None):
        """Retrain the best configuration from scratch on `(x, y)` (e.g. training + validation rows).

        Every seed's model is built and initialised as in `fit`, and trained
        for `epochs` epochs.

        After a `fit` over several splits, `x` and `y` can be lists, one
        training set per split (the same shapes): every split's best
        configuration is retrained on its own data for its own best epochs,
        the splits that chose one structure as members of ONE program (as in
        `fit`); each model is the one `refit(x[k], y[k], split=k)` returns.

        Args:
            x, y: the training data (lists of them, one per split: see above).
            epochs: None: each seed its own `best_epoch` (the UCI protocol;
                with other `seeds`, the mean best epoch, rounded); an integer:
                the same number for all.
            seeds: the seeds of the retrained models (default: the search's);
                e.g. 5 seeds for an ensemble of a configuration chosen on one.
            build_model: another builder for the retrained models (default:
                the search's), e.g. one that scales a KL term to the larger data.
            batch_size, verbose: as in `fit`.
            split: after a `fit` over several splits with `x`, `y` arrays, the
                split k whose best configuration and best epochs are retrained.

        Returns:
            The retrained Keras model (an `Ensemble` of the seeds if several);
            with lists `x`, `y`, a list of them, one per split.
        """
        self._check_fitted("refit")
        seeds = self.seeds if seeds is None else _check_seeds(seeds)
        if isinstance(y, list) and split is None and self._splits is not None:
            return self._refit_splits(x, y, epochs, seeds, build_model, batch_size, verbose)
        best_params, split = self._best_of(split, "refit")
        counts = self._refit_epochs(split, epochs, seeds)
        (models,) = self._refit_group(
            [best_params], [counts], (x, y), seeds, build_model, batch_size, verbose
        )
        return models

    def _refit_epochs(self, split, epochs, seeds):
        """Epochs of each seed's retraining: its best epoch, their rounded mean, or `epochs`."""
        best = self.best_epochs(split)
        if epochs is None:
            counts = best if seeds == self.seeds else [int(round(np.mean(best)))] * len(seeds)
        else:
            counts = [epochs] * len(seeds)
        if not all(isinstance(e, (int, np.integer)) and e >= 1 for e in counts):
            raise _err(f"refit: epochs must be a positive integer or None, got {epochs!r}")
        return counts

    def _refit_splits(self, x, y, epochs, seeds, build_model, batch_size, verbose):
        """`refit` of every split (lists `x`, `y`): one program per chosen structure."""
        if not isinstance(x, list) or len(x) != len(y) or len(y) != self._splits:
            raise _err(
                f"refit: the search ran {self._splits} splits; give x and y as lists of "
                f"{self._splits} training sets (or arrays and split=k)"
            )
        _same_shapes("x", x)
        _same_shapes("y", y)
        groups = {}
        for k, params in enumerate(self.best_params_per_split):
            structure = tuple((key, v) for key, v in params.items() if key not in MEMBER_KEYS)
            groups.setdefault(structure, []).append(k)
        refitted = [None] * self._splits
        for ks in groups.values():
            data = (x[ks[0]], y[ks[0]])
            if len(ks) > 1:
                data = (
                    _member_wise([x[k] for k in ks], len(seeds)),
                    _member_wise([y[k] for k in ks], len(seeds)),
                )
            models = self._refit_group(
                [self.best_params_per_split[k] for k in ks],
                [self._refit_epochs(k, epochs, seeds) for k in ks],
                data,
                seeds,
                build_model,
                batch_size,
                verbose,
            )
            for k, model in zip(ks, models):
                refitted[k] = model
        return refitted

    def _refit_group(self, params, counts, data, seeds, build_model, batch_size, verbose):
        """Retrain configurations `params` (one structure) x `seeds` in one stack.

        `counts[g]` are configuration g's epochs per seed; `data` is `(x, y)`,
        member-wise (member `g * len(seeds) + r`) for several configurations.
        Returns one model per configuration (an `Ensemble` of its seeds if several).
        """
        structure = tuple((k, v) for k, v in params[0].items() if k not in MEMBER_KEYS)
        models = [self._build(structure, seed, build_model) for _ in params for seed in seeds]
        member_params = [p for p in params for _ in seeds]
        key = ("refit", tuple(tuple(p.items()) for p in member_params), tuple(seeds), id(build_model))
        stack, optimizer = self._reused_stack(key, models, member_params)
        counts = [int(c) for per_config in counts for c in per_config]
        probnn_fit(
            stack,
            *data,
            loss=self._loss(stack),
            optimizer=optimizer,
            seed=list(seeds) * len(params),
            epochs=max(counts),
            initial_epoch=0,
            batch_size=batch_size,
            callbacks=[MemberEpochs(counts)],
            verbose=verbose,
        )
        # Copies: the stack itself is reused (overwritten) by a later refit.
        members = [stack.member(i) for i in range(len(member_params))]
        per = len(seeds)
        return [
            members[g * per] if per == 1 else _stack(members[g * per : (g + 1) * per])
            for g in range(len(params))
        ]


def _same_shapes(name, parts):
    """Every split's `name` has split 0's shapes (member-wise data needs them)."""
    shapes = [tuple(np.shape(a)) for a in keras.tree.flatten(parts[0])]
    for k, part in enumerate(parts[1:], 1):
        other = [tuple(np.shape(a)) for a in keras.tree.flatten(part)]
        if other != shapes:
            raise _err(
                f"every split's {name} must have the same shape (rows included), "
                f"split 0 has {shapes}, split {k} has {other}"
            )


def _stack(models):
    return Ensemble.from_models(models)
