"""The training-loop side of the Ensemble protocol (`probnn_members`, docs/design.md).

A hand-written two-member model: member m is an independent Dense layer applied
to x[:, m]. The reference below re-implements the protocol's documented
semantics with plain eager TensorFlow, one member at a time.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn

N, B, LR, EPOCHS, SEED = 150, 64, 0.02, 2, 7  # 150 % 64 != 0: a padded last batch


class TwoMembers(keras.Model):
    """Two independent members; inputs (batch, 2, features) or (batch, features)."""

    probnn_members = 2

    def __init__(self, bootstrap=False):
        super().__init__()
        self.probnn_bootstrap = bootstrap
        self.members = [keras.layers.Dense(2, kernel_initializer="glorot_uniform") for _ in range(2)]

    def call(self, x):
        if len(x.shape) == 2:  # plain rows: every member sees the same rows
            x = tf.stack([x, x], axis=1)
        return tf.stack([member(x[:, m]) for m, member in enumerate(self.members)], axis=1)


def gaussian_nll(y_true, y_pred):
    """Per-example Normal NLL; y_pred[..., 0] = mean, y_pred[..., 1] = raw scale."""
    scale = tf.math.softplus(y_pred[..., 1]) + 0.1
    z = (y_true[..., 0] - y_pred[..., 0]) / scale
    return 0.5 * z**2 + tf.math.log(scale) + 0.5 * np.log(2 * np.pi)


def member_rows(m, epoch, bootstrap):
    """The documented order: member m's rows (bootstrap once), permuted per (seed, epoch, m)."""
    rows = np.random.default_rng([SEED, m]).integers(0, N, N) if bootstrap else np.arange(N)
    return rows[np.random.default_rng([SEED, epoch, m]).permutation(N)]


def train_member_alone(kernel, bias, m, x, y, bootstrap):
    """SGD on member m alone: masked mean NLL over each batch of its own rows."""
    kernel, bias = tf.Variable(kernel), tf.Variable(bias)
    for epoch in range(EPOCHS):
        rows = member_rows(m, epoch, bootstrap)
        for start in range(0, N, B):
            batch = rows[start : start + B]
            with tf.GradientTape() as tape:
                out = tf.matmul(x[batch], kernel) + bias
                loss = tf.reduce_mean(gaussian_nll(y[batch], out))
            g_kernel, g_bias = tape.gradient(loss, [kernel, bias])
            kernel.assign_sub(LR * g_kernel)
            bias.assign_sub(LR * g_bias)
    return kernel.numpy(), bias.numpy()


@pytest.mark.parametrize("bootstrap", [False, True])
def test_each_member_trains_as_if_alone(bootstrap, rng):
    x = rng.normal(size=(N, 3)).astype("float32")
    y = (x[:, :1] + 0.5 * rng.normal(size=(N, 1))).astype("float32")
    model = TwoMembers(bootstrap)
    model(x[:2])
    start = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in model.members]
    history = probnn.fit(
        model,
        x,
        y,
        loss=gaussian_nll,
        epochs=EPOCHS,
        batch_size=B,
        verbose=0,
        seed=SEED,
        optimizer=keras.optimizers.SGD(LR),
    )
    assert len(history.history["loss"]) == EPOCHS
    for m, layer in enumerate(model.members):
        kernel, bias = train_member_alone(*start[m], m, x, y, bootstrap)
        np.testing.assert_allclose(layer.kernel.numpy(), kernel, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.bias.numpy(), bias, rtol=1e-5, atol=1e-6)
    # The members saw different rows, so they differ.
    assert not np.allclose(model.members[0].kernel.numpy(), model.members[1].kernel.numpy())


def test_reported_losses_are_means_over_members(rng):
    """lr = 0: loss and val_loss are the mean over members of each member's mean NLL."""
    x = rng.normal(size=(N, 3)).astype("float32")
    y = rng.normal(size=(N, 1)).astype("float32")
    xv, yv = x[:40], y[:40]
    model = TwoMembers()
    model(x[:2])
    out, out_v = model(x).numpy(), model(xv).numpy()
    train = np.mean([np.mean(gaussian_nll(y, out[:, m]).numpy()) for m in range(2)])
    val = np.mean([np.mean(gaussian_nll(yv, out_v[:, m]).numpy()) for m in range(2)])
    history = probnn.fit(
        model,
        x,
        y,
        loss=gaussian_nll,
        epochs=1,
        batch_size=B,
        verbose=0,
        seed=SEED,
        optimizer=keras.optimizers.SGD(0.0),
        validation_data=(xv, yv),
    )
    np.testing.assert_allclose(history.history["loss"], [train], rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"], [val], rtol=1e-5)


def test_streaming_gives_every_member_the_same_batch(rng):
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = TwoMembers()
    model(x[:2])
    for layer in model.members[1:]:
        layer.set_weights(model.members[0].get_weights())
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    probnn.fit(model, dataset, loss=gaussian_nll, epochs=2, verbose=0, optimizer=keras.optimizers.SGD(0.1))
    np.testing.assert_allclose(model.members[0].kernel.numpy(), model.members[1].kernel.numpy(), rtol=1e-6)
