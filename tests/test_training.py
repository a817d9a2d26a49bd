"""Tests of `probnn.fit`, the fused-epoch training loop."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn
from probnn.datasets import cubic_noise_scale, heteroscedastic_cubic
from probnn.heads import NormalHead, find_head
from probnn.losses import NegativeLogLikelihood
from probnn.training import CheckpointRestoreError, NonFiniteLossError

layers = keras.layers


@pytest.fixture(scope="module")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole module.

    With TF 2.21, all-reduces of a second MirroredStrategy object in the same
    process collided with the first one's ("Shape mismatch in the collective
    instance ..."), so the tests share one strategy, as a program would.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def normal_mlp(width=32, depth=1, inputs=1):
    hidden = [layers.Dense(width, activation="relu") for _ in range(depth)]
    return keras.Sequential([keras.Input((inputs,)), *hidden, NormalHead()])


def nll_of(model, x, y):
    """Mean negative log-likelihood of y under the model's head, computed directly."""
    head = find_head(model)
    return float(-tf.reduce_mean(head.distribution(model(x, training=False)).log_prob(y)))


def max_abs_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


def sigma_relative_error(model):
    grid = np.linspace(-1.8, 1.8, 73, dtype="float32")[:, None]
    sigma = find_head(model).distribution(model(grid)).stddev().numpy().ravel()
    truth = cubic_noise_scale(grid).ravel()
    return float(np.max(np.abs(sigma - truth) / truth))


# ------------------------------------------------------------ learning the noise


# 8192 rows: with 4096 the finite-sample error of sigma(x) alone reached 0.12-0.14
# for some data seeds. Cosine-decayed Adam removes the end-of-training jitter of
# the scale estimate. Measured max relative error of sigma on the grid over data
# seeds 1-5 (this machine, Nov 2026, probnn NormalHead): probnn.fit 0.044-0.083
# (~1.9 s each), keras model.fit 0.048-0.096 (~1.9 s each); the fixed seeds
# below give 0.061 and 0.096.


def cosine_adam(peak, steps):
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(peak, decay_steps=steps, alpha=0.05))


# In the full suite only (3,200 steps): the fast tier's probnn.fit tests check the training
# step by step against model.fit (tests/test_training_keras_parity.py) and below.
@pytest.mark.integration
def test_probnn_fit_learns_heteroscedastic_noise():
    x, y = heteroscedastic_cubic(8192, seed=1)
    model = normal_mlp(width=64, depth=2)
    history = probnn.fit(
        model, x, y, epochs=100, batch_size=256, verbose=0, seed=0, optimizer=cosine_adam(5e-3, 100 * 32)
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert sigma_relative_error(model) < 0.15


# In the full suite only: the fast tier trains with model.fit and NegativeLogLikelihood in
# tests/test_training_keras_parity.py (equal to probnn.fit's weights, e.g.
# test_batch_norm_never_sees_padded_rows) and in tests/test_heads.py.
@pytest.mark.integration
def test_keras_fit_with_nll_loss_learns_heteroscedastic_noise():
    x, y = heteroscedastic_cubic(8192, seed=1)
    model = normal_mlp(width=64, depth=2)
    model.compile(optimizer=cosine_adam(1e-2, 25 * 16), loss=NegativeLogLikelihood(find_head(model)))
    model.fit(x, y, epochs=25, batch_size=512, verbose=0)
    assert sigma_relative_error(model) < 0.15


# ------------------------------------------------------------------- semantics


def test_every_row_counts_once_per_epoch_with_masked_last_batch(rng):
    """lr = 0: the epoch loss is the full-data mean although 150 % 64 != 0."""
    x = rng.normal(size=(150, 2)).astype("float32")
    y = rng.normal(size=(150, 1)).astype("float32")
    model = normal_mlp(8, inputs=2)
    expected = nll_of(model, x, y)
    history = probnn.fit(
        model, x, y, epochs=2, batch_size=64, verbose=0, seed=0, optimizer=keras.optimizers.SGD(0.0)
    )
    np.testing.assert_allclose(history.history["loss"], [expected] * 2, rtol=1e-5)
    np.testing.assert_allclose(history.history["nll"], [expected] * 2, rtol=1e-5)


def test_model_losses_are_part_of_the_objective(rng):
    x = rng.normal(size=(96, 3)).astype("float32")
    y = rng.normal(size=(96, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.Dense(
                8,
                activation="tanh",
                kernel_regularizer=keras.regularizers.L2(0.1),
                activity_regularizer=keras.regularizers.L2(0.01),
            ),
            NormalHead(),
        ]
    )
    # Keras 3 divides an activity penalty by the batch size: with equal batches
    # of 32 the epoch average is the penalty's mean over all 96 rows.
    activity = float(0.01 * tf.reduce_sum(model.layers[0](x) ** 2)) / 96
    regulariser = float(0.1 * tf.reduce_sum(model.layers[0].kernel ** 2)) + activity
    data = nll_of(model, x, y)
    history = probnn.fit(
        model, x, y, epochs=1, batch_size=32, verbose=0, seed=0, optimizer=keras.optimizers.SGD(0.0)
    )
    np.testing.assert_allclose(history.history["nll"][0], data, rtol=1e-5)
    np.testing.assert_allclose(history.history["loss"][0], data + regulariser, rtol=1e-5)
    # ...and it is minimised: a strong L2 penalty shrinks the kernel.
    before = float(tf.reduce_sum(model.layers[0].kernel ** 2))
    # Another optimizer, another program: without XLA (no second XLA compile; same objective).
    probnn.fit(
        model,
        x,
        y,
        epochs=20,
        batch_size=32,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.SGD(0.05),
        jit_compile=False,
    )
    assert float(tf.reduce_sum(model.layers[0].kernel ** 2)) < 0.5 * before


def test_steps_per_execution_chunks_match_whole_epoch(rng):
    x = rng.normal(size=(200, 1)).astype("float32")
    y = (2 * x + rng.normal(size=(200, 1))).astype("float32")
    weights = []
    for spe in ("epoch", 3):  # without XLA: two models, two programs; the chunking is the same
        keras.utils.set_random_seed(7)
        model = normal_mlp(8)
        h = probnn.fit(
            model,
            x,
            y,
            epochs=2,
            batch_size=32,
            steps_per_execution=spe,
            verbose=0,
            seed=5,
            jit_compile=False,
        )
        weights.append((model.get_weights(), h.history["loss"]))
    assert max_abs_diff(weights[0][0], weights[1][0]) < 1e-6
    np.testing.assert_allclose(weights[0][1], weights[1][1], rtol=1e-6)


def test_validation_history(rng):
    x = rng.normal(size=(256, 1)).astype("float32")
    y = (x + 0.5 * rng.normal(size=(256, 1))).astype("float32")
    xv = rng.normal(size=(150, 1)).astype("float32")
    yv = (xv + 0.5 * rng.normal(size=(150, 1))).astype("float32")
    model = normal_mlp(16)
    history = probnn.fit(
        model,
        x,
        y,
        epochs=3,
        batch_size=32,
        validation_data=(xv, yv),
        validation_batch_size=64,
        verbose=0,
        seed=0,
    )
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "nll", "val_loss", "val_nll"}
    assert all(len(v) == 3 for v in history.history.values())
    # The last validation value is the NLL of the final weights on all 150 rows.
    np.testing.assert_allclose(history.history["val_nll"][-1], nll_of(model, xv, yv), rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"], history.history["val_nll"])


def test_early_stopping_restores_best_weights(rng):
    """Train on y = x, validate on y = -x: validation gets worse every epoch."""
    x = rng.uniform(-1, 1, size=(256, 1)).astype("float32")
    xv = rng.uniform(-1, 1, size=(128, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
    model.layers[0].kernel.assign([[0.0]])
    stopper = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = probnn.fit(
        model,
        x,
        x,
        loss="mse",
        epochs=50,
        batch_size=32,
        validation_data=(xv, -xv),
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.SGD(0.1),
        callbacks=[stopper],
    )
    val = history.history["val_loss"]
    assert len(val) == 3 and stopper.stopped_epoch == 2 and stopper.best_epoch == 0
    assert val[0] < val[1] < val[2]
    restored = float(np.mean((model(xv).numpy() + xv) ** 2))
    np.testing.assert_allclose(restored, val[0], rtol=1e-5)


# ----------------------------------------------------------------- checkpoints


def test_resume_from_checkpoint_matches_uninterrupted_training(tmp_path, rng):
    x = rng.normal(size=(300, 2)).astype("float32")
    y = (x[:, :1] - x[:, 1:] + rng.normal(size=(300, 1))).astype("float32")

    def fresh():
        keras.utils.set_random_seed(11)
        return normal_mlp(16, inputs=2)

    # Without XLA: the three fits are three models, each an XLA compile otherwise; the
    # checkpoint path is the same with or without it.
    options = dict(batch_size=64, verbose=0, jit_compile=False)
    straight = fresh()
    h_straight = probnn.fit(straight, x, y, epochs=4, seed=3, **options)

    first = fresh()
    probnn.fit(first, x, y, epochs=2, seed=3, checkpoint_dir=tmp_path, **options)
    assert (tmp_path / "ckpt-2.index").exists()
    resumed = fresh()  # a new process would start from fresh weights too
    h_resumed = probnn.fit(
        resumed, x, y, epochs=4, checkpoint_dir=tmp_path, **options
    )  # seed from the checkpoint
    assert h_resumed.epoch == [0, 1, 2, 3]
    np.testing.assert_allclose(h_resumed.history["loss"], h_straight.history["loss"], rtol=1e-5)
    assert max_abs_diff(resumed.get_weights(), straight.get_weights()) < 1e-5


def test_corrupt_checkpoint_raises_naming_the_path(tmp_path, rng):
    x = rng.normal(size=(64, 1)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    probnn.fit(normal_mlp(4), x, y, epochs=1, verbose=0, seed=0, checkpoint_dir=tmp_path, jit_compile=False)
    data_file = next(p for p in tmp_path.iterdir() if ".data-" in p.name)
    data_file.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointRestoreError, match="ckpt-1"):
        probnn.fit(normal_mlp(4), x, y, epochs=2, verbose=0, checkpoint_dir=tmp_path)


class _ExplodesAfter(keras.losses.Loss):
    """MSE that turns infinite from the `after`-th call (i.e. training step) on."""

    def __init__(self, after):
        super().__init__(name="explodes")
        self.after = after
        self.calls = tf.Variable(0, dtype=tf.int32, trainable=False)

    def call(self, y_true, y_pred):
        calls = self.calls.assign_add(1)
        mse = tf.reduce_mean((y_true - y_pred) ** 2, axis=-1)
        return tf.where(calls > self.after, tf.fill(tf.shape(mse), np.inf), mse)


def test_non_finite_loss_stops_training_and_keeps_checkpoint(tmp_path, rng):
    x = rng.normal(size=(320, 1)).astype("float32")
    y = rng.normal(size=(320, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), layers.Dense(4, "relu"), layers.Dense(1)])
    optimizer = keras.optimizers.Adam(1e-2)
    # 10 steps per epoch: steps 1-25 are fine, step 26 = epoch 3, step 6 explodes.
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, step 6") as info:
        probnn.fit(
            model,
            x,
            y,
            loss=_ExplodesAfter(25),
            optimizer=optimizer,
            epochs=5,
            batch_size=32,
            verbose=0,
            seed=0,
            checkpoint_dir=tmp_path,
        )
    assert (info.value.epoch, info.value.step) == (3, 6)
    assert isinstance(info.value, FloatingPointError)
    assert int(optimizer.iterations.numpy()) == 25  # the bad update was not applied
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert info.value.checkpoint.endswith("ckpt-2")
    restored = keras.Sequential([keras.Input((1,)), layers.Dense(4, "relu"), layers.Dense(1)])
    tf.train.Checkpoint(model=restored).restore(info.value.checkpoint).expect_partial()
    assert all(np.isfinite(w).all() for w in restored.get_weights())


@pytest.mark.parametrize("path", ["dataset", "mirrored"])
def test_non_finite_loss_on_streaming_paths(path, rng, mirrored):
    x = rng.normal(size=(100, 1)).astype("float32")
    y = rng.normal(size=(100, 1)).astype("float32")
    if path == "mirrored":
        strategy = mirrored
        with strategy.scope():
            model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
            optimizer = keras.optimizers.SGD(0.01)
        # Both replicas call the loss once per step: 2 calls per step.
        loss = _ExplodesAfter(2 * 6)
        call = dict(x=x, y=y, batch_size=25, seed=0, strategy=strategy)
    else:
        model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
        optimizer = keras.optimizers.SGD(0.01)
        loss = _ExplodesAfter(6)
        call = dict(x=tf.data.Dataset.from_tensor_slices((x, y)).batch(25))
    # 4 steps per epoch: steps 1-6 are fine, step 7 = epoch 2, step 3 explodes.
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3"):
        probnn.fit(model, loss=loss, optimizer=optimizer, epochs=3, verbose=0, **call)
    assert int(optimizer.iterations.numpy()) == 6  # the bad update was not applied
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_huge_learning_rate_diverges_with_clear_error(rng):
    x = rng.normal(size=(256, 4)).astype("float32") * 100
    y = rng.normal(size=(256, 1)).astype("float32") * 1e3
    model = keras.Sequential([keras.Input((4,)), layers.Dense(32, "relu"), layers.Dense(1)])
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+"):
        probnn.fit(
            model,
            x,
            y,
            loss="mse",
            optimizer=keras.optimizers.SGD(1e6),
            epochs=20,
            batch_size=32,
            verbose=0,
            seed=0,
        )
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ---------------------------------------------------------- data forms, devices


@pytest.mark.integration
def test_tf_data_dataset_input(rng):
    x = rng.normal(size=(230, 1)).astype("float32")
    y = (x + 0.3 * rng.normal(size=(230, 1))).astype("float32")
    model = normal_mlp(8)
    expected = nll_of(model, x, y)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(50)  # last batch has 30 rows
    frozen = probnn.fit(
        model, ds, epochs=1, verbose=0, optimizer=keras.optimizers.SGD(0.0), steps_per_execution=2
    )
    np.testing.assert_allclose(frozen.history["loss"], [expected], rtol=1e-5)
    # 3 epochs of 5 steps: the loss falls already (8 epochs before; the streaming loop is the same).
    history = probnn.fit(
        model, ds, epochs=3, verbose=0, validation_data=ds, optimizer=keras.optimizers.Adam(1e-2)
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(history.history["val_loss"]) == 3


@pytest.mark.integration
def test_mirrored_strategy_matches_single_device(rng, mirrored):
    x = rng.normal(size=(512, 2)).astype("float32")
    y = (x[:, :1] * x[:, 1:] + 0.5 * rng.normal(size=(512, 1))).astype("float32")

    keras.utils.set_random_seed(5)
    single = normal_mlp(16, inputs=2)
    h_single = probnn.fit(
        single, x, y, epochs=4, batch_size=96, verbose=0, seed=2, optimizer=keras.optimizers.Adam(1e-2)
    )

    strategy = mirrored
    with strategy.scope():
        keras.utils.set_random_seed(5)
        mirrored = normal_mlp(16, inputs=2)
    with strategy.scope():
        optimizer = keras.optimizers.Adam(1e-2)
    h_mirrored = probnn.fit(
        mirrored, x, y, epochs=4, batch_size=96, verbose=0, seed=2, optimizer=optimizer, strategy=strategy
    )
    loss = h_mirrored.history["loss"]
    assert loss[-1] < loss[0]
    # Same batches and the same arithmetic up to the order of the float32 sums
    # (each replica sums half of the batch; the all-reduce adds the halves).
    # Measured (Nov 2026, 2 logical CPUs, XLA on or off): weights within
    # 9e-8 (1.5 float32 ulps of the largest weight, 0.67) and epoch losses
    # within 8e-8 relative after 4 epochs of 6 Adam steps; 4e-7 allows ~7 ulps.
    np.testing.assert_allclose(loss, h_single.history["loss"], rtol=4e-7)
    assert max_abs_diff(mirrored.get_weights(), single.get_weights()) < 4e-7


@pytest.mark.integration
def test_mixed_precision_under_mirrored_strategy_matches_single_device(rng, mirrored):
    """mixed_float16 under a strategy: loss scaling as on one device, the same training."""
    x = rng.normal(size=(384, 2)).astype("float32")
    y = (x[:, :1] * x[:, 1:] + 0.5 * rng.normal(size=(384, 1))).astype("float32")
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(5)
        single = normal_mlp(16, inputs=2)
        h_single = probnn.fit(
            single, x, y, epochs=3, batch_size=96, verbose=0, seed=2, optimizer=keras.optimizers.Adam(1e-2)
        )
        with mirrored.scope():
            keras.utils.set_random_seed(5)
            model = normal_mlp(16, inputs=2)
            optimizer = keras.optimizers.Adam(1e-2)
        h_mirrored = probnn.fit(
            model, x, y, epochs=3, batch_size=96, verbose=0, seed=2, optimizer=optimizer, strategy=mirrored
        )
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.optimizer.dynamic_scale.numpy() == single.optimizer.dynamic_scale.numpy()
    assert h_mirrored.history["loss"][-1] < h_mirrored.history["loss"][0]
    # float16 forward and backward passes, XLA-fused on one device and plain
    # graphs under the strategy: activations may round differently by a
    # float16 ulp (about 1e-3 relative), which moves an Adam step of 1e-2 by
    # about 1e-5; after 12 steps TOLERANCE_MIXED allows a few such ulps
    # (measured Dec 2026: weights within 3.0e-5, epoch losses within 8.3e-6 relative).
    np.testing.assert_allclose(h_mirrored.history["loss"], h_single.history["loss"], rtol=TOLERANCE_MIXED)
    assert max_abs_diff(model.get_weights(), single.get_weights()) < TOLERANCE_MIXED


TOLERANCE_MIXED = 1e-4


def test_strategy_rejects_model_built_outside_scope(rng, mirrored):
    x = rng.normal(size=(32, 1)).astype("float32")
    strategy = mirrored
    with pytest.raises(ValueError, match=r"probnn.fit.*strategy.scope"):
        probnn.fit(normal_mlp(4), x, x, strategy=strategy, verbose=0)


class _NumpyIdentity(layers.Layer):
    """An identity through tf.numpy_function, which has no XLA kernel."""

    def call(self, inputs):
        out = tf.numpy_function(lambda a: a, [inputs], inputs.dtype)
        out.set_shape(inputs.shape)
        return out


@pytest.mark.integration
def test_xla_failure_falls_back_with_warning(rng, caplog):
    x = rng.normal(size=(64, 1)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), _NumpyIdentity(), layers.Dense(4), NormalHead()])
    with caplog.at_level(logging.WARNING, logger="probnn.training"):
        history = probnn.fit(model, x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    assert len(history.history["loss"]) == 2
    assert any("XLA" in r.getMessage() and "falling back" in r.getMessage() for r in caplog.records)
    caplog.clear()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with caplog.at_level(logging.WARNING, logger="probnn.training"):
        history = probnn.fit(model, ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert any("falling back" in r.getMessage() for r in caplog.records)
    with pytest.raises(tf.errors.OpError):
        probnn.fit(model, x, y, epochs=1, verbose=0, jit_compile=True)


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y: (x[:-1], y), r"same number of rows.*49 and 50"),
        (
            lambda x, y: (np.where(np.arange(50)[:, None] == 7, np.nan, x), y),
            r"x contains NaN or inf \(first offending row index 7",
        ),
        (
            lambda x, y: (x, np.where(np.arange(50)[:, None] >= 30, np.inf, y)),
            r"y contains NaN or inf \(first offending row index 30",
        ),
    ],
)
def test_bad_arrays_raise_value_error(change, message, rng):
    x = rng.normal(size=(50, 1)).astype("float32")
    y = rng.normal(size=(50, 1)).astype("float32")
    x, y = change(x, y)
    with pytest.raises(ValueError, match=r"probnn\.fit: .*" + message):
        probnn.fit(normal_mlp(4), x, y, verbose=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"steps_per_execution": 0}, "steps_per_execution"),
        ({"validation_data": (np.zeros((3, 1)), np.full((3, 1), np.nan))}, r"validation y contains NaN"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message, rng):
    x = rng.normal(size=(20, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"probnn\.fit: .*" + message):
        probnn.fit(normal_mlp(4), x, x, verbose=0, **kwargs)


def test_dataset_arguments_are_checked(rng):
    x = rng.normal(size=(20, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(5)
    with pytest.raises(ValueError, match=r"probnn\.fit: y must be None"):
        probnn.fit(normal_mlp(4), ds, x, verbose=0)
    with pytest.raises(ValueError, match=r"probnn\.fit: x is an infinite"):
        probnn.fit(normal_mlp(4), ds.repeat(), verbose=0)
    with pytest.raises(ValueError, match=r"probnn\.fit: x must be a tf.data.Dataset yielding"):
        probnn.fit(normal_mlp(4), tf.data.Dataset.from_tensor_slices(x).batch(5), verbose=0)


def test_default_loss_needs_a_head(rng):
    x = rng.normal(size=(20, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"probnn\.fit: .*distribution head"):
        probnn.fit(model, x, x, verbose=0)
    probnn.fit(model, x, x, loss="mse", verbose=0)  # any Keras loss works


def test_verbose_zero_prints_nothing(rng, capsys):
    x = rng.normal(size=(40, 1)).astype("float32")
    # Without XLA: two models, two programs; what is printed does not depend on it.
    probnn.fit(normal_mlp(4), x, x, epochs=2, verbose=0, validation_data=(x, x), jit_compile=False)
    assert capsys.readouterr().out == ""
    probnn.fit(normal_mlp(4), x, x, epochs=1, verbose=2, jit_compile=False)
    assert "Epoch 1/1" in capsys.readouterr().out
