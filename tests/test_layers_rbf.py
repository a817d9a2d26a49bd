import doctest
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

import probnn.layers.prototypes
import probnn.layers.rbf
from probnn.layers import RBF, squared_distances

EPS32 = float(np.finfo(np.float32).eps)
REPO = Path(__file__).resolve().parents[1]


def rbf_reference(x, centers, widths, weights):
    """The layer's formula in float64 NumPy: y_i = w_i exp(-||x - mu_i||^2 / sigma_i^2)."""
    d2 = cdist(x.astype(np.float64), centers.astype(np.float64), "sqeuclidean")
    return weights * np.exp(-d2 / widths**2)


def set_params(layer, centers, widths, weights):
    layer.centers.assign(centers)
    layer.log_width.assign(np.log(widths))
    layer.output_weights.assign(weights)


def test_squared_distances_matches_cdist_and_keeps_batch_dims(rng):
    x = rng.normal(size=(3, 7, 5))
    c = rng.normal(size=(4, 5))
    d2 = keras.ops.convert_to_numpy(squared_distances(x, c))
    assert d2.shape == (3, 7, 4)
    ref = cdist(x.reshape(-1, 5), c, "sqeuclidean").reshape(3, 7, 4)
    # float64 throughout: the expansion loses ~eps64 * (|x|^2 + |c|^2) ~ 1e-14 at most here.
    np.testing.assert_allclose(d2, ref, rtol=0, atol=1e-12)


def test_squared_distances_are_clamped_at_zero():
    # Points on large-norm centres: ||x||^2 - 2 x.c + ||c||^2 cancels to rounding
    # noise of either sign in float32; without the clamp some entries are negative.
    base = np.random.default_rng(1).normal(1000.0, 1.0, size=(64, 16)).astype(np.float32)
    d2 = keras.ops.convert_to_numpy(squared_distances(base, base))
    assert d2.min() >= 0.0
    # ...and stay within the documented rounding error of the true zero distance.
    assert np.diag(d2).max() <= 8 * EPS32 * 2 * (base.astype(np.float64) ** 2).sum(1).max()


def test_squared_distances_rejects_mismatched_features():
    with pytest.raises(ValueError, match="3 features but centers have 4"):
        squared_distances(np.zeros((2, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"shape \(m, n\)"):
        squared_distances(np.zeros((2, 3)), np.zeros((3,)))


def test_rbf_output_equals_formula_float32(rng):
    n, m = 5, 7
    x = rng.normal(size=(50, n)).astype(np.float32)
    centers = rng.normal(size=(m, n)).astype(np.float32)
    widths = rng.uniform(0.5, 3.0, size=m).astype(np.float32)
    weights = rng.normal(size=m).astype(np.float32)
    layer = RBF(m)
    layer.build((None, n))
    set_params(layer, centers, widths, weights)
    y = keras.ops.convert_to_numpy(layer(x))
    ref = rbf_reference(x, centers, widths.astype(np.float64), weights.astype(np.float64))
    # Error analysis: the expanded distance is off by at most ~4 eps (|x|^2 + |mu|^2),
    # so the exponent by that over sigma^2, and exp/multiply add a few eps relative.
    norms = (x.astype(np.float64) ** 2).sum(1)[:, None] + (centers.astype(np.float64) ** 2).sum(1)[None]
    tol = 16 * EPS32 * np.abs(weights) * (1.0 + norms / widths.astype(np.float64) ** 2)
    assert np.all(np.abs(y - ref) <= tol)
    assert np.abs(ref).max() > 0.1  # the check is not vacuous: some outputs are far from zero


def test_rbf_output_equals_formula_float64_on_rank3_inputs(rng):
    n, m = 3, 4
    x = rng.normal(size=(2, 6, n))
    centers, widths, weights = rng.normal(size=(m, n)), rng.uniform(0.5, 2.0, m), rng.normal(size=m)
    layer = RBF(m, dtype="float64")
    layer.build((None, None, n))
    set_params(layer, centers, widths, weights)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 6, m) == layer.compute_output_shape((2, 6, n))
    ref = rbf_reference(x.reshape(-1, n), centers, widths, weights).reshape(2, 6, m)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)


def test_rbf_parameter_count_and_initial_state():
    layer = RBF(6, width=2.5)
    layer.build((None, 4))
    assert layer.count_params() == 6 * 4 + 2 * 6
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.widths), 2.5, rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.output_weights), 1.0)


@pytest.mark.parametrize("frozen", ["centers", "widths", "output_weights"])
def test_rbf_freezing_each_parameter_group(frozen, rng):
    layer = RBF(5, **{f"trainable_{frozen}": False})
    model = keras.Sequential([keras.Input((3,)), layer, keras.layers.Dense(1)])
    model.compile("adam", "mse")
    attr = {"centers": "centers", "widths": "log_width", "output_weights": "output_weights"}
    before = {a: keras.ops.convert_to_numpy(getattr(layer, a)).copy() for a in attr.values()}
    x = rng.normal(size=(64, 3)).astype(np.float32)
    model.fit(x, x[:, :1] ** 2, epochs=2, verbose=0)
    for group, a in attr.items():
        after = keras.ops.convert_to_numpy(getattr(layer, a))
        if group == frozen:
            np.testing.assert_array_equal(after, before[a])
        else:
            assert not np.array_equal(after, before[a]), f"{group} did not train"
    assert len(layer.non_trainable_weights) == 1


def test_rbf_widths_stay_positive_under_large_steps(rng):
    layer = RBF(4)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(keras.optimizers.SGD(50.0), "mse")
    x = rng.normal(size=(32, 2)).astype(np.float32)
    model.fit(x, np.zeros((32, 4)), epochs=3, verbose=0)  # pushes widths towards zero
    widths = keras.ops.convert_to_numpy(layer.widths)
    assert np.all(widths > 0) and np.all(np.isfinite(widths))


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, resource
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    from probnn.layers import RBF

    def status_bytes(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    def reset_peak():
        # ru_maxrss / VmHWM start at the parent's RSS (kept across fork + exec), which
        # would hide our peak: reset VmHWM to the current RSS (Linux >= 4.0).
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return status_bytes("VmRSS")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak_bytes():
        return status_bytes("VmHWM")

    x = np.random.default_rng(0).random((4096, 784), dtype=np.float32)
    layer = RBF(2048)
    layer.build((None, 784))
    layer(x[:16])  # warm up kernels and thread pools before the baseline
    base = reset_peak()
    y = layer(x)
    assert y.shape == (4096, 2048) and bool(tf.reduce_all(tf.math.is_finite(y)))
    rbf_extra = peak_bytes() - base
    del y
    # Sanity check of the probe: the naive broadcast on 96 rows makes two
    # (96, 784, 2048) float32 tensors (difference, square) of 0.62 GB each.
    before_naive = reset_peak()
    naive = tf.reduce_sum(tf.square(x[:96, :, None] - tf.transpose(layer.centers)[None]), axis=1)
    naive_extra = peak_bytes() - before_naive
    print(json.dumps({"rbf_extra": rbf_extra, "naive_extra": naive_extra}))
    """
)


@pytest.mark.e2e
def test_rbf_forward_memory_is_batch_times_units(tmp_path):
    """(4096, 784) through RBF(2048): extra peak RSS well under 1 GB (naive: 26 GB)."""
    script = tmp_path / "memory_probe.py"
    script.write_text(_MEMORY_SCRIPT)
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    # Expected: input copy 13 MB + a few (4096, 2048) float32 temporaries of 34 MB each,
    # about 150-250 MiB measured. 512 MiB is "well under 1 GB" with room for allocator noise.
    assert result["rbf_extra"] < 512 * mib, f"RBF forward used {result['rbf_extra'] / mib:.0f} MiB extra"
    assert result["naive_extra"] > 1000 * mib, f"probe missed the naive tensor: {result}"


def test_adapt_random_puts_every_centre_on_a_data_point(rng):
    x = rng.normal(size=(300, 4)).astype(np.float32)
    layer = RBF(20)
    layer.adapt(x, seed=0)
    layer.build((None, 4))
    centers = keras.ops.convert_to_numpy(layer.centers)
    assert cdist(centers, x).min(axis=1).max() == 0.0  # each centre is exactly a row of x
    assert len(np.unique(centers, axis=0)) == 20  # distinct rows


def test_adapt_kmeanspp_on_data_and_kmeans_near_data(rng):
    x = np.concatenate([rng.normal(loc, 0.3, size=(100, 2)) for loc in (-3, 0, 3)]).astype(np.float32)
    typical = np.median(pdist(x))
    for method, on_data in (("kmeans++", True), ("kmeans", False)):
        layer = RBF(6)
        layer.build((None, 2))
        layer.adapt(x, method=method, seed=0)
        nearest = cdist(keras.ops.convert_to_numpy(layer.centers), x).min(axis=1)
        if on_data:
            assert nearest.max() == 0.0
        else:
            # "near the data" as documented: closer to a data point than the median pairwise distance.
            assert nearest.max() < typical
            assert nearest.max() > 0.0  # cluster means, not data points: the check distinguishes


def test_adapt_sets_widths_from_typical_distance(rng):
    # Two tight classes far apart: the in-class distance is far below the overall one.
    x = np.concatenate([rng.normal(0, 1, size=(200, 3)), rng.normal(20, 1, size=(200, 3))])
    y = np.repeat([0, 1], 200)
    all_d = pdist(x)
    within = np.concatenate([pdist(x[y == 0]), pdist(x[y == 1])])
    for labels, d in ((None, all_d), (y, within)):
        layer = RBF(10)
        layer.adapt(x, labels, seed=0)
        layer.build((None, 3))
        sigma = keras.ops.convert_to_numpy(layer.widths)
        assert np.all(sigma == sigma[0])
        assert d.min() <= sigma[0] <= d.max()
        # The median of the pairwise distances (subsample of 400 <= max_samples: exact).
        np.testing.assert_allclose(sigma[0], np.median(d), rtol=1e-6)
    layer = RBF(10)
    layer.adapt(x, y, width_scale=0.5, seed=0)
    layer.build((None, 3))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.widths), 0.5 * np.median(within), rtol=1e-6)


def test_adapt_before_build_equals_adapt_after_build(rng):
    x = rng.normal(size=(100, 3)).astype(np.float32)
    early = RBF(8)
    early.adapt(x, seed=3)
    model = keras.Sequential([keras.Input((3,)), early])  # builds the layer
    late = RBF(8)
    late.build((None, 3))
    late.adapt(x, seed=3)
    for a, b in zip(early.weights, late.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert not np.allclose(keras.ops.convert_to_numpy(early.log_width), 0.0)  # adapted, not the default
    np.testing.assert_allclose(model(x), late(x), rtol=1e-6)


def test_rbf_validation_errors(rng):
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="RBF layer .*units must be a positive integer"):
            RBF(bad)
    with pytest.raises(ValueError, match="width must be a positive"):
        RBF(3, width=0.0)
    with pytest.raises(ValueError, match="'my_rbf'.*rank >= 2"):
        RBF(3, name="my_rbf").build((5,))
    with pytest.raises(ValueError, match="feature.*must be known"):
        RBF(3).build((None, None))
    x = rng.normal(size=(20, 4))
    layer = RBF(3, name="rbf_a")
    layer.adapt(x, seed=0)
    with pytest.raises(ValueError, match="'rbf_a': already built .* for 4 features, got input shape"):
        layer.build((None, 5))
    built = RBF(3, name="rbf_b")
    built.build((None, 5))
    with pytest.raises(ValueError, match="'rbf_b': expected data with 5 features, got 4"):
        built.adapt(x)
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 5"):
        built(x)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="RBF layer .*NaN"):
        RBF(3).adapt(x_nan)
    with pytest.raises(ValueError, match="at least units=30 data points, got 20"):
        RBF(30).adapt(x)
    with pytest.raises(ValueError, match="20 data points but labels of shape"):
        RBF(3).adapt(x, np.zeros(19))
    with pytest.raises(ValueError, match="shape \\(num_points, ..., features\\)"):
        RBF(3).adapt(np.zeros(10))
    with pytest.raises(ValueError, match="method must be one of"):
        RBF(3).adapt(x, method="spectral")


def test_rbf_save_load_identical_outputs(tmp_path, rng):
    x = rng.normal(size=(64, 6)).astype(np.float32)
    rbf = RBF(
        9,
        trainable_widths=False,
        centers_regularizer=keras.regularizers.L2(1e-3),
        output_weights_constraint=keras.constraints.NonNeg(),
        name="rbf",
    )
    rbf.adapt(x, rng.integers(0, 3, size=64), method="kmeans++", seed=1)
    model = keras.Sequential([keras.Input((6,)), rbf, keras.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(x, x[:, :2], epochs=1, verbose=0)
    path = tmp_path / "rbf.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x)))
    layer = loaded.get_layer("rbf")
    assert isinstance(layer, RBF) and layer.trainable_widths is False
    assert layer.get_config() == rbf.get_config()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.log_width), keras.ops.convert_to_numpy(rbf.log_width)
    )


@pytest.mark.parametrize("module", [probnn.layers.rbf, probnn.layers.prototypes])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
