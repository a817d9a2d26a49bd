"""`probnn.fit`: check the arguments, prepare the data, pick a runner, run the epochs.

The design (fused epochs, shuffling, the last batch, precision, the compiled-program
cache, callbacks, streaming, distribution, ensembles, non-finite losses,
checkpoints) is described in docs/design.md, section Training.
"""

import logging

import keras
import numpy as np

from probnn.training.callbacks import _callback_list, _resume_history
from probnn.training.checkpoints import COMPLETED, STOPPED, _Checkpointer, _restore_callback_state
from probnn.training.data import check_arguments, check_model, check_seed, prepare_data, prepare_for_model
from probnn.training.errors import NonFiniteLossError, _err
from probnn.training.evaluation import Evaluator
from probnn.training.preparation import prepare_model
from probnn.training.runner import make_runner
from probnn.training.step import epoch_logs

logger = logging.getLogger("probnn.training")


def fit(
    model,
    x=None,
    y=None,
    *,
    loss=None,
    optimizer=None,
    epochs=1,
    batch_size=32,
    sample_weight=None,
    validation_data=None,
    validation_batch_size=None,
    validation_samples=None,
    shuffle=True,
    callbacks=None,
    initial_epoch=None,
    steps_per_execution="epoch",
    jit_compile="auto",
    checkpoint_dir=None,
    checkpoint_every=1,
    resume=True,
    strategy=None,
    verbose=1,
    seed=None,
):
    """Trains a Keras 3 model, by default by maximum likelihood of its distribution head.

    In-memory data is kept on the device and a whole epoch (or
    `steps_per_execution` steps) runs in one XLA-compiled `tf.while_loop`,
    which is many times faster than `model.fit` for small models. The compiled
    program is cached on the model: another call with the same model,
    optimizer, loss, batch size and data shapes (row counts are rounded up to
    buckets) reuses it, whatever the data values, `epochs` or `seed`. See the
    Training section of docs/design.md for the design.

    Args:
        model: a `keras.Model`. With `loss=None` it must contain exactly one
            `probnn.heads.DistributionHead` (found by `probnn.heads.find_head`).
            A model with an integer attribute `probnn_members = M` is an
            ensemble: each member trains on its own shuffle of the rows (see
            docs/design.md, "Ensembles").
        x: inputs: a NumPy array / tensor with a leading batch axis, a tuple or
            dict of them (multi-input models), or a `tf.data.Dataset` yielding
            `(x, y)` or `(x, y, sample_weight)` batches (then `y` must be None).
            For a stack of M members (an `Ensemble`), arrays may be
            member-wise: shape `(rows, M, *features)` (the template's input
            rank + 1), member m training on `x[:, m]` only, exactly as a lone
            model on `(x[:, m], y[:, m])` with seed `seed[m]` (see
            docs/design.md, "Stacks with their own hyperparameters"). Not
            with a `tf.data.Dataset` or a `strategy`.
        y: targets, with the same number of rows as `x`; member-wise `x` needs
            member-wise targets `(rows, M, *target)` (`(rows, M)` for scalar
            targets). `validation_data` may be member-wise too (decided from
            its own ranks), member m being validated on its own slice.
        loss: None (negative log-likelihood of the model's head, plus
            `sum(model.losses)`), a loss name, a `keras.losses.Loss` or a callable
            `(y_true, y_pred)` returning per-example (or mean) losses. A Keras
            `Loss`'s own reduction is not used: its per-example values
            (`loss.call`, on targets and outputs cast to the loss's dtype, as
            `Loss.__call__` does) are averaged over the rows of each batch. The
            default loss, names and functions compute in float32, or float64
            for a float64 model (mixed precision: float32, as in Keras). The
            objective always adds `sum(model.losses)` (regularisers, KL terms).
        optimizer: None (`model.optimizer` if the model has one, e.g. from an
            earlier `fit`, else `Adam(1e-3)`), a name, or a Keras 3 optimizer.
            It becomes `model.optimizer`, where Keras callbacks find it. Under
            a `mixed_float16` policy it is wrapped in a
            `keras.optimizers.LossScaleOptimizer`, as `model.compile` does.
        epochs: without `checkpoint_dir` and `initial_epoch`: the number of
            epochs to train in this call (their numbering continues where the
            model's previous `fit` stopped). With `initial_epoch` or
            `checkpoint_dir`: the index of the final epoch, as in Keras (the
            epochs already done count towards it).
        batch_size: rows per step for in-memory data (the last step of an epoch
            has the remaining `rows mod batch_size` rows, as in `model.fit`; it
            runs as a second compiled program, see docs/design.md).
        sample_weight: optional per-row weights `(rows,)`, >= 0 (with
            member-wise data also `(rows, M)`, member m's weights `[:, m]`). Each step
            minimises the weighted mean `sum(w * loss) / sum(w)` over its rows
            (Keras divides by the number of rows instead; the two agree when
            the weights average 1 in every batch); reported losses are the
            weighted means over the epoch.
        validation_data: `(x_val, y_val)` arrays or a `tf.data.Dataset` of
            `(x, y)` batches, evaluated after every epoch (`training=False`).
        validation_batch_size: rows per validation step; default
            `max(batch_size, 1024)`.
        validation_samples: None, or (a stochastic model: MC dropout,
            variational layers; with the default likelihood loss) a positive
            integer K: the validation NLL of each row is that of the uniform
            mixture of K stochastic passes, the quantity
            `probnn.predict_distribution(model, x, num_samples=K, seed=seed)`
            scores (per member for a stack), so that early stopping sees the
            model's change rather than one pass's noise. The K passes run in
            the compiled validation program (one `stacked_call`); their seed
            states come from `seed` and are the same at every epoch. With
            None, a stochastic model is validated with one noisy pass.
        shuffle: reshuffle in-memory rows every epoch.
        callbacks: `keras.callbacks.Callback` objects (EarlyStopping,
            ModelCheckpoint, CSVLogger, TensorBoard, ReduceLROnPlateau,
            LearningRateScheduler, TerminateOnNaN, BackupAndRestore, your own).
            Train and epoch hooks are called as in `model.fit`; the batch hooks
            once per compiled call (once per epoch by default, every
            `steps_per_execution` steps otherwise).
        initial_epoch: epoch at which to start (Keras's meaning); default:
            where the model's previous `fit` stopped (0 for a new model).
        steps_per_execution: `"epoch"` (one compiled call per epoch) or a
            positive integer K (K steps per call, progress reported between calls).
        jit_compile: `"auto"` (XLA, falling back to plain graphs with a logged
            warning if XLA cannot compile the model; no XLA under a
            `strategy`; the one-step program of a smaller last batch is a plain
            graph), True or False. XLA's compilation (about 1 s for a small
            MLP on 2 CPU cores) is paid once per model and data shape; for a
            one-off fit of a few hundred steps `False` finishes sooner (see
            benchmarks/results/train_throughput.md).
        checkpoint_dir: directory for `tf.train.CheckpointManager` checkpoints
            (`ckpt-<epoch>`), written every `checkpoint_every` epochs and after
            the last epoch; checked to be writable before training.
        checkpoint_every: epochs between checkpoints.
        resume: restore the latest checkpoint in `checkpoint_dir`, if any, and
            continue with the next epoch; a finished run (stopped early, or all
            `epochs` done) returns its final weights and history without
            training. `resume=False` starts afresh (and overwrites the numbering).
        strategy: a `tf.distribute.Strategy`. Build the model under
            `strategy.scope()`; the default optimizer is created there for you,
            an optimizer instance must have been created there too.
        verbose: 0 silent, 1 progress bar (plain lines when stdout is not a
            terminal), 2 one line per epoch.
        seed: seed of the per-epoch shuffles (random when None; stored in
            checkpoints so resumed runs shuffle identically).

    Returns:
        A `keras.callbacks.History`: `.history` has per-epoch lists `"loss"`
        (objective including `model.losses`), `"nll"` (data term, with the
        default likelihood loss), `"val_loss"` / `"val_nll"` with validation
        data; `.epoch` lists the 0-based epochs (including resumed ones).

    Raises:
        ValueError: bad arguments or data (mismatched rows, NaN/inf, targets or
            inputs of the wrong shape, targets outside the head's support such
            as a class label out of range, an unwritable `checkpoint_dir`, ...).
        NonFiniteLossError: the objective or a gradient became NaN/inf (unless a
            `keras.callbacks.TerminateOnNaN` is given: then training just stops).
        CheckpointRestoreError: an existing checkpoint cannot be restored.

    Example:
    >>> import keras, probnn
    >>> from probnn.datasets import heteroscedastic_cubic
    >>> x, y = heteroscedastic_cubic(512, seed=0)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(32, "relu"),
    ...                           probnn.heads.NormalHead()])
    >>> history = probnn.fit(model, x, y, epochs=3, batch_size=64, verbose=0, seed=0)
    >>> history.epoch
    [0, 1, 2]
    >>> probnn.fit(model, x, y, epochs=2, batch_size=64, verbose=0, seed=0).epoch
    [3, 4]
    """
    check_model(model)
    args = check_arguments(
        epochs=epochs,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        validation_batch_size=validation_batch_size,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        verbose=verbose,
        callbacks=callbacks,
        initial_epoch=initial_epoch,
        strategy=strategy,
    )
    seed = check_seed(seed, model, args.strategy)
    if isinstance(seed, tuple) and checkpoint_dir is not None:
        raise _err("one seed per member is not supported with checkpoint_dir")
    data = prepare_data(x, y, sample_weight, validation_data, model)
    if args.strategy is not None and any(
        getattr(a, "member_wise", False) for a in (data.arrays, data.validation)
    ):
        raise _err("member-wise data (rows, members, ...) is not supported with strategy=")
    _check_validation_samples(model, data.validation, validation_samples)
    objective, optimizer = prepare_model(model, loss, optimizer, args.strategy, data)
    if validation_samples is not None and not objective.report_nll:
        raise _err(
            "validation_samples scores the mixture of K passes by its negative log-likelihood, "
            "so it needs the default loss (loss=None)"
        )
    data = prepare_for_model(model, objective, data)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = _Checkpointer(checkpoint_dir, model, optimizer, args.checkpoint_every, strategy=args.strategy)

    # Which epochs: a checkpoint's, initial_epoch, or after the model's last fit.
    start, end, seed, saved = _epoch_range(model, args, seed, ckpt, resume)
    runner = make_runner(model, optimizer, objective, data, args, seed)
    evaluator = None
    if data.validation is not None:
        evaluator = Evaluator(
            model,
            objective,
            data.validation,
            args.validation_batch_size,
            args.jit_compile,
            validation_samples,
            _validation_seed(seed),
        )
    return _EpochLoop(model, objective, runner, evaluator, ckpt, args).run(start, end, seed, shuffle, saved)


class _EpochLoop:
    """The epochs of one `fit`: the runner's epochs, validation, callbacks and checkpoints.

    `runner` is a `runner.Runner`, `evaluator` an `evaluation.Evaluator` or
    None, `ckpt` a `checkpoints._Checkpointer` or None, `args` fit's checked
    `data.Arguments`.
    """

    def __init__(self, model, objective, runner, evaluator, ckpt, args):
        self.model, self.objective, self.runner = model, objective, runner
        self.evaluator, self.ckpt, self.args = evaluator, ckpt, args
        self.steps = runner.steps
        self.history = keras.callbacks.History()

    def run(self, start, end, seed, shuffle, saved):
        """Runs epochs `start` to `end - 1` (`saved`: a checkpoint's state to resume); returns the History."""
        model, args, ckpt, history = self.model, self.args, self.ckpt, self.history
        self.callbacks = _callback_list(args.callbacks, history, model, args.verbose, end, self.steps)
        model.stop_training = False
        model._initial_epoch = None  # BackupAndRestore sets it in on_train_begin
        self.callbacks.on_train_begin()
        if saved is not None:
            _resume_history(history, saved[0])
            _restore_callback_state(args.callbacks, saved[1])
        start = model._initial_epoch or start
        logs = {}
        for epoch in range(start, end):
            logs = self._epoch(epoch, seed, shuffle)
            if logs is None:  # a non-finite loss, and TerminateOnNaN asked to stop
                break
            object.__setattr__(model, "_probnn_epochs", epoch + 1)
            if ckpt is not None and (
                (epoch + 1) % args.checkpoint_every == 0 or model.stop_training or epoch + 1 == end
            ):
                ckpt.save(epoch + 1, history, args.callbacks)
            if model.stop_training:
                break
        self.callbacks.on_train_end(logs)
        if ckpt is not None and logs and start < end:
            # The run is over (all epochs, or stopped early): the last checkpoint
            # holds the weights as returned (after EarlyStopping's
            # restore_best_weights), so resuming it returns them without training.
            ckpt.save(epoch + 1, history, args.callbacks, STOPPED if model.stop_training else COMPLETED)
        return history

    def _epoch(self, epoch, seed, shuffle):
        """One epoch with its callbacks and validation; returns its logs (None: stopped on NaN)."""
        self.callbacks.on_epoch_begin(epoch)
        logs = self._train(epoch, seed, shuffle)
        if logs is None:
            return None
        if self.evaluator is not None:
            logs.update(_validation_logs(self.evaluator, self.objective, self.model))
        self.callbacks.on_epoch_end(epoch, logs)
        return logs

    def _train(self, epoch, seed, shuffle):
        """Runs the runner's epoch with the batch hooks; returns its logs (None: stopped on NaN)."""
        callbacks, model, objective = self.callbacks, self.model, self.objective

        def before(begin):
            callbacks.on_train_batch_begin(begin)

        def after(begin, end, totals):
            callbacks.on_train_batch_end(end - 1, epoch_logs(totals, objective.members, objective.report_nll))
            return model.stop_training

        totals, bad_step = self.runner.run_epoch(epoch, seed, shuffle, self.args.chunk, before, after)
        if bad_step is not None:
            callbacks.on_train_batch_end(bad_step - 1, {"loss": float("nan")})
            if model.stop_training:
                return None
            raise _non_finite(epoch, bad_step, self.steps, self.ckpt)
        return epoch_logs(totals, objective.members, objective.report_nll)


def _epoch_range(model, args, seed, ckpt, resume):
    """`(start, end, seed, saved)`: the epochs to run; `saved` is a checkpoint's state."""
    saved = None
    if ckpt is not None:
        start = args.initial_epoch or 0
        end = args.epochs
        if resume and ckpt.restore():
            start, history, seed, callbacks = ckpt.resumed_state(seed)
            saved = (history, callbacks)
            if int(ckpt.finished.numpy()) == STOPPED:
                logger.info(
                    "probnn.fit: the run in %s stopped early after %d epochs; "
                    "returning its weights without training (resume=False starts "
                    "afresh)",
                    ckpt.latest,
                    start,
                )
                end = start
        if start >= end:
            logger.info(
                "probnn.fit: checkpoint already has %d epochs >= epochs=%d; nothing to do", start, end
            )
        ckpt.seed.assign(_seed(seed))
        return start, end, int(ckpt.seed.numpy()), saved
    if args.initial_epoch is not None:
        return args.initial_epoch, args.epochs, _seed(seed), None
    start = model.__dict__.get("_probnn_epochs", 0)
    return start, start + args.epochs, _seed(seed), None


def _check_validation_samples(model, validation, samples):
    """`validation_samples` needs a positive integer, validation data, a stochastic model, the NLL."""
    if samples is None:
        return
    from probnn.prediction import is_stochastic  # probnn.prediction imports probnn.training

    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise _err(f"validation_samples must be a positive integer or None, got {samples!r}")
    if validation is None:
        raise _err("validation_samples needs validation_data")
    if not is_stochastic(model):
        raise _err(
            f"validation_samples={samples} needs a stochastic model (MCDropout, variational layers "
            f"or a layer with probnn_stochastic = True), but model {model.name!r} is deterministic: "
            "its passes would all be equal; leave validation_samples=None"
        )


def _validation_seed(seed):
    """One integer seed for the validation passes from fit's seed (an int, or one per member).

    Members given one seed validate with it, as each would alone.
    """
    if isinstance(seed, tuple) and len(set(seed)) == 1:
        return seed[0]
    if isinstance(seed, tuple):
        return int(np.random.SeedSequence(list(seed)).generate_state(1)[0] % (2**31 - 1))
    return seed


def _seed(seed):
    return int(np.random.SeedSequence().entropy % (2**31 - 1)) if seed is None else seed


def _validation_logs(evaluator, objective, model):
    """The epoch's validation logs; for a stack, each member's too (`model.probnn_member_logs`)."""
    data, regularization = evaluator()
    mean = float(np.mean(data))
    logs = {"val_loss": mean + regularization / (objective.members or 1)}
    if objective.report_nll:
        logs["val_nll"] = mean
    if objective.members:
        member_logs = {"val_nll" if objective.report_nll else "val_data_loss": data}
        object.__setattr__(model, "probnn_member_logs", member_logs)
    return logs


def _non_finite(epoch, bad_step, steps, ckpt):
    where = ckpt.latest if ckpt is not None else None
    return NonFiniteLossError(
        f"probnn.fit: the loss became NaN or infinite at epoch {epoch + 1}, step "
        f"{bad_step} (1-based; global step {epoch * (steps or 0) + bad_step}); that "
        "step's update was not applied"
        + (f"; the last good checkpoint is {where!r}" if where else "")
        + ". Lower the learning rate, clip gradients or check the data.",
        epoch=epoch + 1,
        step=bad_step,
        checkpoint=where,
    )
