"""SWAG: the Gaussian over weights that SGD explores around a trained model (Maddox et al. 2019).

`swag(model, x, y, schedule=SWAGSchedule(...))` continues training a copy of
the model with SGD at a constant (or per-epoch cyclic) learning rate and, at
the end of every epoch, records the weights `theta_i`: their running mean `theta_bar` (SWA), the
running mean of their squares, and the last `rank` deviations
`theta_i - theta_bar_i`. The posterior is

    N(theta_bar, 1/2 (diag(mean(theta^2) - theta_bar^2) + D D^T / (K - 1))),

drawn as `theta_bar + diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1))` (K
deviation columns in D). Predictions run every draw through the template model
with `probnn.functional.stacked_call`; a model with BatchNormalization gets
each draw's batch statistics recomputed on the training inputs first (the
statistics of the mean weights do not fit a draw).
"""

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from probnn._validation import error, int_at_least, positive_number
from probnn.bayes.inference_data import check_finite
from probnn.bayes.laplace import weights_inference_data
from probnn.functional import stacked_call
from probnn.heads.base import find_head
from probnn.training.compiled import cached_program
from probnn.training.fit import fit

_OWNER = "swag"
_DRAW_BATCH = 64  # draws per vectorised call


class _Moments(keras.callbacks.Callback):
    """Records the first and second moments and the last `rank` deviations of the weights."""

    def __init__(self, variables, rank, per_batch=False, start=0):
        super().__init__()
        self.variables, self.rank, self.per_batch, self.start = variables, rank, per_batch, start
        self.count, self.mean, self.sq_mean, self.deviations = 0, None, None, []
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.per_batch and self.epoch >= self.start:
            self._collect()

    def on_epoch_end(self, epoch, logs=None):
        if not self.per_batch and epoch >= self.start:
            self._collect()

    def _collect(self):
        theta = np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(v), np.float64).ravel() for v in self.variables]
        )
        if self.mean is None:
            self.mean, self.sq_mean = np.zeros_like(theta), np.zeros_like(theta)
        self.count += 1
        self.mean += (theta - self.mean) / self.count
        self.sq_mean += (theta**2 - self.sq_mean) / self.count
        self.deviations = (self.deviations + [theta - self.mean])[-self.rank :]


@keras.saving.register_keras_serializable(package="probnn")
class CyclicLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A cosine decay from `maximum` to `minimum` over every `period` steps, then a restart.

    Example:
    >>> from probnn.bayes.swag import CyclicLearningRate
    >>> rate = CyclicLearningRate(0.1, 0.001, period=10)
    >>> [round(float(rate(s)), 4) for s in (0, 5, 10)]
    [0.1, 0.0505, 0.1]
    """

    def __init__(self, maximum, minimum, period):
        self.maximum, self.minimum, self.period = float(maximum), float(minimum), int(period)

    def __call__(self, step):
        phase = keras.ops.cast(step % self.period, "float32") / self.period
        return self.minimum + 0.5 * (self.maximum - self.minimum) * (1 + keras.ops.cos(np.pi * phase))

    def get_config(self):
        return {"maximum": self.maximum, "minimum": self.minimum, "period": self.period}


@dataclasses.dataclass(frozen=True)
class SWAGSchedule:
    """The SGD run of `swag`: its epochs, learning rate, batches, burn-in and snapshots.

    Args:
        epochs: epochs of continued training whose weights are collected (>= 2).
        learning_rate: the (maximum) SGD learning rate.
        cyclic: False for a constant rate; True for a cosine from
            `learning_rate` to `learning_rate / 100` within every epoch, so each
            snapshot is taken at the cycle's lowest rate.
        batch_size: rows per SGD step.
        momentum: SGD momentum.
        weight_decay: SGD's decoupled weight decay (Keras `SGD(weight_decay=)`:
            `w -= learning_rate * weight_decay * w` every step, outside the
            momentum), None for none. The paper trains SWAG with PyTorch's
            weight decay, which is added to the gradient and so goes through
            the momentum: with momentum `m` the decoupled decay acts as a
            Gaussian prior of precision `len(x) * weight_decay * (1 - m)`, so
            a unit prior is `1 / (len(x) * (1 - momentum))`, not `1 / len(x)`
            (a prior of variance 10 at momentum 0.9).
        burn_in: epochs of SGD at the same rate before collecting (the
            paper's `swa_start`): a model trained with another optimizer
            (Adam) first drifts under SGD, and snapshots of that drift are a
            trend, not the posterior's spread.
        collect_every: None (a snapshot at every epoch's end, as the paper) or
            a snapshot after every `collect_every` SGD steps (and at the
            epoch's end), for small data sets with few steps per epoch.

    Example:
    >>> from probnn.bayes import SWAGSchedule
    >>> SWAGSchedule(epochs=200, learning_rate=5e-3, burn_in=100).epochs
    200
    >>> SWAGSchedule(epochs=1)
    Traceback (most recent call last):
    ...
    ValueError: SWAGSchedule: epochs must be an integer >= 2, got 1
    """

    epochs: int = 30
    learning_rate: float = 0.01
    cyclic: bool = False
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float | None = None
    burn_in: int = 0
    collect_every: int | None = None

    def __post_init__(self):
        owner = "SWAGSchedule"
        int_at_least(owner, "epochs", self.epochs, 2)
        int_at_least(owner, "batch_size", self.batch_size, 1)
        int_at_least(owner, "burn_in", self.burn_in, 0)
        if self.collect_every is not None:
            int_at_least(owner, "collect_every", self.collect_every, 1)
        positive_number(owner, "learning_rate", self.learning_rate)
        if not isinstance(self.cyclic, bool):
            raise error(owner, f"cyclic must be True or False, got {self.cyclic!r}")


def swag(model, x, y, *, schedule=None, rank=20, seed=None, verbose=0):
    """SWAG posterior of a trained probnn model's weights: SGD's iterates, summarised as a Gaussian.

    A copy of `model` is trained (the model itself is not changed) with
    `probnn.fit` and SGD with momentum, as `schedule` (a `SWAGSchedule`)
    says; the weights are recorded at the end of each epoch (or every
    `collect_every` steps) after the burn-in.

    Args:
        model: a trained Keras model ending in a probnn head (Sequential or functional).
        x: training inputs.
        y: training targets.
        schedule: a `probnn.bayes.SWAGSchedule` (default `SWAGSchedule()`: 30
            epochs of SGD at 0.01, momentum 0.9, batches of 32).
        rank: deviation columns kept (the low-rank part of the covariance).
        seed: seed of the shuffles.
        verbose: passed to `probnn.fit`.

    Returns:
        A `SWAG`: `mean`, `variance`, `deviations`, `to_inference_data(num_draws)`,
        and the predictive through `probnn.predict_distribution(model, x,
        posterior=swag, num_draws=K)`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 2)).astype("float32"); y = x[:, :1]
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
    ...                           probnn.heads.NormalHead()])
    >>> schedule = probnn.bayes.SWAGSchedule(epochs=3)
    >>> posterior = probnn.bayes.swag(model, x, y, schedule=schedule, rank=2, seed=0)
    >>> dist = probnn.predict_distribution(model, x[:4], posterior=posterior, num_draws=8, seed=0)
    >>> dist.batch_shape.as_list(), posterior.deviations.shape[0]
    ([4], 2)
    """
    find_head(model)
    schedule = SWAGSchedule() if schedule is None else schedule
    if not isinstance(schedule, SWAGSchedule):
        raise error(_OWNER, f"schedule must be a probnn.bayes.SWAGSchedule, got {schedule!r}")
    rank = int_at_least(_OWNER, "rank", rank, 1)
    try:
        work = keras.models.clone_model(model)
    except (ValueError, TypeError) as err:
        raise error(
            _OWNER,
            f"model {model.name!r} cannot be copied with keras.models.clone_model ({err}); "
            "use a Sequential or functional model",
        ) from None
    work.set_weights(model.get_weights())
    moments = _Moments(
        work.trainable_variables, rank, schedule.collect_every is not None, start=schedule.burn_in
    )
    fit(
        work,
        x,
        y,
        epochs=schedule.burn_in + schedule.epochs,
        batch_size=schedule.batch_size,
        seed=seed,
        verbose=verbose,
        optimizer=_optimizer(schedule, x),
        callbacks=[moments],
        steps_per_execution="epoch" if schedule.collect_every is None else schedule.collect_every,
    )
    if not (np.all(np.isfinite(moments.mean)) and np.all(np.isfinite(moments.sq_mean))):
        raise error(
            _OWNER,
            "the SGD iterates diverged (non-finite weights); lower learning_rate "
            f"(got {schedule.learning_rate}) or use a head with a shared scale",
        )
    return SWAG(
        model, mean=moments.mean, sq_mean=moments.sq_mean, deviations=np.stack(moments.deviations), x=x
    )


def _optimizer(schedule, x):
    """SGD with momentum at the schedule's rate (a per-epoch cosine cycle if `cyclic`)."""
    rate = schedule.learning_rate
    if schedule.cyclic:
        rows = len(tf.nest.flatten(x)[0])
        rate = CyclicLearningRate(rate, rate / 100, -(-rows // schedule.batch_size))
    return keras.optimizers.SGD(rate, momentum=schedule.momentum, weight_decay=schedule.weight_decay)


def _batch_norm_slots(model):
    """`(index in non_trainable_variables, momentum)` of every BatchNormalization moving statistic."""
    state = model.non_trainable_variables
    slots = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            for v in (layer.moving_mean, layer.moving_variance):
                slots.append((next(i for i, s in enumerate(state) if s is v), layer.momentum))
    return slots


def _rows(x):
    return len(tf.nest.flatten(x)[0])


def _chunk(x, start, stop):
    return tf.nest.map_structure(lambda a: a[start:stop], x)


def _stacked_states(model, weights, x_train, batch_size):
    """The non-trainable state for every draw, BatchNorm statistics recomputed on `x_train`.

    Each statistic is the row-weighted average over batches of the batch
    statistics (a cumulative average, as SWAG's `bn_update`): a training-mode
    pass from a zero moving statistic gives `(1 - momentum) * batch statistic`.
    """
    size = len(weights[0])
    state = [
        np.repeat(np.asarray(keras.ops.convert_to_numpy(v))[None], size, axis=0)
        for v in model.non_trainable_variables
    ]
    slots = _batch_norm_slots(model)
    if not slots:
        return state
    for i, _ in slots:
        state[i] = np.zeros_like(state[i])
    sums = {i: np.zeros_like(state[i], np.float64) for i, _ in slots}
    n = _rows(x_train)
    for start in range(0, n, batch_size):
        xb = _chunk(x_train, start, start + batch_size)
        _, new = stacked_call(model, weights, xb, non_trainable=state, training=True)
        for i, momentum in slots:
            sums[i] += np.asarray(new[i], np.float64) / (1 - momentum) * _rows(xb)
    for i, _ in slots:
        state[i] = (sums[i] / n).astype(state[i].dtype)
    return state


def _draw_params(model, weights, state, x, batch_size):
    """Head parameters under every draw, shape `(rows, draws, params_size)`."""
    run = cached_program(
        model,
        "swag/draws",
        lambda: tf.function(
            lambda w, s, xb: stacked_call(model, w, xb, non_trainable=s)[0], reduce_retracing=True
        ),
    )
    out = []
    for start in range(0, _rows(x), batch_size):
        out.append(np.asarray(run(weights, state, _chunk(x, start, start + batch_size))))
    params = np.concatenate(out, axis=1)
    if not np.all(np.isfinite(params)):
        raise error("predict_distribution", "the SWAG draws produced non-finite parameters at x")
    return np.swapaxes(params, 0, 1)


class SWAG:
    """A SWAG posterior returned by `probnn.bayes.swag` (see there).

    Attributes:
        mean: the SWA mean of the flattened trainable weights.
        variance: the diagonal part, `mean(theta^2) - mean^2` (clipped at 0).
        deviations: the low-rank part, shape `(K, D)`.
    """

    def __init__(self, model, *, mean, sq_mean, deviations, x=None):
        self.model = model
        self.mean, self.sq_mean = np.asarray(mean), np.asarray(sq_mean)
        self.deviations = np.asarray(deviations)
        self.shapes = [tuple(v.shape) for v in model.trainable_variables]
        self.dtypes = [v.dtype for v in model.trainable_variables]
        # the training inputs, kept (not copied) only to refresh BatchNorm statistics per draw
        self.x = x if _batch_norm_slots(model) else None

    @property
    def variance(self):
        return np.maximum(self.sq_mean - self.mean**2, 0.0)

    def sample_weights(self, num_draws, seed=None):
        """Draws of every trainable weight, `(num_draws,) + w.shape` each."""
        num_draws = int_at_least("SWAG", "num_draws", num_draws, 1)
        rng = np.random.default_rng(seed)
        k = len(self.deviations)
        theta = self.mean + np.sqrt(self.variance / 2) * rng.standard_normal((num_draws, self.mean.size))
        if k > 1:
            theta += rng.standard_normal((num_draws, k)) @ self.deviations / np.sqrt(2 * (k - 1))
        sizes = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        return [
            part.reshape((num_draws,) + shape).astype(dtype)
            for part, shape, dtype in zip(np.split(theta, sizes, axis=1), self.shapes, self.dtypes)
        ]

    def to_inference_data(self, num_draws=1000, seed=None):
        """`num_draws` draws of the weights as arviz `InferenceData` (one chain), named as
        `probnn.bayes.sample` names them (BatchNorm statistics are not part of it)."""
        return weights_inference_data(
            self.model, self.sample_weights(num_draws, seed), method=f"SWAG (rank {len(self.deviations)})"
        )

    def predictive_distribution(self, model, x, *, head=None, num_draws=None, seed=None, batch_size=1024):
        """The uniform mixture over `num_draws` (default 30) weight draws at `x`."""
        if [tuple(v.shape) for v in model.trainable_variables] != self.shapes:
            raise error(
                "predict_distribution",
                f"model {model.name!r} is not the model this SWAG posterior was fitted on",
            )
        from probnn.prediction import mixture_distribution

        head = find_head(model) if head is None else head
        flat = [check_finite("predict_distribution", "x", a) for a in tf.nest.flatten(x)]
        x = tf.nest.pack_sequence_as(
            x, [a.astype(self.dtypes[0]) if a.dtype.kind == "f" else a for a in flat]
        )
        weights = self.sample_weights(30 if num_draws is None else num_draws, seed)
        params = []
        # chunks of at most _DRAW_BATCH draws, as equal as possible: 100 draws as 50 + 50, not
        # 64 + 36 (two draw counts traced the compiled program twice; TensorFlow warned)
        total = len(weights[0])
        step = -(-total // -(-total // _DRAW_BATCH))
        for start in range(0, total, step):
            w = [a[start : start + step] for a in weights]
            state = _stacked_states(model, w, self.x, batch_size)
            params.append(_draw_params(model, w, state, x, batch_size))
        dist = mixture_distribution(head, np.concatenate(params, axis=1))
        if not np.all(np.isfinite(dist.components_distribution.variance())):
            raise error(
                "predict_distribution",
                "the SWAG draws give infinite or NaN variances at x: the collected weights "
                "diverged (a predicted scale overflowed); refit with a lower learning_rate",
            )
        return dist

    def save(self, path):
        """Write this posterior to `path` (`.npz`); `SWAG.load(path, model)` reads it back
        (with the training inputs when the model has BatchNorm layers)."""
        extra = (
            {} if self.x is None else {f"x_{i}": np.asarray(a) for i, a in enumerate(tf.nest.flatten(self.x))}
        )
        np.savez(
            path,
            mean=self.mean,
            sq_mean=self.sq_mean,
            deviations=self.deviations,
            meta=json.dumps({"shapes": self.shapes}),
            **extra,
        )

    @classmethod
    def load(cls, path, model):
        """Read a `SWAG` written by `save`, for `model` (the same architecture)."""
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        xs = [arrays[k] for k in sorted(k for k in arrays if k.startswith("x_"))]
        swag_ = cls(
            model,
            mean=arrays["mean"],
            sq_mean=arrays["sq_mean"],
            deviations=arrays["deviations"],
            x=(xs[0] if len(xs) == 1 else xs) or None,
        )
        if [list(s) for s in swag_.shapes] != json.loads(str(arrays["meta"]))["shapes"]:
            raise error("SWAG.load", f"model {model.name!r} is not the model saved in {path}")
        return swag_
