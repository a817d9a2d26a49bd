"""`probnn.fit`: check the arguments, prepare the data, pick a runner, run the epochs.

The design (fused epochs, shuffling, the masked last batch, streaming,
distribution, non-finite losses, checkpoints) is described in docs/design.md,
section Training.
"""

import logging
import math
import time

import numpy as np

from probnn.training.callbacks import History, _EarlyStopper, _Progress
from probnn.training.checkpoints import _Checkpointer
from probnn.training.data import _check_arguments, _EpochDatasets, _prepare_data
from probnn.training.errors import NonFiniteLossError
from probnn.training.evaluation import _Evaluator
from probnn.training.fused import _FusedRunner
from probnn.training.objective import _prepare_model
from probnn.training.streaming import _StreamRunner

logger = logging.getLogger("probnn.training")


def fit(model, x=None, y=None, *, loss=None, optimizer=None, epochs=1, batch_size=32,
        validation_data=None, validation_batch_size=None, shuffle=True,
        steps_per_execution="epoch", jit_compile="auto", early_stopping=None,
        checkpoint_dir=None, checkpoint_every=1, resume=True, strategy=None, verbose=1,
        seed=None):
    """Trains a Keras 3 model, by default by maximum likelihood of its distribution head.

    In-memory data is kept on the device and a whole epoch (or
    `steps_per_execution` steps) runs in one XLA-compiled `tf.while_loop`,
    which is many times faster than `model.fit` for small models; see the
    Training section of docs/design.md for the design.

    Args:
        model: a `keras.Model`. With `loss=None` it must contain exactly one
            `probnn.heads.DistributionHead` (found by `probnn.heads.find_head`).
        x: inputs, a NumPy array / tensor with a leading batch axis, or a
            `tf.data.Dataset` yielding `(x, y)` batches (then `y` must be None).
        y: targets, with the same number of rows as `x`.
        loss: None (negative log-likelihood of the model's head, plus
            `sum(model.losses)`), a loss name, a `keras.losses.Loss` or a callable
            `(y_true, y_pred)` returning per-example (or mean) losses. A Keras
            `Loss`'s own reduction is not used: its per-example values
            (`loss.call`) are averaged over the real rows of each batch. The
            objective always adds `sum(model.losses)` (regularisers, KL terms).
            Sample weights are not supported.
        optimizer: None (`Adam(1e-3)`), a name, or a Keras 3 optimizer.
        epochs: total number of epochs; when resuming from a checkpoint the
            epochs already done count towards it (like Keras's `initial_epoch`).
        batch_size: rows per step for in-memory data (the last step of an epoch
            is padded and masked, see docs/design.md).
        validation_data: `(x_val, y_val)` arrays or a `tf.data.Dataset` of
            `(x, y)` batches, evaluated after every epoch (`training=False`).
        validation_batch_size: rows per validation step; default
            `max(batch_size, 1024)`.
        shuffle: reshuffle in-memory rows every epoch.
        steps_per_execution: `"epoch"` (one compiled call per epoch) or a
            positive integer K (K steps per call, progress reported between calls).
        jit_compile: `"auto"` (XLA, falling back to plain graphs with a logged
            warning if XLA cannot compile the model; no XLA under a
            `strategy`), True or False.
        early_stopping: None, an `EarlyStopping`, or an int patience
            (`EarlyStopping(patience=...)` on `val_loss` / `loss`).
        checkpoint_dir: directory for `tf.train.CheckpointManager` checkpoints
            (`ckpt-<epoch>`), written every `checkpoint_every` epochs and after
            the last epoch.
        checkpoint_every: epochs between checkpoints.
        resume: restore the latest checkpoint in `checkpoint_dir`, if any, and
            continue with the next epoch. `resume=False` starts afresh (and
            overwrites the numbering).
        strategy: a `tf.distribute.Strategy`. Build the model under
            `strategy.scope()`; the default optimizer is created there for you,
            an optimizer instance must have been created there too.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        seed: seed of the per-epoch shuffles (random when None; stored in
            checkpoints so resumed runs shuffle identically).

    Returns:
        A `History`: `.history` has per-epoch lists `"loss"` (objective
        including `model.losses`), `"nll"` (data term, with the default
        likelihood loss), `"val_loss"` / `"val_nll"` with validation data;
        `.epoch` lists the 0-based epochs (including resumed ones);
        `.epoch_seconds` the wall time of each epoch run by this call.

    Raises:
        ValueError: bad arguments or data (mismatched rows, NaN/inf, ...).
        NonFiniteLossError: the objective or a gradient became NaN/inf.
        CheckpointRestoreError: an existing checkpoint cannot be restored.

    Example:
    >>> import keras, probnn
    >>> from probnn.datasets import heteroscedastic_cubic
    >>> x, y = heteroscedastic_cubic(512, seed=0)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(32, "relu"),
    ...                           probnn.heads.NormalHead()])
    >>> history = probnn.fit(model, x, y, epochs=3, batch_size=64, verbose=0, seed=0)
    >>> len(history.history["loss"])
    3
    """
    args = _check_arguments(
        model=model, epochs=epochs, batch_size=batch_size, checkpoint_every=checkpoint_every,
        validation_batch_size=validation_batch_size, steps_per_execution=steps_per_execution,
        jit_compile=jit_compile, verbose=verbose, early_stopping=early_stopping,
        strategy=strategy, seed=seed)
    arrays, dataset, sample_x, validation_data = _prepare_data(x, y, validation_data)
    per_example, report_nll, optimizer = _prepare_model(model, sample_x, loss, optimizer,
                                                         strategy)

    # Resume: epochs done, history so far, seed and early-stopping counters.
    history = History()
    start_epoch = 0
    stopper = _EarlyStopper(args.early_stopping, validation_data is not None)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = _Checkpointer(checkpoint_dir, model, optimizer, args.checkpoint_every)
        if resume and ckpt.restore():
            start_epoch, history, seed = ckpt.resumed_state(seed, stopper)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31 - 1))
    if ckpt is not None:
        ckpt.seed.assign(seed)

    runner, steps = _make_runner(model, optimizer, per_example, arrays, dataset, args, shuffle,
                                 seed)
    evaluator = None
    if validation_data is not None:
        evaluator = _Evaluator(model, per_example, validation_data,
                               args.validation_batch_size, args.jit_compile)
    history.params = {"epochs": args.epochs, "steps": steps, "batch_size": args.batch_size}
    if start_epoch >= args.epochs:
        logger.info("probnn.fit: checkpoint already has %d epochs >= epochs=%d; nothing to do",
                    start_epoch, args.epochs)

    for epoch in range(start_epoch, args.epochs):
        epoch_start = time.perf_counter()
        progress = _Progress(args.verbose, epoch, args.epochs, steps)
        if isinstance(runner, _StreamRunner) and runner.stream is not None:
            runner.set_dataset(runner.stream.dataset(epoch))
        totals, bad_step = runner.run_epoch(epoch, seed, shuffle, args.chunk, progress.on_chunk)
        if bad_step is not None:
            raise _non_finite(epoch, bad_step, steps, ckpt)
        logs = _epoch_logs(totals, report_nll, evaluator)
        history._append(epoch, logs)
        progress.finish(steps or int(totals[2]), logs)
        stop = stopper.update(epoch, logs, model, history)
        if ckpt is not None and ((epoch + 1) % args.checkpoint_every == 0 or stop
                                 or epoch + 1 == args.epochs):
            ckpt.save(epoch + 1, history, stopper)
        history.epoch_seconds.append(time.perf_counter() - epoch_start)
        if stop:
            break
    stopper.finish(model, history, trained=start_epoch < args.epochs)
    return history


def _make_runner(model, optimizer, per_example, arrays, dataset, args, shuffle, seed):
    """The fused runner for in-memory data on one device, else the streaming runner."""
    if arrays is not None and args.strategy is None:
        runner = _FusedRunner(model, optimizer, per_example, arrays[0], arrays[1],
                              args.batch_size, args.jit_compile)
        return runner, runner.steps
    steps, stream = None, None
    if arrays is not None:  # in-memory data under a strategy: a reshuffled dataset per epoch
        steps = math.ceil(arrays[0].shape[0] / args.batch_size)
        stream = _EpochDatasets(arrays, args.batch_size, shuffle, seed)
    jit = args.jit_compile
    if args.strategy is not None:
        jit = False if jit == "auto" else jit
    runner = _StreamRunner(model, optimizer, per_example,
                           dataset if dataset is not None else stream.dataset(0),
                           args.strategy, jit)
    runner.stream = stream
    return runner, steps or runner.steps


def _epoch_logs(totals, report_nll, evaluator):
    s_obj, s_data, count = totals
    logs = {"loss": s_obj / count}
    if report_nll:
        logs["nll"] = s_data / count
    if evaluator is not None:
        v_data, v_reg = evaluator()
        logs["val_loss"] = v_data + v_reg
        if report_nll:
            logs["val_nll"] = v_data
    return logs


def _non_finite(epoch, bad_step, steps, ckpt):
    where = ckpt.latest if ckpt is not None else None
    return NonFiniteLossError(
        f"probnn.fit: the loss became NaN or infinite at epoch {epoch + 1}, step "
        f"{bad_step} (1-based; global step {epoch * (steps or 0) + bad_step}); that "
        "step's update was not applied"
        + (f"; the last good checkpoint is {where!r}" if where else "")
        + ". Lower the learning rate, clip gradients or check the data.",
        epoch=epoch + 1, step=bad_step, checkpoint=where)
