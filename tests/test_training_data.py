"""probnn.fit's data: sample weights, multi-input models, epoch numbering, up-front checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn
from probnn.heads import NormalHead, find_head

layers = keras.layers


def normal_model(features=2, seed=5):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)), layers.Dense(8, "tanh"), NormalHead()])


def per_row_nll(model, x, y):
    return -find_head(model).log_prob(model(x, training=False), y).numpy()


# ------------------------------------------------------------ sample weights


def test_sample_weight_reports_the_weighted_mean(rng):
    """lr = 0: the epoch loss is sum(w * nll) / sum(w) over all rows (150 % 64 != 0)."""
    x = rng.normal(size=(150, 2)).astype("float32")
    y = rng.normal(size=(150, 1)).astype("float32")
    w = rng.uniform(0, 3, size=150).astype("float32")
    model = normal_model()
    nll = per_row_nll(model, x, y).astype(np.float64)
    history = probnn.fit(
        model,
        x,
        y,
        sample_weight=w,
        epochs=2,
        batch_size=64,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.SGD(0.0),
    )
    expected = float(np.sum(w * nll) / np.sum(w))
    np.testing.assert_allclose(history.history["nll"], [expected] * 2, rtol=1e-5)


@pytest.mark.integration
def test_integer_sample_weights_equal_repeated_rows(rng):
    """A full-batch step with weight k on a row is the step on data with the row k times."""
    x = rng.normal(size=(40, 2)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    w = rng.integers(0, 4, size=40)
    w[0] = 1
    weighted, repeated = normal_model(), normal_model()
    probnn.fit(
        weighted,
        x,
        y,
        sample_weight=w,
        epochs=3,
        batch_size=40,
        shuffle=False,
        verbose=0,
        optimizer=keras.optimizers.SGD(0.1),
    )
    probnn.fit(
        repeated,
        np.repeat(x, w, axis=0),
        np.repeat(y, w, axis=0),
        epochs=3,
        batch_size=int(w.sum()),
        shuffle=False,
        verbose=0,
        optimizer=keras.optimizers.SGD(0.1),
    )
    for a, b in zip(weighted.get_weights(), repeated.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sample_weight_is_checked(rng):
    x = rng.normal(size=(10, 2)).astype("float32")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(10,\)"):
        probnn.fit(normal_model(), x, x[:, :1], sample_weight=np.ones(9), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0"):
        probnn.fit(normal_model(), x, x[:, :1], sample_weight=-np.ones(10), verbose=0)


# --------------------------------------------------------------- multi-input


def two_input_model():
    keras.utils.set_random_seed(9)
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    h = layers.Dense(16, "tanh")(layers.Concatenate()([a, b]))
    return keras.Model({"a": a, "b": b}, NormalHead()(h))


@pytest.mark.integration
def test_two_input_functional_model_trains_from_dict_and_tuple(rng):
    xa = rng.normal(size=(512, 3)).astype("float32")
    xb = rng.normal(size=(512, 2)).astype("float32")
    y = (xa[:, :1] - 2 * xb[:, 1:] + 0.1 * rng.normal(size=(512, 1))).astype("float32")
    as_dict = two_input_model()
    history = probnn.fit(
        as_dict,
        {"a": xa, "b": xb},
        y,
        epochs=30,
        batch_size=64,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.Adam(0.01),
        validation_data=({"a": xa[:100], "b": xb[:100]}, y[:100]),
    )
    assert history.history["loss"][-1] < history.history["loss"][0] - 1.0
    assert history.history["val_loss"][-1] < history.history["val_loss"][0] - 1.0
    # The same data as a dict in the other key order gives the same training.
    other = two_input_model()
    probnn.fit(
        other,
        {"b": xb, "a": xa},
        y,
        epochs=30,
        batch_size=64,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.Adam(0.01),
    )
    for u, v in zip(as_dict.get_weights(), other.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_tuple_inputs_for_a_list_input_model(rng):
    a, b = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([a, b], NormalHead()(layers.Concatenate()([a, b])))
    xa = rng.normal(size=(64, 3)).astype("float32")
    xb = rng.normal(size=(64, 2)).astype("float32")
    history = probnn.fit(model, (xa, xb), xa[:, :1], epochs=2, batch_size=16, verbose=0)
    assert len(history.history["loss"]) == 2


# ---------------------------------------------------------- epoch numbering


def test_repeated_fit_continues_the_epoch_count_and_initial_epoch(rng):
    x = rng.normal(size=(64, 2)).astype("float32")
    model = normal_model()
    assert probnn.fit(model, x, x[:, :1], epochs=2, verbose=0).epoch == [0, 1]
    assert probnn.fit(model, x, x[:, :1], epochs=3, verbose=0).epoch == [2, 3, 4]
    # initial_epoch has Keras's meaning: epochs is the index of the final epoch.
    assert probnn.fit(model, x, x[:, :1], epochs=3, initial_epoch=1, verbose=0).epoch == [1, 2]


# ------------------------------------------------------ fail before training


def one_line_error(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message.startswith("probnn.fit: ")
    return message


def test_targets_of_the_wrong_shape_fail_in_one_line(rng):
    x = rng.normal(size=(100, 2)).astype("float32")
    y = rng.normal(size=(100, 3)).astype("float32")
    message = one_line_error(lambda: probnn.fit(normal_model(), x, y, verbose=0))
    assert "y has shape (100, 3)" in message and "NormalHead" in message
    assert "(rows,) + (1,)" in message


def test_wrong_number_of_input_features_fails_in_one_line(rng):
    x = rng.normal(size=(100, 5)).astype("float32")
    message = one_line_error(lambda: probnn.fit(normal_model(2), x, x[:, :1], verbose=0))
    assert "x has shape (100, 5)" in message and "expects rows of shape (2,)" in message


def test_wrong_number_of_features_in_a_subclassed_model_fails_in_one_line(rng):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(4)
            self.head = NormalHead()

        def call(self, x):
            return self.head(self.hidden(x))

    model = Net()
    model(np.zeros((1, 2), "float32"))
    x = rng.normal(size=(20, 5)).astype("float32")
    message = one_line_error(lambda: probnn.fit(model, x, x[:, :1], verbose=0))
    assert "rows of shape (5,)" in message


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path, rng):
    x = rng.normal(size=(20, 2)).astype("float32")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    model = normal_model()
    before = [w.copy() for w in model.get_weights()]
    message = one_line_error(
        lambda: probnn.fit(model, x, x[:, :1], verbose=0, checkpoint_dir=blocker / "ckpts")
    )
    assert "checkpoint_dir=" in message and "not writable" in message
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_loss_that_cannot_take_the_targets_fails_in_one_line(rng):
    x = rng.normal(size=(20, 2)).astype("float32")
    model = keras.Sequential([keras.Input((2,)), layers.Dense(3)])

    def loss(y_true, y_pred):
        return tf.reduce_sum(tf.reshape(y_true, (-1, 2)) * y_pred[:, :2], axis=-1)

    message = one_line_error(lambda: probnn.fit(model, x, x[:, :1], loss=loss, verbose=0))
    assert "the loss cannot be computed on y" in message
