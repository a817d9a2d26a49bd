"""probnn.GridSearch: every member of a stack ends where probnn.fit leaves it trained alone."""

import functools

import keras
import numpy as np
import pytest

import probnn
from probnn.training import MemberAdam


def _data(rng, n):
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)).astype("float32")
    return x, y


def _build(units=8):
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(units, activation="relu"), probnn.heads.NormalHead()]
    )


def _solo_fit(build, params, seed, data, *, epochs, patience, validation_samples=None, jit_compile=False):
    """A model trained alone by probnn.fit, as GridSearch promises each member ends:
    `(model, history)` with Keras's EarlyStopping on val_nll restoring the best weights.

    Without XLA by default: the reference's arithmetic is the same up to float32 rounding
    (as in tests/test_member_wise_data.py), and it skips an XLA compile per solo model.
    Stochastic layers need `jit_compile="auto"`: TF's stateless RNG draws other masks
    without XLA (tests/test_training_keras_parity.py), and the stack runs with XLA."""
    x, y, xv, yv = data
    keras.utils.set_random_seed(seed)
    model = build()
    history = probnn.fit(
        model,
        x,
        y,
        optimizer=keras.optimizers.Adam(**params),
        epochs=epochs,
        batch_size=16,
        validation_data=(xv, yv),
        validation_samples=validation_samples,
        seed=seed,
        verbose=0,
        jit_compile=jit_compile,
        callbacks=[
            keras.callbacks.EarlyStopping("val_nll", mode="min", patience=patience, restore_best_weights=True)
        ],
    )
    return model, history


def test_grid_members_match_solo_fits(rng):
    """The issue's acceptance test: 3 learning rates x 2 weight decays, Adam, 20 epochs."""
    x, y = _data(rng, 96)
    xv, yv = _data(rng, 32)
    grid = {"learning_rate": [1e-3, 1e-2, 5e-2], "weight_decay": [1e-4, 1e-2]}
    search = probnn.GridSearch(_build, grid, seeds=[7])
    search.fit(x, y, validation_data=(xv, yv), epochs=20, batch_size=16, patience=4)
    assert len(search.results) == 6
    for index, result in enumerate(search.results):
        params = result["params"]
        alone, history = _solo_fit(_build, params, 7, (x, y, xv, yv), epochs=20, patience=4)
        member = search.trained_model(index)
        # float32 training, the stack's batched matmuls against the model's own: measured
        # differences ~1e-7 after 20 epochs; 1e-5 is the bound.
        for got, want in zip(member.get_weights(), alone.get_weights()):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert result["val_nll"] == pytest.approx(min(history.history["val_nll"]), abs=1e-5)
        assert result["best_epoch"] == int(np.argmin(history.history["val_nll"])) + 1
    best = min(search.results, key=lambda r: r["val_nll"])
    assert search.best_params == best["params"]


@pytest.mark.integration
def test_kernel_l2_members_match_solo_fits_with_kernel_regularizers(rng):
    """`kernel_l2` stacks L2 penalties in one program; each member is the solo model with L2 kernels."""
    x, y = _data(rng, 96)
    xv, yv = _data(rng, 32)

    def build(units=8, l2=0.0):
        reg = keras.regularizers.L2(l2) if l2 else None
        return keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(units, activation="relu", kernel_regularizer=reg),
                probnn.heads.NormalHead(kernel_regularizer=reg),
            ]
        )

    grid = {"learning_rate": [1e-2, 3e-2], "kernel_l2": [0.0, 1e-3, 1e-1]}
    search = probnn.GridSearch(build, grid, seeds=[3])
    search.fit(x, y, validation_data=(xv, yv), epochs=15, batch_size=16, patience=4)
    assert len(search._stacks) == 1  # one structure, one program: the penalties are members
    for index, result in enumerate(search.results):
        params = dict(result["params"])
        l2 = params.pop("kernel_l2")
        alone, history = _solo_fit(
            functools.partial(build, l2=l2), params, 3, (x, y, xv, yv), epochs=15, patience=4
        )
        # The penalty's gradient 2 * l2 * w is added in another order than autodiff adds it to
        # the data gradient: float32 rounding, ~1e-7 per step; 1e-5 as in the test above.
        for got, want in zip(search.trained_model(index).get_weights(), alone.get_weights()):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert result["best_epoch"] == int(np.argmin(history.history["val_nll"])) + 1
    # The penalty acts: the strongest one shrinks the kernels.
    norms = [np.abs(search.trained_model(i).get_weights()[0]).sum() for i in range(len(search.results))]
    assert norms[2] < norms[0] and norms[5] < norms[3]


@pytest.mark.integration
def test_stochastic_members_draw_their_solo_noise(rng):
    """MC dropout: the members share one seed state (vectorised noise) and still end as trained alone."""
    x, y = _data(rng, 64)
    xv, yv = _data(rng, 32)

    def build():
        return keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(8, activation="relu"),
                probnn.layers.MCDropout(0.2),
                probnn.heads.NormalHead(),
            ]
        )

    search = probnn.GridSearch(build, {"learning_rate": [1e-2, 3e-2]}, seeds=[5])
    search.fit(x, y, validation_data=(xv, yv), epochs=6, batch_size=16, patience=None, validation_samples=3)
    ((stack, _),) = search._stacks.values()
    assert stack._shared_seeds == (0,)  # the dropout seed state runs shared, in validation too
    for index, result in enumerate(search.results):
        alone, history = _solo_fit(
            build,
            result["params"],
            5,
            (x, y, xv, yv),
            epochs=6,
            patience=6,
            validation_samples=3,
            jit_compile="auto",
        )
        # float32, as in the deterministic test above (same noise: the masks are equal)
        for got, want in zip(search.trained_model(index).get_weights(), alone.get_weights()):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        # The validation passes draw the solo model's noise: the same mixture NLL.
        assert result["val_nll"] == pytest.approx(min(history.history["val_nll"]), abs=1e-5)
        assert result["best_epoch"] == int(np.argmin(history.history["val_nll"])) + 1


def test_member_adam_is_keras_adam_and_adamw_member_by_member(rng):
    configs = [
        keras.optimizers.Adam(1e-3),
        keras.optimizers.Adam(3e-2, weight_decay=1e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
        keras.optimizers.AdamW(0.1),
    ]
    start = rng.normal(size=(3, 4, 5)).astype("float32")
    alone = [keras.Variable(start[i]) for i in range(3)]
    stacked = keras.Variable(start)
    member_adam = MemberAdam.from_optimizers(configs)
    for _ in range(30):
        grads = rng.normal(size=(3, 4, 5)).astype("float32")
        for opt, variable, g in zip(configs, alone, grads):
            opt.apply([g], [variable])
        member_adam.apply([grads], [stacked])
    for i in range(3):  # the same float32 operations in the same order: bitwise equal
        np.testing.assert_array_equal(stacked.numpy()[i], alone[i].numpy())
    member_adam.freeze([1])
    before = stacked.numpy()
    member_adam.apply([np.ones((3, 4, 5), "float32")], [stacked])
    np.testing.assert_array_equal(stacked.numpy()[1], before[1])
    assert not np.array_equal(stacked.numpy()[0], before[0])
    with pytest.raises(ValueError, match="amsgrad"):
        MemberAdam.from_optimizers([keras.optimizers.Adam(amsgrad=True)])
    with pytest.raises(ValueError, match="Adam or AdamW"):
        MemberAdam.from_optimizers([keras.optimizers.SGD()])


@pytest.mark.integration
def test_structures_seeds_best_model_and_refit(rng):
    x, y = _data(rng, 64)
    xv, yv = _data(rng, 32)
    search = probnn.GridSearch(_build, {"units": [4, 6], "learning_rate": [1e-2, 3e-2]}, seeds=2)
    search.fit(x, y, validation_data=(xv, yv), epochs=4, batch_size=32)
    assert len(search.results) == 8
    assert {tuple(sorted(r)) for r in search.results} == {
        ("best_epoch", "params", "seconds", "seed", "val_nll")
    }
    assert sorted(search.best_params) == ["learning_rate", "units"]
    best = search.best_model
    assert isinstance(best, probnn.Ensemble) and best.probnn_members == 2
    assert tuple(best.probnn_template.layers[0].kernel.shape) == (3, search.best_params["units"])
    refit = search.refit(np.concatenate([x, xv]), np.concatenate([y, yv]))
    assert isinstance(refit, probnn.Ensemble)
    assert probnn.predict_distribution(refit, xv).batch_shape.as_list() == [32]


def test_errors_before_any_training(rng):
    with pytest.raises(ValueError, match="non-empty dict"):
        probnn.GridSearch(_build, {})
    with pytest.raises(ValueError, match=r"grid\['learning_rate'\] is empty"):
        probnn.GridSearch(_build, {"learning_rate": []})
    with pytest.raises(ValueError, match="unknown optimizer key 'amsgrad'"):
        probnn.GridSearch(_build, {"amsgrad": [True, False]})
    with pytest.raises(ValueError, match="does not accept the grid key 'layers'"):
        probnn.GridSearch(_build, {"layers": [1, 2]})

    def rejecting(**options):
        if "depth" in options:
            raise TypeError("unexpected keyword argument 'depth'")
        return _build()

    search = probnn.GridSearch(rejecting, {"depth": [1], "learning_rate": [1e-3]})
    x, y = _data(rng, 8)
    with pytest.raises(ValueError, match="depth"):
        search.fit(x, y, validation_data=(x, y), epochs=1)
    assert search.results is None
    with pytest.raises(ValueError, match="validation_data"):
        search.fit(x, y, validation_data=None, epochs=1)


@pytest.mark.integration
def test_a_second_fit_reuses_the_stack_and_trains_as_a_fresh_search(rng):
    """`fit` on other data (another fold or split) reinitialises the earlier stack instead of
    building (and compiling) a new one; the results are those of a fresh search."""
    first, second = _data(rng, 48), _data(rng, 48)
    xv, yv = _data(rng, 16)
    grid = {"learning_rate": [1e-2, 3e-2], "weight_decay": [0.0, 1e-3]}
    reused = probnn.GridSearch(_build, grid)
    reused.fit(*first, validation_data=(xv, yv), epochs=3, batch_size=16)
    stack = reused._stacks[()][0]
    reused.fit(*second, validation_data=(xv, yv), epochs=3, batch_size=16)
    assert reused._stacks[()][0] is stack
    fresh = probnn.GridSearch(_build, grid)
    fresh.fit(*second, validation_data=(xv, yv), epochs=3, batch_size=16)
    for a, b in zip(reused.results, fresh.results):
        # the same program on the same initial weights, data and optimizer state
        assert a["val_nll"] == b["val_nll"] and a["best_epoch"] == b["best_epoch"]


@pytest.mark.integration
def test_splits_in_one_program_match_one_split_searches(rng):
    """Lists of splits: every (configuration, seed, split) a member; each split as its own search."""
    splits = [_data(rng, 48) for _ in range(2)]
    validation = [_data(rng, 24) for _ in range(2)]
    grid = {"learning_rate": [1e-2, 3e-2], "units": [6]}
    kwargs = dict(epochs=10, batch_size=16, patience=3)
    search = probnn.GridSearch(_build, grid, seeds=[1, 2])
    search.fit(
        [x for x, _ in splits],
        [y for _, y in splits],
        validation_data=([x for x, _ in validation], [y for _, y in validation]),
        **kwargs,
    )
    assert len(search._stacks) == 1 and len(search.results) == 8  # 2 rates x 2 seeds x 2 splits
    assert sorted({r["split"] for r in search.results}) == [0, 1]
    for k, ((x, y), (xv, yv)) in enumerate(zip(splits, validation)):
        alone = probnn.GridSearch(_build, grid, seeds=[1, 2])
        alone.fit(x, y, validation_data=(xv, yv), **kwargs)
        mine = [(i, r) for i, r in enumerate(search.results) if r["split"] == k]
        assert len(mine) == len(alone.results)
        for (index, got), (j, want) in zip(mine, enumerate(alone.results)):
            assert (got["params"], got["seed"]) == (want["params"], want["seed"])
            assert got["best_epoch"] == want["best_epoch"]
            assert got["val_nll"] == pytest.approx(want["val_nll"], abs=1e-5)
            # float32, batched matmuls of different stack widths: as in the tests above, 1e-5.
            for a, b in zip(search.trained_model(index).get_weights(), alone.trained_model(j).get_weights()):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert search.best_params_per_split[k] == alone.best_params
        assert search.best_epochs(split=k) == alone.best_epochs()
        refit = search.refit(x, y, split=k)
        for a, b in zip(refit.get_weights(), alone.refit(x, y).get_weights()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


@pytest.mark.integration
def test_refit_of_every_split_is_each_splits_refit(rng):
    """refit with lists: every split's chosen configuration, the splits of one structure in one
    program; each model equals refit(x[k], y[k], split=k)."""
    splits = [_data(rng, 48) for _ in range(3)]
    validation = [_data(rng, 24) for _ in range(3)]
    search = probnn.GridSearch(_build, {"learning_rate": [1e-2, 5e-2], "units": [3, 6]}, seeds=[1, 2])
    search.fit(
        [x for x, _ in splits],
        [y for _, y in splits],
        validation_data=([x for x, _ in validation], [y for _, y in validation]),
        epochs=8,
        batch_size=16,
        patience=2,
    )
    xs, ys = [x for x, _ in splits], [y for _, y in splits]
    refits = search.refit(xs, ys, batch_size=16)
    assert len(refits) == 3
    for k, refit in enumerate(refits):
        units = search.best_params_per_split[k]["units"]
        assert tuple(refit.probnn_template.layers[0].kernel.shape) == (3, units)
        # float32, batched matmuls of different stack widths: 1e-5, as above.
        for a, b in zip(
            refit.get_weights(), search.refit(xs[k], ys[k], split=k, batch_size=16).get_weights()
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="every split's x must have the same shape"):
        search.refit([xs[0], xs[1], xs[2][:40]], [ys[0], ys[1], ys[2][:40]])
    with pytest.raises(ValueError, match="give x and y as lists of 3 training sets"):
        search.refit(xs[:2], ys[:2])


@pytest.mark.integration
def test_split_errors(rng):
    (x, y), (xv, yv) = _data(rng, 32), _data(rng, 16)
    search = probnn.GridSearch(_build, {"learning_rate": [1e-2]})
    with pytest.raises(ValueError, match="every split's x must have the same shape"):
        search.fit([x, x[:30]], [y, y[:30]], validation_data=([xv, xv], [yv, yv]), epochs=1)
    with pytest.raises(ValueError, match="must list the same number of splits"):
        search.fit([x, x], [y, y], validation_data=([xv], [yv]), epochs=1)
    with pytest.raises(ValueError, match="must be lists of splits too"):
        search.fit(x, [y, y], validation_data=(xv, yv), epochs=1)
    search.fit([x, x], [y, y], validation_data=([xv, xv], [yv, yv]), epochs=1)
    with pytest.raises(ValueError, match=r"pass split=k with 0 <= k < 2"):
        search.best_epochs()
    with pytest.raises(ValueError, match="best_model: the search ran several splits"):
        _ = search.best_model
    search.fit(x, y, validation_data=(xv, yv), epochs=1)
    with pytest.raises(ValueError, match="needs a fit over several splits"):
        search.refit(x, y, split=0)
