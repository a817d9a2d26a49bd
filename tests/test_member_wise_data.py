"""Member-wise data in probnn.fit: member m of a stack trains and validates on its own slice [:, m]."""

import keras
import numpy as np
import pytest

import probnn
from probnn.training import MemberEarlyStopping

SEEDS = [3, 11, 29]
RATES = [1e-2, 3e-2, 5e-2]


def _data(rng, n):
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)).astype("float32")
    return x, y


def _build(dropout=False):
    layers = [keras.Input((3,)), keras.layers.Dense(8, activation="relu")]
    if dropout:
        layers.append(probnn.layers.MCDropout(0.2))
    return keras.Sequential(layers + [probnn.heads.NormalHead()])


def _member_data(rng, n):
    """Three members' own data sets (different rows, same row count), stacked on axis 1."""
    parts = [_data(rng, n) for _ in SEEDS]
    return np.stack([p[0] for p in parts], axis=1), np.stack([p[1] for p in parts], axis=1)


def _stack(dropout=False):
    models = []
    for seed in SEEDS:
        keras.utils.set_random_seed(seed)
        models.append(_build(dropout))
    return probnn.Ensemble.from_models(models)


def _solo(m, x, y, xv, yv, epochs, dropout=False):
    keras.utils.set_random_seed(SEEDS[m])
    model = _build(dropout)
    history = probnn.fit(
        model,
        x[:, m],
        y[:, m],
        optimizer=keras.optimizers.Adam(RATES[m]),
        epochs=epochs,
        batch_size=16,
        validation_data=(xv[:, m], yv[:, m]),
        seed=SEEDS[m],
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping("val_nll", mode="min", patience=3, restore_best_weights=True)
        ],
        jit_compile=False,
    )
    return model, history


@pytest.mark.integration
@pytest.mark.parametrize("dropout", [False, True], ids=["deterministic", "mc_dropout"])
def test_members_match_solo_fits_on_their_own_data(rng, dropout):
    x, y = _member_data(rng, 72)  # 72 rows: 4 full batches of 16 and a last batch of 8
    xv, yv = _member_data(rng, 24)
    stack = _stack(dropout)
    stopping = MemberEarlyStopping(patience=3)
    probnn.fit(
        stack,
        x,
        y,
        optimizer=[keras.optimizers.Adam(rate) for rate in RATES],
        epochs=15,
        batch_size=16,
        validation_data=(xv, yv),
        seed=SEEDS,
        verbose=0,
        callbacks=[stopping],
        jit_compile="auto" if not dropout else False,  # the XLA program of the member-wise gather too
    )
    for m in range(len(SEEDS)):
        alone, history = _solo(m, x, y, xv, yv, 15, dropout)
        # float32 training, the stack's batched matmuls against the model's own: see
        # tests/test_grid_search.py; 1e-5 is the bound.
        for got, want in zip(stack.member(m).get_weights(), alone.get_weights()):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert stopping.best_epoch[m] == int(np.argmin(history.history["val_nll"]))
        assert stopping.best[m] == pytest.approx(min(history.history["val_nll"]), abs=1e-5)


@pytest.mark.integration
def test_member_wise_validation_samples_score_each_member_on_its_own_rows(rng):
    """validation_samples=2: member m's mixture NLL is the one it gets with xv[:, m] given to every member."""
    x, y = _member_data(rng, 32)
    xv, yv = _member_data(rng, 24)
    stack = _stack(dropout=True)

    def member_logs(validation_data):
        probnn.fit(
            stack,
            x,
            y,
            optimizer=keras.optimizers.SGD(0.0),  # the weights stay: only validation differs
            epochs=1,
            batch_size=16,
            validation_data=validation_data,
            validation_samples=2,
            seed=SEEDS,
            verbose=0,
            jit_compile=False,
        )
        return stack.probnn_member_logs["val_nll"]

    member_wise = member_logs((xv, yv))
    for m in range(3):
        np.testing.assert_allclose(member_wise[m], member_logs((xv[:, m], yv[:, m]))[m], rtol=1e-6)


@pytest.mark.integration
def test_member_wise_sample_weights_are_each_members_own(rng):
    x, y = _member_data(rng, 40)
    w = rng.uniform(0.5, 2.0, size=(40, 3)).astype("float32")
    stack = _stack()
    probnn.fit(
        stack,
        x,
        y,
        sample_weight=w,
        optimizer=[keras.optimizers.Adam(r) for r in RATES],
        epochs=2,
        batch_size=16,
        seed=SEEDS,
        verbose=0,
        jit_compile=False,
    )
    for m in range(3):
        keras.utils.set_random_seed(SEEDS[m])
        alone = _build()
        probnn.fit(
            alone,
            x[:, m],
            y[:, m],
            sample_weight=w[:, m],
            optimizer=keras.optimizers.Adam(RATES[m]),
            epochs=2,
            batch_size=16,
            seed=SEEDS[m],
            verbose=0,
            jit_compile=False,
        )
        for got, want in zip(stack.member(m).get_weights(), alone.get_weights()):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_member_wise_errors(rng):
    x, y = _member_data(rng, 20)
    stack = _stack()
    with pytest.raises(ValueError, match=r"member-wise data for a stack of 3 members must have shape"):
        probnn.fit(stack, x[:, :2], y[:, :2], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"member-wise inputs need member-wise targets"):
        probnn.fit(stack, x, y[:, 0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(20,\) or \(20, 3\)"):
        probnn.fit(stack, x, y, sample_weight=np.ones((20, 2)), epochs=1, verbose=0)
    dataset = __import__("tensorflow").data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(ValueError, match=r"member-wise data is supported for in-memory arrays only"):
        probnn.fit(stack, dataset, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"validation x\[0\]|validation x has row shape"):
        probnn.fit(stack, x, y, validation_data=(x[:, :, :2], y), epochs=1, verbose=0)
