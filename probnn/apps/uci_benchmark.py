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
import os
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
    select_members: int = 0  # members per slot group in the validation runs (0: all `members`)


# Learning rates: (3e-3, 1e-2). Measured on all 20 splits of concrete, bostonHousing, yacht,
# energy and wine (Normal head, grid 1e-3 / 3e-3 / 1e-2, chosen on validation): 1e-3 was
# chosen on 1 of 100 splits, 1e-2 on 79; with (1e-3, 3e-3) every concrete run had hit the
# 400-epoch cap. A further 3e-2 was chosen on 2 of 40 splits (energy, yacht): not kept.
LEARNING_RATES = (3e-3, 1e-2)
WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3)

METHODS = {
    "normal": Method("normal", "Normal head", ({},), LEARNING_RATES, WEIGHT_DECAYS),
    "ensemble": Method("ensemble", "Ensemble of 5 Normal heads", ({},), LEARNING_RATES, WEIGHT_DECAYS,
                       members=5, select_members=1),
    "mc-dropout": Method("mc-dropout", "MC dropout", tuple({"rate": r} for r in (0.01, 0.05, 0.1)),
                         LEARNING_RATES, WEIGHT_DECAYS, stochastic=True),
    "flipout": Method("flipout", "Variational (Flipout)", ({},), LEARNING_RATES, (0.0,), stochastic=True),
    "mixture": Method("mixture", "Best mixture head", tuple({"components": k} for k in (2, 3, 5)),
                      LEARNING_RATES, WEIGHT_DECAYS),
}

QUICK_SPLITS = 3


def quick(method):
    """The `--quick` variant of a method: the middle structure and learning rate, two weight decays.

    One structure means one compiled program per data set and method, which is
    what `--quick` spends most of its time on for the small data sets.
    """
    def middle(values):
        return (values[len(values) // 2],)

    return dataclasses.replace(method, structures=middle(method.structures),
                               learning_rates=middle(method.learning_rates),
                               weight_decays=method.weight_decays[-2:])


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

    def _slot_gradients(self, weights, x, y, mask, wd, counter):
        """Per-slot gradients of (masked mean NLL + model losses + wd * L2 of kernels), stacked (S, ...).

        The gradient is taken INSIDE the vectorised map (of each slot's own loss), not
        of the sum over slots outside it. Taken outside, a reduction inside the model
        (the KL sum of a variational layer's `add_loss`) is vectorised first: pfor
        shifts its axes to a computed tensor, so `Sum`'s gradient takes its dynamic
        path (DynamicStitch), whose indices XLA needs as compile-time constants; XLA
        then treated the program's inputs as constants and recompiled it on every
        epoch (Flipout: 3-25 s per epoch of 7 steps, measured; MC dropout with a
        single slot: 2.6-3.0 s per epoch, which the runner used to avoid by training
        a duplicate slot). Inside, each slot's gradient graph is built with static
        axes before vectorisation, and one compilation serves every epoch.

        `probnn.functional.stacked_call` solves the same problem for outputs with a
        custom gradient; the trainer does not use it, measured on 6 slots of a
        5,000-row data set (the same validation NLL to 4 digits either way): its
        gradient recomputes the forward pass, which doubled the first call (compile
        time, Normal head 2.7 s -> 5.3 s), and its stacked state gives each slot
        its own seeds, for which pfor runs the stateless random ops in a sequential
        loop (MC dropout epochs 2.1x slower). Here every slot shares one seed state.
        """
        tf = self.tf
        state = self._state(counter)
        model = self.template
        decay_mask = self.decay_mask

        def one(args):
            w, xs, ys, ms, wd_s = args
            w = list(w)
            with tf.GradientTape() as tape:
                tape.watch(w)
                outputs, _, losses = model.stateless_call(w, state, xs, training=True, return_losses=True)
                nll = self._nll(outputs, ys)  # (B,)
                loss = tf.reduce_sum(nll * ms) / tf.reduce_sum(ms)
                for extra in losses:
                    loss += tf.cast(extra, tf.float32)
                for wi, decay in zip(w, decay_mask):
                    if decay:
                        loss += wd_s * tf.reduce_sum(tf.square(wi))
            return tape.gradient(loss, w, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        return tf.vectorized_map(one, (weights, x, y, mask, wd))

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
                grads = self._slot_gradients(weights, xb, yb, mb, wd, counter * 100003 + tf.cast(step, tf.int64))
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
    split: int = None  # the standard split's index


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

    started, cpu_started = time.perf_counter(), time.process_time()
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
    # An ensemble's configuration is chosen on ONE network per (split, configuration)
    # (`Method.select_members`): its members are the same network from other seeds, so
    # the choice and the epoch count carry over; all members are then trained on the
    # whole training split. (Choosing on all 5 members' mean validation NLL cost 5x
    # the validation slots for the same estimate with less noise.)
    vm = method.select_members or members
    candidates = []  # per structure: (val NLL per split and config, best epochs, trainer, ...)
    for structure in method.structures:
        def build(structure=structure, n=n_fit):
            return build_network(method, structure, n_features, n_hidden, n)

        init, template = initial_weights(build, n_splits * vm, settings.seed)
        slot_split = np.repeat(np.arange(n_splits), len(grid) * vm)
        slot_config = np.tile(np.repeat(np.arange(len(grid)), vm), n_splits)
        slot_member = np.tile(np.arange(vm), n_splits * len(grid))
        init_index = slot_split * vm + slot_member
        weights = [w[init_index] for w in init]
        trainer = StackedTrainer(template, probnn.heads.find_head(template),
                                 stochastic=method.stochastic, seed=settings.seed)
        _, best_epoch, best_val, ran = trainer.train(
            weights, slot_split, [grid[c][0] for c in slot_config], [grid[c][1] for c in slot_config],
            stack("x_fit"), stack("y_fit"), stack("x_val"), stack("y_val"),
            batch_size=settings.batch_for(n_fit), max_epochs=max_epochs, patience=settings.patience,
            val_samples=settings.val_samples)
        val = best_val.reshape(n_splits, len(grid), vm).mean(axis=2)
        epochs = best_epoch.reshape(n_splits, len(grid), vm)
        candidates.append((structure, val, epochs))
        log(f"  {dataset} {method.name} {structure or ''} validation runs: {ran} epochs, "
            f"{n_splits * len(grid) * vm} slots, {time.perf_counter() - started:.0f} s")

    # 2. choose per split the (structure, config) with the best validation NLL.
    choice = []
    for k in range(n_splits):
        options = [(val[k, c], i, c) for i, (_, val, _) in enumerate(candidates) for c in range(len(grid))]
        _, i, c = min(options)
        choice.append((i, c, np.resize(np.maximum(candidates[i][2][k, c], 1), members)))

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
            results[k] = SplitResult(ll, rmse, dict(structure, lr=lr, wd=wd), int(np.max(choice[k][2])),
                                     split=int(splits[k]))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    log(f"  {dataset} {method.name}: done in {seconds:.0f} s wall, {cpu:.0f} s CPU")
    return MethodResult(dataset, method.name, results, seconds, cpu,
                        integer_valued(np.concatenate([s.y_train for s in loaded])))


# ------------------------------------------------------------------ tables

BASELINE = "MC dropout (grid search)"


def comparable(result):
    """Whether `result`'s test log likelihood is comparable to a continuous model's.

    A mixture head on integer-valued targets (wine-quality-red: scores 3-8) can put
    narrow components on the integers and earn density a continuous model of the
    score cannot: its log likelihood grows without bound as the spikes narrow, and
    says nothing about predictive quality. Such a cell is shown, marked, and never
    counted as the best method or as a win over a published number.
    """
    return not (result.integer_target and result.method == "mixture")


def _fmt(mean, se, digits):
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def best_result(results):
    """The comparable `MethodResult` with the highest mean test log likelihood, or None."""
    usable = [r for r in results if comparable(r)]
    return max(usable, key=lambda r: r.summary()[0]) if usable else None


def format_table(results, *, datasets=None, methods=None,
                 published=(BASELINE, "Deep ensembles", "NGBoost")):
    """Markdown tables (test log likelihood, then RMSE) of `MethodResult`s beside the published numbers.

    `datasets` / `methods` fix the rows and columns (default: those in `results`);
    a (data set, method) pair without a result is shown as "not run". The log-likelihood
    table adds the best comparable method per data set and whether it is at or above the
    published MC-dropout (grid search) figure; a count of such data sets follows.
    """
    datasets = list(datasets or dict.fromkeys(r.dataset for r in results))
    methods = [m for m in METHODS if (m in methods if methods else any(r.method == m for r in results))]
    by = {(r.dataset, r.method): r for r in results}
    lines = []
    wins, decided = [], []
    for title, index in (("Test log likelihood (higher is better)", 0), ("Test RMSE", 2)):
        head = (["data set", "splits"] + [METHODS[m].label for m in methods]
                + (["best (ours)", f"≥ published {BASELINE}?"] if index == 0 else [])
                + [f"{p} (published)" for p in published])
        lines += [f"**{title}**, mean ± standard error over splits", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for d in datasets:
            ran = [by[(d, m)] for m in methods if (d, m) in by]
            counts = sorted({len(r.splits) for r in ran})
            cells = [d, "/".join(str(c) for c in counts) or "-"]
            digits = 4 if d == "naval-propulsion-plant" and index == 2 else 2
            for m in methods:
                r = by.get((d, m))
                if r is None:
                    cells.append("not run")
                    continue
                s = r.summary()
                cell = _fmt(s[index], s[index + 1], digits)
                cells.append(cell if comparable(r) or index != 0 else cell + " (integer targets: not comparable)")
            if index == 0:
                # The verdict uses results on ALL splits only. A "yes" is final as soon as one such
                # method is at or above the published figure (more methods can only raise the best);
                # a "no" is final only when every method has run on all splits.
                whole = [r for r in ran if len(r.splits) == uci_total_splits(d)]
                best = best_result(whole) or best_result(ran)
                ref = PUBLISHED[BASELINE].get(d)
                if best is None or ref is None:
                    cells += ["", ""]
                else:
                    ll = best.summary()[0]
                    above = best in whole and round(ll, 2) >= ref[2]
                    if above:
                        verdict = "yes"
                        decided.append(d)
                        wins.append(d)
                    elif len(whole) == len(methods):
                        verdict = "no"
                        decided.append(d)
                    else:
                        verdict = "not yet (" + ("not all splits" if best not in whole else "not all methods") + ")"
                    cells += [f"{METHODS[best.method].label} {ll:.2f}", verdict]
            for p in published:
                ref = PUBLISHED[p].get(d)
                cells.append("" if ref is None else _fmt(ref[2], ref[3], 2) if index == 0 else _fmt(ref[0], ref[1], 2))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Data sets where a comparable method, on all splits, is at or above the published {BASELINE} "
                 f"test log likelihood (compared at its 2 published decimals): {len(wins)} "
                 f"({', '.join(wins) or 'none'}); decided so far: {len(decided)} of {len(datasets)} "
                 f"(a data set below it is decided when all {len(methods)} methods have run on all splits).")
    lines.append("")
    times = [f"{r.dataset}/{r.method} {r.seconds:.0f} s wall, {r.cpu_seconds:.0f} s CPU" for r in
             sorted(results, key=lambda r: (_order(r.dataset), list(METHODS).index(r.method)))]
    lines.append("Time per data set and method (validation runs, retraining and test): " + "; ".join(times) + ".")
    total_wall = sum(r.seconds for r in results)
    total_cpu = sum(r.cpu_seconds for r in results)
    lines.append(f"Sum: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU.")
    return "\n".join(lines)


def _order(dataset):
    return UCI_DATASETS.index(dataset) if dataset in UCI_DATASETS else len(UCI_DATASETS)


def uci_total_splits(dataset):
    """The number of standard splits of a UCI data set (20; protein 5)."""
    return 5 if dataset == "protein-tertiary-structure" else 20


# ------------------------------------------------------------------ results files (one per data set and method)


def result_path(results_dir, dataset, method):
    return pathlib.Path(results_dir) / f"{dataset}.{method}.json"


def result_to_json(result, *, settings, method, quick):
    """The JSON document of one (data set, method) result, with what produced it."""
    import platform
    from datetime import datetime, timezone

    import probnn

    versions = {"probnn": probnn.__version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "tensorflow_probability"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 (not installed or not importable)
            versions[name] = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    commit = None
    try:  # the checkout's commit, when run from one (benchmarks/uci.py)
        import subprocess

        here = pathlib.Path(__file__).resolve().parent
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "dataset": result.dataset,
        "method": result.method,
        "label": method.label,
        "quick": bool(quick),
        "splits": [dataclasses.asdict(s) for s in result.splits],
        "wall_seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "integer_target": bool(result.integer_target),
        "settings": dataclasses.asdict(settings),
        "grid": {"structures": list(method.structures), "learning_rates": list(method.learning_rates),
                 "weight_decays": list(method.weight_decays), "members": method.members,
                 "stochastic": method.stochastic},
        "versions": versions,
        "commit": commit,
        "machine": {"cpu_count": os.cpu_count(), "load_average_at_end": load, "platform": platform.platform()},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def result_from_json(doc):
    splits = [SplitResult(**s) for s in doc["splits"]]
    return MethodResult(doc["dataset"], doc["method"], splits, float(doc["wall_seconds"]),
                        float(doc.get("cpu_seconds", float("nan"))), bool(doc.get("integer_target", False)),
                        meta=doc)


def save_result(result, path, *, settings, method, quick):
    """Write one result atomically (a temporary file renamed), so an interrupted run leaves no half file."""
    import json

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result_to_json(result, settings=settings, method=method, quick=quick), indent=1) + "\n")
    os.replace(tmp, path)


def load_result(path):
    import json

    path = pathlib.Path(path)
    try:
        doc = json.loads(path.read_text())
        return result_from_json(doc)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"probnn bench uci: cannot read results file {path} ({error})") from None


def load_results(results_dir):
    """Every `MethodResult` in a results folder (files `DATASET.METHOD.json`), in table order."""
    found = [load_result(p) for p in sorted(pathlib.Path(results_dir).glob("*.json"))]
    return sorted(found, key=lambda r: (_order(r.dataset), list(METHODS).index(r.method)
                                        if r.method in METHODS else len(METHODS)))


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
    results_dir: object = None
    rerun: bool = False
    table_only: bool = False
    jobs: int = 1
    splits_arg: int = None  # --splits as given
    epochs_factor: int = None  # --epochs-factor: None for the default of the kind of run

    def default_settings(self):
        return QUICK_SETTINGS if self.quick else Settings()

    def settings(self):
        default = self.default_settings()
        return dataclasses.replace(default, seed=self.seed,
                                   max_epochs_factor=self.epochs_factor or default.max_epochs_factor)

    def method(self, name):
        return quick(METHODS[name]) if self.quick else METHODS[name]

    def pending(self):
        """(data set, method) pairs to run: all, or those without a results file unless `rerun`."""
        pairs = [(d, m) for d in self.datasets for m in self.methods]
        if self.results_dir is None or self.rerun:
            return pairs
        return [(d, m) for d, m in pairs if not result_path(self.results_dir, d, m).is_file()]


def check_cli_arguments(args):
    """Check `probnn bench uci`'s arguments (no TensorFlow needed); return a `BenchJob`."""
    owner = "probnn bench uci"
    results_dir = getattr(args, "results_dir", None)
    results_dir = None if results_dir is None else pathlib.Path(results_dir)
    table_only = bool(getattr(args, "table_only", False))
    rerun = bool(getattr(args, "rerun", False))
    if results_dir is not None and results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f"{owner}: --results-dir {results_dir} is not a folder")
    if table_only and results_dir is None:
        raise ValueError(f"{owner}: --table-only needs --results-dir (the folder of results files)")
    if rerun and results_dir is None:
        raise ValueError(f"{owner}: --rerun needs --results-dir")
    output = None
    if args.output:
        output = pathlib.Path(args.output)
        if output.exists() and not args.overwrite:
            raise ValueError(f"{owner}: output file {output} already exists (pass --overwrite to replace it)")
    methods = args.methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"{owner}: unknown method {unknown[0]!r} (choose from {', '.join(METHODS)})")
    if args.data_dir is None and not table_only:
        raise ValueError(f"{owner}: --data-dir PATH is required (the folder of the UCI data set folders)")
    data_dir = None if args.data_dir is None else pathlib.Path(args.data_dir)
    if table_only:
        names = args.datasets or list(UCI_DATASETS)
        bad = [d for d in names if d not in UCI_DATASETS]
        if bad:
            raise ValueError(f"{owner}: unknown data set {bad[0]!r} (choose from {', '.join(UCI_DATASETS)})")
        return BenchJob(data_dir, names, {}, methods, bool(args.quick), output, int(args.seed),
                        results_dir, rerun, True)
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
    jobs = int(getattr(args, "jobs", None) or 1)
    if jobs > 1 and results_dir is None:
        raise ValueError(f"{owner}: --jobs {jobs} needs --results-dir (the processes share their results there)")
    job = BenchJob(data_dir, datasets, splits, methods, bool(args.quick), output, int(args.seed),
                   results_dir, rerun, False, jobs, args.splits, getattr(args, "epochs_factor", None))
    if results_dir is not None and not rerun:
        # A file to be skipped must hold the same kind of run; anything else is a one-line error.
        factor = job.settings().max_epochs_factor
        for d in datasets:
            for m in methods:
                path = result_path(results_dir, d, m)
                if path.is_file():
                    old = load_result(path)
                    kind = "--quick" if old.meta.get("quick") else "full"
                    old_factor = old.meta.get("settings", {}).get("max_epochs_factor")
                    if (bool(old.meta.get("quick")) != job.quick or [s.split for s in old.splits] != splits[d]
                            or old_factor != factor):
                        raise ValueError(
                            f"{owner}: {path} holds a {kind} run on splits {[s.split for s in old.splits]} "
                            f"with --epochs-factor {old_factor}, not this one (pass --rerun to replace it, "
                            "or another --results-dir)")
    return job


def run(job, log=print, on_result=None):
    """Run a `BenchJob`; return the `MethodResult`s of the pairs run (`on_result(result)` after each).

    With `job.results_dir`, each (data set, method) result is written to its own JSON
    file as soon as it is done, and pairs whose file exists are skipped (unless
    `job.rerun`): an interrupted run continues where it stopped.
    """
    settings = job.settings()
    results = []
    for name, m in job.pending():
        method = job.method(m)
        result = run_method(name, method, job.splits[name], job.data_dir, settings, log=log)
        if job.results_dir is not None:
            save_result(result, result_path(job.results_dir, name, m), settings=settings, method=method,
                        quick=job.quick)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def table_text(job, results, wall=None):
    """The Markdown text of `job`'s table: of every results file in `job.results_dir` if it has one."""
    if job.results_dir is not None and job.results_dir.is_dir():
        results = load_results(job.results_dir)
        results = [r for r in results if r.dataset in job.datasets and r.method in job.methods]
        text = format_table(results, datasets=[d for d in UCI_DATASETS if d in job.datasets] if job.table_only
                            else job.datasets, methods=job.methods)
        text += f"\n\nFrom the results files in {job.results_dir}."
    else:
        text = format_table(results, datasets=job.datasets, methods=job.methods)
    if job.quick:
        text += "\n--quick: fewer splits, a smaller grid, fewer epochs (not comparable to the published columns)."
    factor = job.settings().max_epochs_factor  # of results not read from a file
    factors = sorted({r.meta.get("settings", {}).get("max_epochs_factor", factor) for r in results} or {factor})
    default = job.default_settings().max_epochs_factor
    if factors != [default]:
        text += (f"\nEpochs capped at {' / '.join(map(str, factors))} x n_epochs.txt (--epochs-factor; "
                 f"the default is {default} x).")
    if wall is not None:
        text += f"\nThis invocation: {wall:.0f} s wall on {os.cpu_count()} CPU cores."
    return text


def partition(job):
    """The pending data sets split into `job.jobs` lists of about equal work (largest first).

    Work of a data set: its pending methods x splits x data rows (x 2 for 100 hidden units);
    measured CPU time grows about linearly in each.
    """
    pending = {}
    for d, _ in job.pending():
        pending[d] = pending.get(d, 0) + 1
    cost = {}
    for d, methods in pending.items():
        folder = uci_folder(d, job.data_dir, "probnn bench uci")
        rows = sum(1 for _ in open(folder / "data.txt"))
        hidden = int((folder / "n_hidden.txt").read_text().split()[0])
        cost[d] = methods * len(job.splits[d]) * rows * (hidden / 50)
    groups = [[] for _ in range(job.jobs)]
    load = [0.0] * job.jobs
    for d in sorted(cost, key=cost.get, reverse=True):
        i = int(np.argmin(load))
        groups[i].append(d)
        load[i] += cost[d]
    order = {d: i for i, d in enumerate(job.datasets)}
    return [sorted(g, key=order.get) for g in groups if g]


def run_in_processes(job, log=print):
    """Run the pending pairs in `job.jobs` `probnn bench uci` processes (data sets split between
    them by `partition`), each writing its results files; their lines are logged with a prefix."""
    import subprocess
    import sys
    import threading

    import probnn

    root = str(pathlib.Path(probnn.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    procs = []
    for i, group in enumerate(partition(job)):
        argv = [sys.executable, "-u", "-m", "probnn", "bench", "uci", "--data-dir", str(job.data_dir),
                "--results-dir", str(job.results_dir), "--datasets", *group, "--methods", *job.methods,
                "--seed", str(job.seed)]
        argv += ["--quick"] if job.quick else []
        argv += ["--rerun"] if job.rerun else []
        argv += ["--splits", str(job.splits_arg)] if job.splits_arg else []
        argv += ["--epochs-factor", str(job.epochs_factor)] if job.epochs_factor else []
        log(f"  process {i + 1}: {' '.join(group)}")
        procs.append((i + 1, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                              env=env)))

    def relay(number, proc):
        for line in proc.stdout:
            if line.startswith(("  ", "probnn")):  # progress and error lines; the table is rebuilt below
                log(f"  [{number}]{line.rstrip()}")

    threads = [threading.Thread(target=relay, args=p) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [n for n, p in procs if p.wait() != 0]
    if failed:
        raise RuntimeError(f"probnn bench uci: process {failed[0]} of {len(procs)} failed (see its lines above)")


def run_job(job, log=print):
    """`probnn bench uci`: run what is pending, write the table to `job.output`; return the table text."""
    started = time.perf_counter()

    def save(_=None):
        if job.output is not None:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            wall = None if job.table_only else time.perf_counter() - started
            job.output.write_text(table_text(job, done, wall) + "\n")

    done = []
    if not job.table_only:
        skipped = len(job.datasets) * len(job.methods) - len(job.pending())
        if skipped:
            log(f"  skipping {skipped} (data set, method) pairs with results files in {job.results_dir}")
        if job.jobs > 1:
            run_in_processes(job, log)
        else:
            run(job, log=log, on_result=lambda r: (done.append(r), save()))
    save()
    return table_text(job, done, None if job.table_only else time.perf_counter() - started)
