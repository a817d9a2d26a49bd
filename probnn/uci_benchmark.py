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
                 their uniform mixture (deep ensembles without adversarial training)
    mc-dropout   `probnn.layers.MCDropout` after the hidden layer, 100 test passes;
                 grid: dropout rate x learning rate x weight decay
    flipout      a variational network: `probnn.layers.DenseFlipout` hidden and output
                 layers (KL weight 1/n_train, N(0, 1) prior), then the Normal head's
                 2x2 affine map; 100 test passes; grid: learning rate. Trained one
                 model at a time with `probnn.fit` (see `run_method_unstacked`).
    mixture      `MixtureNormalHead` with K in {2, 3, 5} components (the best per split
                 on validation); grid: K x learning rate x weight decay

Speed: every configuration, split and ensemble member of one data set and one
network structure trains together, in ONE XLA-compiled program: the template
model runs under a stack of per-slot weights (`tf.vectorized_map` over
`model.stateless_call`, as `probnn.functional.stacked_call`), each slot with
its own rows, shuffles, learning rate, weight decay and early-stopping state,
and Adam updates all slots at once. One compilation per data set and network
structure replaces one per model. Stochastic layers (dropout masks, Flipout
noise) draw the same noise in every slot at a given step (a loop-invariant
seed keeps the vectorisation; each slot on its own still sees fresh noise every
step, as in separate runs); the test-time passes use independent seeds.
"""

import dataclasses
import itertools
import math
import pathlib
import time

import numpy as np

from probnn.datasets.uci import UCI_DATASETS, available_uci_datasets, load_uci, uci_folder, uci_num_splits

# Published reference numbers (../shared/datasets/uci/README.md): (RMSE, RMSE s.e., test LL, LL s.e.).
PUBLISHED = {
    "MC dropout (grid search)": {
        "bostonHousing": (2.90, 0.18, -2.40, 0.04), "concrete": (4.82, 0.16, -2.93, 0.02),
        "energy": (0.54, 0.06, -1.21, 0.01), "kin8nm": (0.08, 0.00, 1.14, 0.01),
        "naval-propulsion-plant": (0.00, 0.00, 4.45, 0.00), "power-plant": (4.01, 0.04, -2.80, 0.01),
        "protein-tertiary-structure": (4.27, 0.02, -2.87, 0.00),
        "wine-quality-red": (0.62, 0.01, -0.93, 0.01), "yacht": (0.67, 0.05, -1.25, 0.01),
    },
    # Deep ensembles and NGBoost publish NLL; stored here as log likelihood = -NLL.
    "Deep ensembles": {
        "bostonHousing": (3.28, 1.00, -2.41, 0.25), "concrete": (6.03, 0.58, -3.06, 0.18),
        "energy": (2.09, 0.29, -1.38, 0.22), "kin8nm": (0.09, 0.00, 1.20, 0.02),
        "naval-propulsion-plant": (0.00, 0.00, 5.63, 0.05), "power-plant": (4.11, 0.17, -2.79, 0.04),
        "protein-tertiary-structure": (4.71, 0.06, -2.83, 0.02),
        "wine-quality-red": (0.64, 0.04, -0.94, 0.12), "yacht": (1.58, 0.48, -1.18, 0.21),
    },
    "NGBoost": {
        "bostonHousing": (2.94, 0.53, -2.43, 0.15), "concrete": (5.06, 0.61, -3.04, 0.17),
        "energy": (0.46, 0.06, -0.60, 0.45), "kin8nm": (0.16, 0.00, 0.49, 0.02),
        "naval-propulsion-plant": (0.00, 0.00, 5.34, 0.04), "power-plant": (3.79, 0.18, -2.79, 0.11),
        "protein-tertiary-structure": (4.33, 0.03, -2.81, 0.03),
        "wine-quality-red": (0.63, 0.04, -0.91, 0.06), "yacht": (0.50, 0.20, -0.20, 0.26),
    },
}


@dataclasses.dataclass(frozen=True)
class Method:
    """A benchmark method: how to build its network and which hyperparameters to search.

    `structures` are the hyperparameters that change the network (one compiled
    program each); `learning_rates` x `weight_decays` are searched per slot
    inside one program. `members` > 1 makes an ensemble; `stochastic` methods
    are evaluated by a mixture over `test_samples` noisy passes.
    """

    name: str
    label: str
    structures: tuple
    learning_rates: tuple
    weight_decays: tuple
    members: int = 1
    stochastic: bool = False
    stacked: bool = True


METHODS = {
    "normal": Method("normal", "Normal head", ({},), (1e-3, 3e-3), (1e-5, 1e-4, 1e-3)),
    "ensemble": Method("ensemble", "Ensemble of 5 Normal heads", ({},), (1e-3, 3e-3), (1e-5, 1e-4, 1e-3),
                       members=5),
    "mc-dropout": Method("mc-dropout", "MC dropout", tuple({"rate": r} for r in (0.01, 0.05, 0.1)),
                         (1e-3, 3e-3), (1e-5, 1e-4, 1e-3), stochastic=True),
    "flipout": Method("flipout", "Variational (Flipout)", ({},), (1e-3, 1e-2), (0.0,), stochastic=True,
                      stacked=False),
    "mixture": Method("mixture", "Best mixture head", tuple({"components": k} for k in (2, 3, 5)),
                      (1e-3, 3e-3), (1e-5, 1e-4, 1e-3)),
}

QUICK_SPLITS = 3


def quick(method):
    """The `--quick` variant of a method: the middle of each grid, fewer structures."""
    def middle(values):
        return (values[len(values) // 2],)

    return dataclasses.replace(method, structures=method.structures[:2] if len(method.structures) > 1
                               else method.structures, learning_rates=middle(method.learning_rates),
                               weight_decays=method.weight_decays[-2:] if len(method.weight_decays) > 1
                               else method.weight_decays)


@dataclasses.dataclass
class Settings:
    """Training settings shared by the methods."""

    max_epochs_factor: int = 10  # max epochs = factor x n_epochs.txt (the 2018 protocol's 10x)
    patience: int = 50
    batch_size: int = 32
    large_batch_size: int = 128  # for training splits of more than 2,000 rows
    val_fraction: float = 0.2
    test_samples: int = 100
    val_samples: int = 4
    seed: int = 0

    def batch_for(self, n):
        return self.batch_size if n <= 2000 else self.large_batch_size


QUICK_SETTINGS = Settings(max_epochs_factor=5, patience=30, test_samples=50)


def build_network(method, structure, n_features, n_hidden, n_train):
    """The Keras model of `method` with hyperparameters `structure` (one hidden ReLU layer)."""
    import keras

    import probnn

    layers = [keras.Input((n_features,))]
    if method.name == "flipout":
        # Variational hidden and output layers; the head's 2x2 affine map of the output stays deterministic.
        layers += [
            probnn.layers.DenseFlipout(n_hidden, activation="relu", kl_weight=1.0 / n_train),
            probnn.layers.DenseFlipout(2, kl_weight=1.0 / n_train),
            probnn.heads.NormalHead(),
        ]
        return keras.Sequential(layers)
    layers.append(keras.layers.Dense(n_hidden, activation="relu"))
    if method.name == "mc-dropout":
        layers.append(probnn.layers.MCDropout(structure["rate"]))
    if method.name == "mixture":
        layers.append(probnn.heads.MixtureNormalHead(num_components=structure["components"]))
    else:
        layers.append(probnn.heads.NormalHead())
    return keras.Sequential(layers)


# ------------------------------------------------------------------ the stacked trainer


class StackedTrainer:
    """Train S copies ("slots") of one template model at once, each on its own data.

    Slot s uses data set `data_index[s]` (the leading axis of the arrays given
    to `train`), learning rate `lr[s]` and weight decay `wd[s]` (on kernels),
    draws its own shuffle every epoch, and keeps the weights of its best
    validation epoch (or of epoch `stop_at[s]` when given: retraining for a
    chosen number of epochs).
    """

    def __init__(self, template, head, *, stochastic, seed=0):
        import tensorflow as tf

        self.tf = tf
        self.template = template
        self.head = head
        self.stochastic = stochastic
        self.seed = seed
        self.decay_mask = [("kernel" in v.path and "raw_scale" not in v.path) for v in template.trainable_variables]
        self._state_specs = [(tuple(v.shape), v.dtype) for v in template.non_trainable_variables]
        self._epoch_fn = None
        self._eval_fn = None

    # -- pieces run inside the compiled programs
    def _state(self, counter):
        """Seed states for the template's stochastic layers, a pure function of an int counter."""
        tf = self.tf
        return [tf.cast(tf.stack([tf.cast(self.seed * 7919 + i, tf.int64), tf.cast(counter, tf.int64)]), dtype)
                for i, (shape, dtype) in enumerate(self._state_specs)]

    def _forward(self, weights, x, counter, training):
        """Outputs (S, B, P) and per-slot model losses (S,) for stacked weights and x (S, B, F)."""
        tf = self.tf
        state = self._state(counter)
        model = self.template

        def one(args):
            w, xs = args
            outputs, _, losses = model.stateless_call(list(w), state, xs, training=training,
                                                      return_losses=True)
            extra = tf.add_n([tf.cast(l, tf.float32) for l in losses]) if losses else tf.constant(0.0)
            return outputs, extra

        return tf.vectorized_map(one, (weights, x))

    def _nll(self, params, y):
        return -self.head.distribution(params).log_prob(y)

    def _build(self):
        tf = self.tf

        @tf.function(jit_compile=True, reduce_retracing=True)
        def epoch(weights, m, v, t, x, y, perm, mask, lr, wd, counter):
            steps = tf.shape(perm)[1]
            beta1, beta2, eps = 0.9, 0.999, 1e-7

            def body(step, weights, m, v, t):
                idx = perm[:, step]  # (S, B)
                xb = tf.gather(x, idx, batch_dims=1)
                yb = tf.gather(y, idx, batch_dims=1)
                mb = mask[:, step]
                with tf.GradientTape() as tape:
                    tape.watch(weights)
                    params, extra = self._forward(weights, xb, counter * 100003 + tf.cast(step, tf.int64), True)
                    nll = self._nll(params, yb)  # (S, B)
                    per_slot = tf.reduce_sum(nll * mb, axis=1) / tf.reduce_sum(mb, axis=1) + extra
                    for w, decay in zip(weights, self.decay_mask):
                        if decay:
                            per_slot += wd * tf.reduce_sum(tf.reshape(tf.square(w), [tf.shape(w)[0], -1]), axis=1)
                    total = tf.reduce_sum(per_slot)
                grads = tape.gradient(total, weights)
                t = t + 1.0
                c1, c2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
                new_w, new_m, new_v = [], [], []
                for w, g, mm, vv in zip(weights, grads, m, v):
                    g = tf.zeros_like(w) if g is None else tf.reshape(tf.convert_to_tensor(g), w.shape)
                    mm = beta1 * mm + (1 - beta1) * g
                    vv = beta2 * vv + (1 - beta2) * tf.square(g)
                    # Keras's Adam: step lr * sqrt(c2) / c1 on m / (sqrt(v) + eps).
                    rate = tf.reshape(lr, [-1] + [1] * (len(w.shape) - 1)) * tf.sqrt(c2) / c1
                    new_w.append(w - rate * mm / (tf.sqrt(vv) + eps))
                    new_m.append(mm)
                    new_v.append(vv)
                return step + 1, new_w, new_m, new_v, t

            _, weights, m, v, t = tf.while_loop(
                lambda step, *_: step < steps, body, (tf.constant(0), weights, m, v, t))
            return weights, m, v, t

        @tf.function(jit_compile=True, reduce_retracing=True)
        def evaluate(weights, x, y, counter, samples):
            """Validation NLL per slot: of the mixture over `samples` passes for stochastic models."""
            log_probs = []
            for k in range(samples):
                params, _ = self._forward(weights, x, counter * 100003 + k, False)
                log_probs.append(-self._nll(params, y))
            stacked = tf.stack(log_probs)  # (K, S, n)
            mixture = tf.reduce_logsumexp(stacked, axis=0) - math.log(samples)
            return -tf.reduce_mean(mixture, axis=1)

        self._epoch_fn, self._eval_fn = epoch, evaluate

    # -- the host loop
    def train(self, init_weights, data_index, lr, wd, x_train, y_train, x_val=None, y_val=None, *,
              batch_size, max_epochs, patience=None, stop_at=None, val_samples=1, slot_ids=None):
        """Train all slots; return (best weights (stacked), best epoch (S,), best validation NLL (S,), epochs run)."""
        tf = self.tf
        if self._epoch_fn is None:
            self._build()
        data_index = np.asarray(data_index)
        if data_index.size == 1:
            # One slot: XLA recompiled the one-slot program on every call (4-5 s per epoch,
            # measured); run a duplicate second slot instead and return the first.
            dup = lambda a: None if a is None else np.concatenate([np.asarray(a)] * 2)  # noqa: E731
            best, best_epoch, best_val, ran = self.train(
                [dup(w) for w in init_weights], dup(data_index), dup(lr), dup(wd), x_train, y_train,
                x_val, y_val, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                stop_at=dup(stop_at), val_samples=val_samples,
                slot_ids=None if slot_ids is None else dup(slot_ids))
            return [w[:1] for w in best], best_epoch[:1], best_val[:1], ran
        slots = data_index.size
        x_slots = tf.constant(np.asarray(x_train, np.float32)[data_index])
        y_slots = tf.constant(np.asarray(y_train, np.float32)[data_index])
        if x_val is not None:
            xv = tf.constant(np.asarray(x_val, np.float32)[data_index])
            yv = tf.constant(np.asarray(y_val, np.float32)[data_index])
        n = x_slots.shape[1]
        steps = math.ceil(n / batch_size)
        weights = [tf.constant(w) for w in init_weights]
        m = [tf.zeros_like(w) for w in weights]
        v = [tf.zeros_like(w) for w in weights]
        t = tf.constant(0.0)
        lr_t, wd_t = tf.constant(np.asarray(lr, np.float32)), tf.constant(np.asarray(wd, np.float32))
        best = [w for w in weights]
        best_val = np.full(slots, np.inf)
        best_epoch = np.zeros(slots, dtype=np.int64)
        samples = val_samples if self.stochastic else 1
        slot_ids = np.arange(slots) if slot_ids is None else np.asarray(slot_ids)
        epoch = 0
        for epoch in range(1, max_epochs + 1):
            # Slot s's shuffle is a function of (seed, its id, epoch) only, not of the other slots.
            order = np.stack([np.random.default_rng((self.seed, int(i), epoch)).permutation(n) for i in slot_ids])
            pad = steps * batch_size - n
            perm = np.concatenate([order, order[:, :pad]], axis=1).reshape(slots, steps, batch_size)
            mask = np.ones((slots, steps * batch_size), np.float32)
            mask[:, n:] = 0.0
            weights, m, v, t = self._epoch_fn(
                weights, m, v, t, x_slots, y_slots, tf.constant(perm.astype(np.int32)),
                tf.constant(mask.reshape(slots, steps, batch_size)), lr_t, wd_t,
                tf.constant(epoch, tf.int64))
            if stop_at is not None:
                improved = np.asarray(stop_at) == epoch
                best_val = np.where(improved, np.nan, best_val)
            else:
                val = self._eval_fn(weights, xv, yv, tf.constant(-epoch, tf.int64), samples).numpy()
                val = np.where(np.isfinite(val), val, np.inf)
                improved = val < best_val
                best_val = np.where(improved, val, best_val)
            best_epoch = np.where(improved, epoch, best_epoch)
            if improved.any():
                keep = tf.constant(improved)
                best = [tf.where(tf.reshape(keep, [-1] + [1] * (len(w.shape) - 1)), w, b)
                        for w, b in zip(weights, best)]
            if stop_at is not None and epoch >= np.max(stop_at):
                break
            if stop_at is None and patience is not None and np.all(epoch - best_epoch >= patience):
                break
        return [w.numpy() for w in best], best_epoch, best_val, epoch

    def predict_params(self, weights, data_index, x, samples):
        """Test-time head parameters (S, n, K, P) for data sets x (D, n, F); K = samples passes."""
        tf = self.tf
        data_index = np.asarray(data_index)
        if data_index.size == 1:  # see `train`
            return self.predict_params([np.concatenate([w] * 2) for w in weights],
                                       np.concatenate([data_index] * 2), x, samples)[:1]
        xs = tf.constant(np.asarray(x, np.float32)[data_index])
        weights = [tf.constant(w) for w in weights]
        outs = []
        for k in range(samples):
            params, _ = self._forward_eager(weights, xs, 10**9 + 7919 * k)
            outs.append(params.numpy())
        return np.stack(outs, axis=2)

    def _forward_eager(self, weights, x, counter):
        tf = self.tf
        if not hasattr(self, "_predict_fn"):
            self._predict_fn = tf.function(
                lambda w, xx, c: self._forward(w, xx, c, False), jit_compile=True, reduce_retracing=True)
        return self._predict_fn(weights, x, tf.constant(counter, tf.int64))


def initial_weights(build, count, seed):
    """Stacked trainable weights of `count` freshly initialised copies of `build()` (seeded)."""
    import keras

    import probnn

    models = []
    for i in range(count):
        keras.utils.set_random_seed(seed * 1000 + i)
        models.append(build())
    return [w.numpy() for w in probnn.functional.stack_weights(models)], models[0]


# ------------------------------------------------------------------ the protocol


@dataclasses.dataclass
class SplitResult:
    test_ll: float
    rmse: float
    config: dict
    epochs: int


@dataclasses.dataclass
class MethodResult:
    dataset: str
    method: str
    splits: list
    seconds: float

    def summary(self):
        ll = np.array([s.test_ll for s in self.splits])
        rmse = np.array([s.rmse for s in self.splits])
        k = len(self.splits)

        def se(a):
            return float(a.std(ddof=1) / math.sqrt(k)) if k > 1 else float("nan")

        return float(ll.mean()), se(ll), float(rmse.mean()), se(rmse)


def _standardised(split, val_fraction):
    x_mean, x_std = split.x_train.mean(0), split.x_train.std(0)
    x_std = np.where(x_std > 0, x_std, 1.0)
    y_mean, y_std = float(split.y_train.mean()), float(split.y_train.std())
    xs = lambda a: (a - x_mean) / x_std  # noqa: E731
    ys = lambda a: (a - y_mean) / y_std  # noqa: E731
    n = split.x_train.shape[0]
    n_val = int(round(val_fraction * n))
    return dict(
        x_fit=xs(split.x_train[: n - n_val]), y_fit=ys(split.y_train[: n - n_val]),
        x_val=xs(split.x_train[n - n_val:]), y_val=ys(split.y_train[n - n_val:]),
        x_train=xs(split.x_train), y_train=ys(split.y_train),
        x_test=xs(split.x_test), y_test=split.y_test, y_mean=y_mean, y_std=y_std,
    )


def _test_scores(head, params, y_test, y_mean, y_std):
    """Test log likelihood per point and RMSE, original units, of the mixture over axis 1 of params."""
    import probnn

    z = (np.asarray(y_test, np.float64) - y_mean) / y_std
    if params.shape[1] == 1:
        dist = head.distribution(params[:, 0].astype(np.float32))
    else:
        dist = probnn.prediction.mixture_distribution(head, params.astype(np.float32))
    ll = -float(probnn.metrics.nll(dist, z.astype(np.float32))) - math.log(y_std)
    rmse = float(probnn.metrics.rmse(dist, z.astype(np.float32))) * y_std
    return ll, rmse


def run_method(dataset, method, splits, data_dir, settings, log=print):
    """Run `method` on the given splits of `dataset`; return a `MethodResult`."""
    import probnn

    if not method.stacked:
        return run_method_unstacked(dataset, method, splits, data_dir, settings, log)
    started = time.perf_counter()
    loaded = [load_uci(dataset, k, data_dir) for k in splits]
    prepared = [_standardised(s, settings.val_fraction) for s in loaded]
    n_features = loaded[0].x_train.shape[1]
    n_hidden, n_epochs = loaded[0].n_hidden, loaded[0].n_epochs
    n_fit = prepared[0]["x_fit"].shape[0]
    n_train = prepared[0]["x_train"].shape[0]
    max_epochs = settings.max_epochs_factor * n_epochs
    grid = list(itertools.product(method.learning_rates, method.weight_decays))
    n_splits, members = len(splits), method.members
    stack = lambda key: np.stack([p[key] for p in prepared])  # noqa: E731

    # 1. every structure: (split, config, member) slots trained on the 80 % part, early stopping on validation.
    candidates = []  # per structure: (val NLL per split and config, best epochs, trainer, ...)
    for structure in method.structures:
        def build(structure=structure, n=n_fit):
            return build_network(method, structure, n_features, n_hidden, n)

        init, template = initial_weights(build, n_splits * members, settings.seed)
        slot_split = np.repeat(np.arange(n_splits), len(grid) * members)
        slot_config = np.tile(np.repeat(np.arange(len(grid)), members), n_splits)
        slot_member = np.tile(np.arange(members), n_splits * len(grid))
        init_index = slot_split * members + slot_member
        weights = [w[init_index] for w in init]
        trainer = StackedTrainer(template, probnn.heads.find_head(template),
                                 stochastic=method.stochastic, seed=settings.seed)
        _, best_epoch, best_val, ran = trainer.train(
            weights, slot_split, [grid[c][0] for c in slot_config], [grid[c][1] for c in slot_config],
            stack("x_fit"), stack("y_fit"), stack("x_val"), stack("y_val"),
            batch_size=settings.batch_for(n_fit), max_epochs=max_epochs, patience=settings.patience,
            val_samples=settings.val_samples)
        val = best_val.reshape(n_splits, len(grid), members).mean(axis=2)
        epochs = best_epoch.reshape(n_splits, len(grid), members)
        candidates.append((structure, val, epochs))
        log(f"  {dataset} {method.name} {structure or ''} validation runs: {ran} epochs, "
            f"{n_splits * len(grid) * members} slots, {time.perf_counter() - started:.0f} s")

    # 2. choose per split the (structure, config) with the best validation NLL.
    choice = []
    for k in range(n_splits):
        options = [(val[k, c], i, c) for i, (_, val, _) in enumerate(candidates) for c in range(len(grid))]
        _, i, c = min(options)
        choice.append((i, c, np.maximum(candidates[i][2][k, c], 1)))

    # 3. retrain the chosen configurations on the whole training split, grouped by structure.
    results = [None] * n_splits
    for i, (structure, _, _) in enumerate(candidates):
        chosen = [k for k in range(n_splits) if choice[k][0] == i]
        if not chosen:
            continue

        def build(structure=structure, n=n_train):
            return build_network(method, structure, n_features, n_hidden, n)

        init, template = initial_weights(build, n_splits * members, settings.seed + 1)
        slot_split = np.repeat(chosen, members)
        slot_member = np.tile(np.arange(members), len(chosen))
        weights = [w[slot_split * members + slot_member] for w in init]
        configs = [grid[choice[k][1]] for k in slot_split]
        stop_at = np.concatenate([choice[k][2] for k in chosen])
        head = probnn.heads.find_head(template)
        trainer = StackedTrainer(template, head, stochastic=method.stochastic, seed=settings.seed + 1)
        final, _, _, _ = trainer.train(
            weights, slot_split, [c[0] for c in configs], [c[1] for c in configs],
            stack("x_train"), stack("y_train"),
            batch_size=settings.batch_for(n_train), max_epochs=int(stop_at.max()), stop_at=stop_at)
        samples = settings.test_samples if method.stochastic else 1
        x_test = stack("x_test")
        params = trainer.predict_params(final, slot_split, x_test, samples)  # (slots, n, K, P)
        for j, k in enumerate(chosen):
            own = params[j * members:(j + 1) * members]  # (members, n, K, P)
            mix = np.concatenate(list(own), axis=1)  # (n, members*K, P)
            p = prepared[k]
            ll, rmse = _test_scores(head, mix, p["y_test"], p["y_mean"], p["y_std"])
            lr, wd = grid[choice[k][1]]
            results[k] = SplitResult(ll, rmse, dict(structure, lr=lr, wd=wd), int(np.max(choice[k][2])))
    seconds = time.perf_counter() - started
    log(f"  {dataset} {method.name}: done in {seconds:.0f} s")
    return MethodResult(dataset, method.name, results, seconds)


def run_method_unstacked(dataset, method, splits, data_dir, settings, log=print):
    """The same protocol, one model at a time with `probnn.fit` and `probnn.predict_distribution`.

    Used for the Flipout network: its per-example random signs do not vectorise
    over slots (the stacked program did not finish compiling in minutes).
    """
    import keras

    import probnn
    from probnn.training import EarlyStopping

    started = time.perf_counter()
    grid = list(itertools.product(method.learning_rates, method.weight_decays))
    results = []
    for k in splits:
        split = load_uci(dataset, k, data_dir)
        p = _standardised(split, settings.val_fraction)
        n_features = split.x_train.shape[1]
        max_epochs = settings.max_epochs_factor * split.n_epochs

        def train(x, y, lr, epochs, validation=None, n=None, seed=0):
            keras.utils.set_random_seed(settings.seed * 1000 + seed)
            model = build_network(method, method.structures[0], n_features, split.n_hidden, n)
            history = probnn.fit(
                model, x.astype("float32"), y.astype("float32"), optimizer=keras.optimizers.Adam(lr),
                epochs=epochs, batch_size=settings.batch_for(len(x)), verbose=0, seed=settings.seed,
                validation_data=None if validation is None else tuple(a.astype("float32") for a in validation),
                early_stopping=None if validation is None else EarlyStopping(
                    # a single noisy pass per validation: twice the patience of the deterministic runs
                    monitor="val_nll", patience=2 * settings.patience, restore_best_weights=True))
            return model, history

        best = None
        for c, (lr, _) in enumerate(grid):
            model, history = train(p["x_fit"], p["y_fit"], lr, max_epochs, (p["x_val"], p["y_val"]),
                                   n=len(p["x_fit"]), seed=c)
            dist = probnn.predict_distribution(model, p["x_val"].astype("float32"),
                                               num_samples=settings.test_samples, seed=0)
            val = float(probnn.metrics.nll(dist, p["y_val"].astype("float32")))
            epochs = (history.best_epoch if history.best_epoch is not None else len(history.epoch) - 1) + 1
            if best is None or val < best[0]:
                best = (val, lr, epochs)
        _, lr, epochs = best
        model, _ = train(p["x_train"], p["y_train"], lr, epochs, n=len(p["x_train"]), seed=99)
        dist = probnn.predict_distribution(model, p["x_test"].astype("float32"),
                                           num_samples=settings.test_samples, seed=1)
        z = ((p["y_test"] - p["y_mean"]) / p["y_std"]).astype("float32")
        ll = -float(probnn.metrics.nll(dist, z)) - math.log(p["y_std"])
        rmse = float(probnn.metrics.rmse(dist, z)) * p["y_std"]
        results.append(SplitResult(ll, rmse, dict(lr=lr), int(epochs)))
        log(f"  {dataset} {method.name} split {k}: test LL {ll:.3f}, RMSE {rmse:.3f} "
            f"(lr {lr}, {epochs} epochs), {time.perf_counter() - started:.0f} s")
    return MethodResult(dataset, method.name, results, time.perf_counter() - started)


# ------------------------------------------------------------------ tables


def _fmt(mean, se, digits):
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def format_table(results, *, published=("MC dropout (grid search)", "Deep ensembles", "NGBoost")):
    """Markdown tables (test log likelihood, then RMSE) of `MethodResult`s beside the published numbers."""
    datasets = list(dict.fromkeys(r.dataset for r in results))
    methods = list(dict.fromkeys(r.method for r in results))
    by = {(r.dataset, r.method): r for r in results}
    lines = []
    for title, index, digits in (("Test log likelihood (higher is better)", 0, 2), ("Test RMSE", 2, 2)):
        head = ["data set", "splits"] + [METHODS[m].label for m in methods] + [f"{p} (published)" for p in published]
        lines += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for d in datasets:
            k = max(len(by[(d, m)].splits) for m in methods if (d, m) in by)
            cells = [d, str(k)]
            for m in methods:
                if (d, m) in by:
                    s = by[(d, m)].summary()
                    cells.append(_fmt(s[index], s[index + 1], digits if d != "naval-propulsion-plant" or index == 0 else 4))
                else:
                    cells.append("")
            for p in published:
                ref = PUBLISHED[p].get(d)
                cells.append("" if ref is None else _fmt(ref[2], ref[3], 2) if index == 0 else _fmt(ref[0], ref[1], 2))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    times = ", ".join(f"{r.dataset}/{r.method} {r.seconds:.0f} s" for r in results)
    lines.append(f"Wall time per data set and method (validation runs, retraining and test): {times}.")
    return "\n".join(lines)


# ------------------------------------------------------------------ command line


@dataclasses.dataclass
class BenchJob:
    data_dir: pathlib.Path
    datasets: list
    splits: dict
    methods: list
    quick: bool
    output: object
    seed: int


def check_cli_arguments(args):
    """Check `probnn bench uci`'s arguments (no TensorFlow needed); return a `BenchJob`."""
    owner = "probnn bench uci"
    data_dir = pathlib.Path(args.data_dir)
    if not data_dir.is_dir():
        raise ValueError(f"{owner}: --data-dir {data_dir} is not a folder")
    datasets = args.datasets or [d for d in UCI_DATASETS if d in available_uci_datasets(data_dir)]
    if not datasets:
        raise ValueError(f"{owner}: no UCI data set folders (with data.txt) in {data_dir}")
    splits = {}
    for name in datasets:
        uci_folder(name, data_dir, owner)
        total = uci_num_splits(name, data_dir)
        k = args.splits or (QUICK_SPLITS if args.quick else total)
        if k > total:
            raise ValueError(f"{owner}: --splits {k} but {name} has {total} splits")
        splits[name] = list(range(k))
    methods = args.methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"{owner}: unknown method {unknown[0]!r} (choose from {', '.join(METHODS)})")
    output = None
    if args.output:
        output = pathlib.Path(args.output)
        if output.exists() and not args.overwrite:
            raise ValueError(f"{owner}: output file {output} already exists (pass --overwrite to replace it)")
    return BenchJob(data_dir, datasets, splits, methods, bool(args.quick), output, int(args.seed))


def run(job, log=print, on_result=None):
    """Run a `BenchJob`; return its `MethodResult`s (`on_result(results so far)` after each one)."""
    settings = dataclasses.replace(QUICK_SETTINGS if job.quick else Settings(), seed=job.seed)
    results = []
    for name in job.datasets:
        for m in job.methods:
            method = quick(METHODS[m]) if job.quick else METHODS[m]
            results.append(run_method(name, method, job.splits[name], job.data_dir, settings, log=log))
            if on_result is not None:
                on_result(results)
    return results


def run_cli(job):
    """`probnn bench uci`: run, print the table, write it to `--output` if given; exit status 0."""
    import os

    started = time.perf_counter()

    def text(results, done):
        total = time.perf_counter() - started
        return format_table(results) + (
            f"\n{'Total' if done else 'Partial (still running):'} wall time {total:.0f} s on "
            f"{os.cpu_count()} CPU cores{' (--quick: fewer splits, a smaller grid, fewer epochs)' if job.quick else ''}.")

    def save(results, done=False):
        if job.output is not None:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            job.output.write_text(text(results, done) + "\n")

    results = run(job, log=lambda line: print(line, flush=True), on_result=save)
    save(results, done=True)
    print(text(results, True))
    return 0
