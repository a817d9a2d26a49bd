"""`probnn.fit` gives Keras's answer (issue 11).

Each test reproduces one defect of the audit of `probnn.fit` against
`model.fit`: the reference is Keras's own `model.fit` / `model.evaluate` on the
same batches in the same order (`shuffle=False`), or a closed form (scipy)
where Keras itself rounds. Both sides start from identical weights.

Tolerances: both sides run the same float32 arithmetic in a different order
(XLA fusion, a while loop instead of one call per step), so weights after a
few epochs agree to a few float32 ulps of the values involved; 1e-5 absolute
is about 100 ulps of weights of order 1 and well below any of the defects
(which move weights by 1e-2 or more). Mixed precision runs the forward pass in
float16 (ulp 2**-10 relative), see the tolerance stated in those tests.
"""

import keras
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import tensorflow as tf

import probnn
from probnn.heads import (
    BernoulliHead,
    CategoricalHead,
    MultivariateNormalHead,
    NormalHead,
    PoissonHead,
    find_head,
)
from probnn.losses import NegativeLogLikelihood

layers = keras.layers


@pytest.fixture
def dtype_policy():
    """Set Keras's global dtype policy for one test and restore float32 afterwards."""
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")


def twins(make, seed=3):
    """Two models built by `make` with identical initial weights (one per trainer)."""
    keras.utils.set_random_seed(seed)
    first = make()
    second = make()
    second.set_weights(first.get_weights())
    return first, second


def max_abs_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)))) for u, v in zip(a, b)
    )


def keras_fit(model, x, y, *, loss=None, optimizer, epochs, batch_size, **kwargs):
    model.compile(
        optimizer=optimizer, loss=loss if loss is not None else NegativeLogLikelihood(find_head(model))
    )
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0, **kwargs)


# ------------------------------------------------------------- 1. mixed precision


def _fixed_normal(loc, scale, inputs=1):
    """A NormalHead model that outputs (loc, scale) whatever the input (zero kernel)."""
    model = keras.Sequential([keras.Input((inputs,)), NormalHead(kernel_initializer="zeros")])
    find_head(model).bias.assign([loc, float(np.log(np.expm1(scale)))])
    return model


def test_mixed_precision_loss_is_computed_in_float32(dtype_policy, rng):
    """loc = 1000, scale = 0.1, target 1000.3: a float16 loss is 30.6 and its gradient NaN."""
    dtype_policy("mixed_float16")
    x = rng.normal(size=(64, 1)).astype("float32")
    y = np.full((64, 1), 1000.3, "float32")
    model = _fixed_normal(1000.0, 0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=NegativeLogLikelihood(find_head(model)))
    reference = model.evaluate(x, y, batch_size=64, verbose=0)
    # The float16 parameters are loc = 1000 and scale = softplus(float16(-2.252));
    # the float32 NLL of those parameters is Keras's answer (the float64 NLL of
    # scale 0.1 would be 3.1143).
    assert abs(reference - 3.114) < 2e-3
    history = probnn.fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=32,
        shuffle=False,
        verbose=0,
        optimizer=keras.optimizers.SGD(0.0),
        seed=0,
    )
    np.testing.assert_allclose(history.history["loss"], [reference], rtol=1e-6)


@pytest.mark.integration
def test_mixed_precision_update_matches_keras_fit(dtype_policy, rng):
    """Training under mixed_float16 gives model.fit's weights (float32 loss, scaled loss)."""
    dtype_policy("mixed_float16")
    x = rng.normal(size=(96, 2)).astype("float32")
    y = (1000.0 + x[:, :1] + 0.3 * rng.normal(size=(96, 1))).astype("float32")

    def make():
        model = keras.Sequential([keras.Input((2,)), layers.Dense(8, activation="tanh"), NormalHead()])
        find_head(model).bias.assign([1000.0, 0.0])
        return model

    ours, theirs = twins(make)
    h_keras = keras_fit(theirs, x, y, optimizer=keras.optimizers.SGD(1e-3), epochs=3, batch_size=32)
    assert isinstance(theirs.optimizer, keras.optimizers.LossScaleOptimizer)
    h_ours = probnn.fit(
        ours,
        x,
        y,
        optimizer=keras.optimizers.SGD(1e-3),
        epochs=3,
        batch_size=32,
        shuffle=False,
        verbose=0,
        seed=0,
    )
    # float32 master weights updated from float16 forward/backward passes: the
    # two trainers' float16 roundings agree except where XLA fuses differently.
    np.testing.assert_allclose(h_ours.history["loss"], h_keras.history["loss"], rtol=1e-5)
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-5


# -------------------------------------------------------- 2. LossScaleOptimizer


def test_loss_scale_optimizer_scales_the_loss(rng):
    """An explicit LossScaleOptimizer: the loss must be multiplied by the scale."""
    x = rng.normal(size=(128, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(128, 1))).astype("float32")

    def make():
        return keras.Sequential([keras.Input((3,)), layers.Dense(1)])

    ours, theirs = twins(make)
    start = ours.get_weights()
    keras_fit(
        theirs,
        x,
        y,
        loss="mse",
        epochs=3,
        batch_size=32,
        optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
    )
    probnn.fit(
        ours,
        x,
        y,
        loss="mse",
        epochs=3,
        batch_size=32,
        shuffle=False,
        verbose=0,
        optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
    )
    assert max_abs_diff(theirs.get_weights(), start) > 0.1  # Keras moves the weights
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-5


def test_mixed_float16_wraps_the_optimizer_in_loss_scaling(dtype_policy, rng):
    """Gradients of 1e-9 underflow in float16 unless the loss is scaled, as model.fit does."""
    dtype_policy("mixed_float16")
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    def tiny_mse(y_true, y_pred):
        return 1e-9 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    def make():
        return keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="tanh"), layers.Dense(1)])

    ours, theirs = twins(make)
    start = ours.get_weights()
    keras_fit(theirs, x, y, loss=tiny_mse, epochs=2, batch_size=32, optimizer=keras.optimizers.SGD(1e7))
    probnn.fit(
        ours,
        x,
        y,
        loss=tiny_mse,
        epochs=2,
        batch_size=32,
        shuffle=False,
        verbose=0,
        optimizer=keras.optimizers.SGD(1e7),
        seed=0,
    )
    moved = max_abs_diff(theirs.get_weights(), start)
    assert moved > 1e-2
    # float16 backward pass: differences of a float16 ulp times the scaled step.
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-3 * moved


# ------------------------------------------------- 3. BatchNorm and the last batch


@pytest.mark.integration
def test_batch_norm_never_sees_padded_rows(rng):
    """150 rows, batch 64: the last batch has 22 rows, as in model.fit."""
    x = (rng.normal(size=(150, 2)) + np.linspace(0, 6, 150)[:, None]).astype("float32")
    y = (0.3 * (x[:, :1] - x[:, 1:]) + 0.3 * rng.normal(size=(150, 1))).astype("float32")

    def make():
        return keras.Sequential(
            [
                keras.Input((2,)),
                layers.BatchNormalization(momentum=0.0),
                layers.Dense(8, activation="tanh"),
                layers.BatchNormalization(momentum=0.5),
                NormalHead(),
            ]
        )

    ours, theirs = twins(make)
    start = ours.get_weights()
    # Adam: bounded steps from the large initial NLL (SGD diverges in both trainers).
    keras_fit(theirs, x, y, optimizer=keras.optimizers.Adam(0.01), epochs=3, batch_size=64)
    probnn.fit(
        ours, x, y, optimizer=keras.optimizers.Adam(0.01), epochs=3, batch_size=64, shuffle=False, verbose=0
    )
    assert 1e-2 < max_abs_diff(theirs.get_weights(), start) < 10
    # Momentum 0: the moving mean is the mean of the last batch (rows 128-149).
    np.testing.assert_allclose(ours.layers[0].moving_mean.numpy(), x[128:].mean(axis=0), rtol=1e-5)
    assert max_abs_diff(ours.weights, theirs.weights) < 1e-5  # incl. moving statistics


# ------------------------------------------ 4. resuming a finished (early-stopped) run


@pytest.mark.integration
def test_resuming_an_early_stopped_run_returns_its_weights(tmp_path, rng):
    """Train on y = x, validate on y = -x: validation gets worse every epoch."""
    x = rng.uniform(-1, 1, size=(256, 1)).astype("float32")
    xv = rng.uniform(-1, 1, size=(128, 1)).astype("float32")

    def make():
        model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
        model.layers[0].kernel.assign([[0.0]])
        return model

    ours, theirs = twins(make)
    keras_fit(
        theirs,
        x,
        x,
        loss="mse",
        epochs=50,
        batch_size=32,
        optimizer=keras.optimizers.SGD(0.1),
        validation_data=(xv, -xv),
        callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
    )

    def run(model):
        return probnn.fit(
            model,
            x,
            x,
            loss="mse",
            epochs=50,
            batch_size=32,
            shuffle=False,
            validation_data=(xv, -xv),
            verbose=0,
            seed=0,
            optimizer=keras.optimizers.SGD(0.1),
            checkpoint_dir=tmp_path,
            callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)],
        )

    first = run(ours)
    assert len(first.epoch) == 3  # stopped after epoch 3, epoch 1's weights restored
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-6
    steps = int(ours.optimizer.iterations.numpy())
    again = make()  # a new process starts from fresh weights
    second = run(again)
    assert second.history == first.history and second.epoch == first.epoch
    assert int(again.optimizer.iterations.numpy()) == steps  # no training
    assert max_abs_diff(again.get_weights(), theirs.get_weights()) < 1e-6


# -------------------------------------- 5. callable loss, tf.data, 1-D targets


def test_callable_loss_on_dataset_with_1d_targets(rng):
    x = rng.normal(size=(100, 1)).astype("float32")
    y = (2.0 * x[:, 0] + rng.normal(size=100)).astype("float32")  # shape (100,)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(25)

    def squared_error(y_true, y_pred):
        return keras.ops.square(y_true - y_pred)

    ours, theirs = twins(lambda: keras.Sequential([keras.Input((1,)), layers.Dense(1)]))
    true_mse = float(np.mean((theirs.predict(x, verbose=0)[:, 0] - y) ** 2))
    theirs.compile(optimizer=keras.optimizers.SGD(0.0), loss=squared_error)
    h_keras = theirs.fit(ds, epochs=1, verbose=0)
    h_ours = probnn.fit(
        ours, ds, loss=squared_error, epochs=1, verbose=0, optimizer=keras.optimizers.SGD(0.0)
    )
    np.testing.assert_allclose(h_keras.history["loss"], [true_mse], rtol=1e-6)
    np.testing.assert_allclose(h_ours.history["loss"], [true_mse], rtol=1e-6)


# ------------------------------------------------------------- 6. float64 policy


def test_float64_policy_keeps_the_data_in_float64(dtype_policy, rng):
    """floatx stays float32; targets 1e6 +- 0.01 need float64 (float32 ulp there is 0.06)."""
    dtype_policy("float64")
    assert keras.config.floatx() == "float32"
    x = rng.normal(size=(64, 1))
    y = 1e6 + 0.01 * rng.normal(size=(64, 1))
    exact = -float(np.mean(scipy.stats.norm(1e6, 0.01).logpdf(y)))

    def make():
        model = keras.Sequential([keras.Input((1,), dtype="float64"), NormalHead(kernel_initializer="zeros")])
        # scale = softplus(raw) + min_scale = 0.01
        find_head(model).bias.assign([1e6, np.log(np.expm1(0.01 - 1e-6))])
        return model

    ours, theirs = twins(make)
    # Keras's reference needs a float64 loss and a float64 tf.data pipeline
    # (its array adapter casts float64 arrays to floatx); it reports the epoch
    # mean through a float32 metric, hence 2e-6.
    theirs.compile(
        optimizer=keras.optimizers.SGD(0.0), loss=NegativeLogLikelihood(find_head(theirs), dtype="float64")
    )
    reference = theirs.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), verbose=0)
    np.testing.assert_allclose(reference, exact, rtol=2e-6)
    history = probnn.fit(
        ours, x, y, epochs=1, batch_size=64, verbose=0, seed=0, optimizer=keras.optimizers.SGD(0.0)
    )
    np.testing.assert_allclose(history.history["loss"], [exact], rtol=1e-9)


def test_float64_policy_update_matches_keras_fit(dtype_policy, rng):
    dtype_policy("float64")
    x = rng.normal(size=(80, 2))
    y = 1e6 + x[:, :1] * x[:, 1:] + 0.01 * rng.normal(size=(80, 1))

    def make():
        model = keras.Sequential(
            [keras.Input((2,), dtype="float64"), layers.Dense(8, activation="tanh"), NormalHead()]
        )
        find_head(model).bias.assign([1e6, np.log(np.expm1(0.01))])
        return model

    ours, theirs = twins(make)
    start = ours.get_weights()
    theirs.compile(
        optimizer=keras.optimizers.SGD(1e-5), loss=NegativeLogLikelihood(find_head(theirs), dtype="float64")
    )
    theirs.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=3, verbose=0)
    probnn.fit(
        ours, x, y, epochs=3, batch_size=32, shuffle=False, verbose=0, optimizer=keras.optimizers.SGD(1e-5)
    )
    assert max_abs_diff(theirs.get_weights(), start) > 1e-2
    # float64 arithmetic in a different order: 1e-9 is ~1e6 ulps of weights of order 1.
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-9


# ------------------------------------------------------------------ bad targets


@pytest.mark.parametrize(
    "head, y, message",
    [
        (CategoricalHead(3), [0, 1, 3, 2], r"CategoricalHead.*class indices in \[0, 3\).*3"),
        (CategoricalHead(3), [0, -1, 2, 2], r"CategoricalHead.*class indices in \[0, 3\).*-1"),
        (CategoricalHead(3), [0, 1.5, 2, 2], r"CategoricalHead.*integer.*1.5"),
        (BernoulliHead(), [0, 1, 2, 1], r"BernoulliHead.*0 or 1.*2"),
        (PoissonHead(), [0, 1, 2.5, 1], r"PoissonHead.*non-negative integer.*2.5"),
        (PoissonHead(), [0, -1, 2, 1], r"PoissonHead.*non-negative integer.*-1"),
    ],
)
def test_targets_outside_the_heads_support_raise(head, y, message):
    x = np.zeros((4, 2), "float32")
    y = np.asarray(y, "float32")[:, None]
    model = keras.Sequential([keras.Input((2,)), head])
    with pytest.raises(ValueError, match=r"probnn\.fit: y .*" + message):
        probnn.fit(model, x, y, verbose=0)
    with pytest.raises(ValueError, match=message):
        head.check_targets(y)
    with pytest.raises(ValueError, match=r"probnn\.fit: validation y .*" + message):
        probnn.fit(model, x, np.zeros_like(y), validation_data=(x, y), verbose=0)


def test_targets_inside_the_support_pass_the_check():
    CategoricalHead(3).check_targets(np.array([0, 1, 2, 2.0]))
    BernoulliHead(2).check_targets(np.array([[0, 1], [1, 1]]))
    PoissonHead().check_targets(np.array([[0.0], [7.0]]))
    NormalHead().check_targets(np.array([[-1e30], [3.0]]))


def test_negative_seed_is_rejected_up_front(rng):
    x = rng.normal(size=(8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), NormalHead()])
    with pytest.raises(ValueError, match=r"probnn\.fit: seed must be .*non-negative.*-1"):
        probnn.fit(model, x, x, seed=-1, verbose=0)


# ------------------------------------------------- missing tests of the audit


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["float64", "mixed_float16"])
def test_policy_end_to_end_fit_predict_save_load(policy, dtype_policy, rng, tmp_path):
    dtype_policy(policy)
    x = rng.normal(size=(200, 2))
    y = x[:, :1] - 0.5 * x[:, 1:] + 0.3 * rng.normal(size=(200, 1))
    model = keras.Sequential([keras.Input((2,)), layers.Dense(16, activation="tanh"), NormalHead()])
    history = probnn.fit(
        model, x, y, epochs=15, batch_size=32, verbose=0, seed=0, optimizer=keras.optimizers.Adam(1e-2)
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    dist = probnn.predict_distribution(model, x)
    assert dist.dtype == (tf.float64 if policy == "float64" else tf.float16)
    nll = -float(tf.reduce_mean(tf.cast(dist.log_prob(y), tf.float64)))
    # The final epoch's data term, and the NLL of the trained model, beat a
    # constant Normal fitted to y.
    assert nll < -float(np.mean(scipy.stats.norm(y.mean(), y.std()).logpdf(y)))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.dtype_policy.name == policy
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "jit, rows", [("auto", 96), pytest.param(True, 100, marks=pytest.mark.integration), (False, 100)]
)
def test_dropout_in_the_fused_loop_matches_keras_fit(jit, rows, rng):
    """Same dropout masks as model.fit: the seed generator advances once per step.

    The masks come from TF's stateless RNG, whose default algorithm differs
    with and without XLA, so the reference is model.fit compiled the same way
    (Keras's own jit_compile="auto" picks no XLA for this model). With
    jit_compile="auto" probnn runs a smaller last batch as a plain graph (see
    docs/design.md), so its masks come from the other algorithm: that case is
    compared on 96 rows (3 full batches of 32), where every step is XLA.
    """
    x = rng.normal(size=(rows, 3)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) + 0.2 * rng.normal(size=(rows, 1))).astype("float32")

    def make():
        return keras.Sequential(
            [
                keras.Input((3,)),
                layers.Dense(16, activation="relu"),
                layers.Dropout(0.3, seed=7),
                NormalHead(),
            ]
        )

    ours, theirs = twins(make)
    start = ours.get_weights()
    theirs.compile(
        optimizer=keras.optimizers.SGD(0.05),
        jit_compile=jit is not False,
        loss=NegativeLogLikelihood(find_head(theirs)),
    )
    h_keras = theirs.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    h_ours = probnn.fit(
        ours,
        x,
        y,
        optimizer=keras.optimizers.SGD(0.05),
        epochs=3,
        batch_size=32,
        shuffle=False,
        verbose=0,
        jit_compile=jit,
    )
    assert max_abs_diff(ours.get_weights(), start) > 1e-2
    np.testing.assert_allclose(h_ours.history["loss"], h_keras.history["loss"], rtol=1e-5)
    assert max_abs_diff(ours.get_weights(), theirs.get_weights()) < 1e-5


def test_validation_loss_includes_model_losses_like_keras_evaluate(rng):
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    xv = rng.normal(size=(150, 3)).astype("float32")
    yv = rng.normal(size=(150, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.Dense(
                8,
                activation="tanh",
                kernel_regularizer=keras.regularizers.L2(0.1),
                activity_regularizer=keras.regularizers.L2(0.05),
            ),
            NormalHead(),
        ]
    )
    history = probnn.fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=32,
        verbose=0,
        seed=0,
        validation_data=(xv, yv),
        validation_batch_size=64,
        optimizer=keras.optimizers.SGD(0.0),
    )
    model.compile(loss=NegativeLogLikelihood(find_head(model)))
    reference = model.evaluate(xv, yv, batch_size=64, verbose=0)
    data = -float(np.mean(find_head(model).distribution(model(xv)).log_prob(yv)))
    assert reference > data + 0.1  # the regularisers are part of Keras's loss
    np.testing.assert_allclose(history.history["val_loss"], [reference], rtol=1e-5)
    np.testing.assert_allclose(history.history["val_nll"], [data], rtol=1e-5)


def test_multivariate_normal_head_at_extreme_parameters(rng):
    """Event size 3; Cholesky diagonal from 7e-6 to 30, off-diagonals up to 15, |loc| 1e4."""
    head = MultivariateNormalHead(3)
    model = keras.Sequential([keras.Input((2,)), head])
    model.layers[0].kernel.assign(np.zeros((2, 9), "float32"))
    # loc, then the raw lower triangle in FillScaleTriL's order.
    raw = np.array([1e4, -1e4, 0.0, 30.0, 5.0, 15.0, 20.0, -12.0, 2.0], "float32")
    head.bias.assign(raw)
    x = np.zeros((48, 2), "float32")
    scale_tril = head.distribution(model(x[:1])).scale.to_dense().numpy()[0].astype(np.float64)
    diag = np.diag(scale_tril)
    assert diag.min() < 1e-5 and diag.max() > 29
    loc = raw[:3].astype(np.float64)
    y = (loc + (scale_tril @ rng.normal(size=(3, 48))).T).astype("float32")
    # Closed form in float64 for the float32 targets and Cholesky factor.
    z = scipy.linalg.solve_triangular(scale_tril, (y.astype(np.float64) - loc).T, lower=True)
    exact = 0.5 * (z**2).sum(axis=0) + np.log(diag).sum() + 1.5 * np.log(2 * np.pi)
    history = probnn.fit(
        model, x, y, epochs=1, batch_size=16, verbose=0, seed=0, optimizer=keras.optimizers.SGD(0.0)
    )
    # float32: y - loc is exact (Sterbenz), the triangular solve loses about
    # cond(L) * eps32 ~ 4e6 * 6e-8 relative in z, so 1e-4 of an NLL of ~1e1.
    np.testing.assert_allclose(history.history["loss"][0], exact.mean(), rtol=1e-4)
    with tf.GradientTape() as tape:
        nll = -tf.reduce_mean(head.log_prob(model(x), y))
    grads = tape.gradient(nll, model.trainable_variables)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
