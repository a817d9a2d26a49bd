"""probnn.fit with Keras callbacks, the compiled-program cache and the progress output."""

import csv
import os
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn
from probnn.heads import NormalHead

layers = keras.layers


class CountingDense(layers.Dense):
    """A Dense layer that counts how often its Python `call` runs (once per trace)."""

    calls = 0

    def call(self, inputs, training=None):
        CountingDense.calls += 1
        return super().call(inputs)


def data(rng, n=1000, features=3):
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, :1] + 0.3 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def small_model(features=3):
    return keras.Sequential([keras.Input((features,)), layers.Dense(8, "tanh"), NormalHead()])


# ------------------------------------------------------------- compile once


@pytest.mark.integration
def test_second_fit_does_not_retrace(rng):
    x, y = data(rng)
    CountingDense.calls = 0
    model = keras.Sequential([keras.Input((3,)), CountingDense(8, activation="tanh"), NormalHead()])
    built = CountingDense.calls
    probnn.fit(model, x, y, epochs=1, batch_size=64, verbose=0, seed=0, validation_data=(x[:100], y[:100]))
    traced = CountingDense.calls - built
    assert traced >= 2  # the training loop and the validation loop
    # Other epochs, seed, data values and a row count in the same bucket (990 -> 1024 rows)
    # reuse the programs of the full batches and of the validation; only the one-step
    # program of the smaller last batch (990 mod 64 = 30 rows, was 40) is new.
    model.optimizer.learning_rate = 0.01  # a variable: no retrace either
    x2, y2 = data(np.random.default_rng(7), n=990)
    history = probnn.fit(
        model, x2, y2, epochs=3, batch_size=64, verbose=0, seed=5, validation_data=(x2[:100], y2[:100])
    )
    assert CountingDense.calls - built == traced + 1
    assert history.epoch == [1, 2, 3]
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.01)
    # The same rows again: nothing new.
    probnn.fit(model, x2, y2, epochs=1, batch_size=64, verbose=0, seed=1)
    assert CountingDense.calls - built == traced + 1
    # A different batch size is a different program (1000 mod 32 = 8: and a last batch).
    probnn.fit(model, x, y, epochs=1, batch_size=32, verbose=0, seed=0)
    assert CountingDense.calls - built == traced + 3


@pytest.mark.integration
def test_second_fit_on_a_dataset_does_not_retrace(rng):
    # The streaming runner (tf.data input) caches its compiled loop on the model too.
    x, y = data(rng)
    CountingDense.calls = 0
    model = keras.Sequential([keras.Input((3,)), CountingDense(8, activation="tanh"), NormalHead()])

    def dataset(seed):
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=seed).batch(64)

    probnn.fit(model, dataset(0), epochs=1, verbose=0, seed=0)
    built = CountingDense.calls
    assert built >= 1  # the training loop's trace
    first = [w.copy() for w in model.get_weights()]
    probnn.fit(model, dataset(1), epochs=2, verbose=0, seed=1)
    assert CountingDense.calls == built  # another dataset of the same element spec
    assert not np.allclose(first[0], model.get_weights()[0])  # and it did train


def test_learning_rate_schedule_callback_changes_the_update(rng):
    """LearningRateScheduler: lr 0 from epoch 1 on freezes the weights, without retracing."""
    x, y = data(rng, n=256)
    model = small_model()
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights())
    )
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch == 0 else 0.0)
    probnn.fit(
        model,
        x,
        y,
        epochs=3,
        batch_size=64,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.SGD(0.5),
        callbacks=[schedule, record],
    )
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(snapshots[0], snapshots[1]))
    assert moved == 0.0
    assert len(model.__dict__["_probnn_programs"]) == 1


def test_reduce_lr_on_plateau_lowers_the_variable_learning_rate(rng):
    x, y = data(rng, n=256)
    model = small_model()
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=0, min_delta=1e9, min_lr=0.0
    )
    history = probnn.fit(
        model,
        x,
        y,
        epochs=3,
        batch_size=64,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.Adam(0.01),
        callbacks=[reduce],
    )
    # Keras logs the rate in force during each epoch. Epoch 0 sets the first best value;
    # epochs 1 and 2 do not improve by min_delta, so the rate halves after each of them.
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.01, 0.005], rtol=1e-6)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.0025, rtol=1e-6)


# ---------------------------------------------------------------- callbacks


def test_model_checkpoint_writes_loadable_keras_files(tmp_path, rng):
    x, y = data(rng, n=200)
    model = small_model()
    path = str(tmp_path / "model-{epoch:02d}.keras")
    probnn.fit(
        model,
        x,
        y,
        epochs=2,
        batch_size=50,
        verbose=0,
        seed=0,
        callbacks=[keras.callbacks.ModelCheckpoint(path)],
    )
    assert sorted(os.listdir(tmp_path)) == ["model-01.keras", "model-02.keras"]
    loaded = keras.models.load_model(tmp_path / "model-02.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


def test_csv_logger_and_tensorboard_write_their_files(tmp_path, rng):
    x, y = data(rng, n=200)
    model = small_model()
    history = probnn.fit(
        model,
        x,
        y,
        epochs=3,
        batch_size=50,
        verbose=0,
        seed=0,
        validation_data=(x[:50], y[:50]),
        callbacks=[
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
            keras.callbacks.TensorBoard(str(tmp_path / "tb")),
        ],
    )
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([float(r["val_nll"]) for r in rows], history.history["val_nll"], rtol=1e-6)
    events = [name for _, _, files in os.walk(tmp_path / "tb") for name in files]
    assert any(name.startswith("events.out.tfevents") for name in events)


def test_stop_training_and_batch_hooks_once_per_compiled_call(rng):
    x, y = data(rng, n=320)  # 10 steps of 32
    batches = []

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append((batch, round(logs["loss"], 6)))

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = probnn.fit(
        small_model(),
        x,
        y,
        epochs=5,
        batch_size=32,
        verbose=0,
        seed=0,
        steps_per_execution=4,
        callbacks=[Stop()],
    )
    assert history.epoch == [0, 1]
    assert [b for b, _ in batches] == [3, 7, 9] * 2


def test_terminate_on_nan_stops_without_raising(rng):
    x, y = data(rng, n=128)
    model = small_model()
    y_bad = y.copy()
    y_bad[:] = 1e30  # the Normal NLL overflows to inf at the first step
    history = probnn.fit(
        model,
        x,
        y_bad,
        epochs=3,
        batch_size=32,
        verbose=0,
        seed=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert history.epoch == []
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.integration
def test_backup_and_restore_resumes_an_interrupted_run(tmp_path, rng):
    x, y = data(rng, n=300)

    def fresh():
        keras.utils.set_random_seed(3)
        return small_model()

    straight = fresh()
    probnn.fit(straight, x, y, epochs=4, batch_size=64, verbose=0, seed=1)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        probnn.fit(
            fresh(),
            x,
            y,
            epochs=4,
            batch_size=64,
            verbose=0,
            seed=1,
            callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()],
        )
    resumed = fresh()
    history = probnn.fit(
        resumed,
        x,
        y,
        epochs=4,
        batch_size=64,
        verbose=0,
        seed=1,
        callbacks=[keras.callbacks.BackupAndRestore(backup)],
    )
    assert history.epoch == [2, 3]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_early_stopping_state_survives_a_checkpoint_resume(tmp_path, rng):
    """The patience counter is saved: a resumed run stops where an uninterrupted one does."""
    x = rng.uniform(-1, 1, size=(256, 1)).astype("float32")
    xv = rng.uniform(-1, 1, size=(128, 1)).astype("float32")

    def run(epochs, stopper):
        model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
        model.layers[0].kernel.assign([[0.0]])
        return probnn.fit(
            model,
            x,
            x,
            loss="mse",
            epochs=epochs,
            batch_size=32,
            validation_data=(xv, -xv),
            verbose=0,
            seed=0,
            optimizer=keras.optimizers.SGD(0.1),
            callbacks=[stopper],
            checkpoint_dir=tmp_path,
        )

    run(2, keras.callbacks.EarlyStopping(patience=3))  # epochs 0, 1: wait = 1 after epoch 1
    stopper = keras.callbacks.EarlyStopping(patience=3)
    history = run(50, stopper)
    assert history.epoch == [0, 1, 2, 3]
    assert stopper.stopped_epoch == 3


# --------------------------------------------------------------- progress


def test_progress_is_plain_lines_when_stdout_is_not_a_terminal(rng, capsys, monkeypatch):
    # ipykernel being importable or imported (the notebook tests import it) is no terminal.
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    x, y = data(rng, n=200)
    probnn.fit(
        small_model(), x, y, epochs=2, batch_size=50, verbose=1, seed=0, validation_data=(x[:50], y[:50])
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\b" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2 - ") and "val_nll: " in lines[0]
    assert lines[1].startswith("Epoch 2/2 - ")


def test_fit_returns_a_keras_history(rng):
    x, y = data(rng, n=100)
    model = small_model()
    history = probnn.fit(model, x, y, epochs=2, batch_size=50, verbose=0, seed=0)
    assert isinstance(history, keras.callbacks.History)
    assert history.model is model and model.history is history
    assert history.params["epochs"] == 2 and history.params["steps"] == 2
    assert tf.is_tensor(model.optimizer.iterations)


def test_progress_bar_path_on_a_terminal(rng, capsys):
    """The redrawn Keras bar (what a terminal gets), forced on captured output."""
    x, y = data(rng, n=200)
    bar = probnn.training.ProgressLogger(verbose=1, dynamic=True)
    probnn.fit(
        small_model(),
        x,
        y,
        epochs=2,
        batch_size=50,
        verbose=0,
        seed=0,
        steps_per_execution=2,
        callbacks=[bar],
    )
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out
