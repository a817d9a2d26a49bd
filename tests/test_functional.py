"""stacked_call: one template model under a stack of weights equals the models one by one."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn
from probnn.functional import stack_weights, stacked_call, unstack_weights


def _build(dropout=0.0, batchnorm=False):
    layers = [keras.Input((3,)), keras.layers.Dense(16, activation="tanh")]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(probnn.heads.NormalHead())
    return keras.Sequential(layers)


def test_matches_each_member_and_its_gradient(rng):
    members = [_build() for _ in range(4)]
    stacked = stack_weights(members)
    x = rng.normal(size=(9, 3)).astype("float32")
    out = stacked_call(members[0], stacked, x)
    assert tuple(out.shape) == (4, 9, 2)
    for s, member in enumerate(members):
        # float32 matmuls in a different association order: a few ulps of O(1) values.
        np.testing.assert_allclose(out[s], member(x), rtol=0, atol=1e-6)

    variables = [tf.Variable(w) for w in stacked]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(stacked_call(members[0], variables, x) ** 2)
    grads = tape.gradient(total, variables)
    for s, member in enumerate(members):
        with tf.GradientTape() as tape:
            own = tf.reduce_sum(member(x) ** 2)
        for g, g_own in zip(grads, tape.gradient(own, member.trainable_variables)):
            np.testing.assert_allclose(g[s], g_own, rtol=1e-5, atol=1e-6)


def test_stacked_inputs_and_xla(rng):
    members = [_build() for _ in range(3)]
    stacked = stack_weights(members)
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    run = tf.function(lambda w, x: stacked_call(members[0], w, x, x_stacked=True), jit_compile=True)
    out = run(stacked, x)
    for s, member in enumerate(members):
        np.testing.assert_allclose(out[s], member(x[s]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(unstack_weights(stacked, 1)[0], members[1].trainable_variables[0])


def test_stacked_state_gives_each_slice_its_own_dropout_and_statistics(rng):
    model = _build(dropout=0.5, batchnorm=True)
    x = rng.normal(size=(64, 3)).astype("float32")
    stacked = stack_weights([model, model])
    state = [tf.stack([v.value, v.value]) for v in model.non_trainable_variables]
    # Different seed-generator states for the two slices: different dropout masks.
    for i, v in enumerate(model.non_trainable_variables):
        if "seed" in v.path:
            state[i] = tf.stack([v.value, v.value + 1])
    out, new_state = stacked_call(model, stacked, x, non_trainable=state, training=True)
    assert not np.allclose(out[0], out[1])
    moving_mean = [i for i, v in enumerate(model.non_trainable_variables) if v.path.endswith("moving_mean")][
        0
    ]
    # Both slices saw the same rows with the same weights: same batch statistics update.
    np.testing.assert_allclose(new_state[moving_mean][0], new_state[moving_mean][1], atol=1e-6)
    assert not np.allclose(new_state[moving_mean][0], state[moving_mean][0])


def test_errors_name_the_problem():
    a, b = _build(), keras.Sequential([keras.Input((4,)), probnn.heads.NormalHead()])
    with pytest.raises(ValueError, match="must share one architecture"):
        stack_weights([a, b])
    with pytest.raises(ValueError, match="at least one model"):
        stack_weights([])
    stacked = stack_weights([a, a])
    with pytest.raises(ValueError, match=r"must have shape \(S,\)"):
        stacked_call(a, [w[0] for w in stacked], np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="4 trainable weights, got 3"):
        stacked_call(a, stacked[:3], np.zeros((2, 3), "float32"))


def test_return_losses_gives_each_slices_own_losses(rng):
    def build():
        return keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.1)),
                probnn.heads.NormalHead(),
            ]
        )

    members = [build() for _ in range(3)]
    x = rng.normal(size=(2, 3)).astype("float32")
    out, losses = stacked_call(members[0], stack_weights(members), x, return_losses=True)
    assert tuple(out.shape) == (3, 2, 2)
    for s, member in enumerate(members):
        member(x)
        # L2 penalty of 12 float32 weights: round-off ~1e-7 relative.
        np.testing.assert_allclose(losses[s], sum(float(v) for v in member.losses), rtol=1e-6)
