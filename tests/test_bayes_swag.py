"""probnn.bayes.swag: its moments, its draws' covariance, BatchNorm refresh, save/load, errors."""

import keras
import numpy as np
import pytest

import probnn
from probnn.bayes.swag import SWAG


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, :1] - 0.5 * x[:, 1:] + 0.1 * rng.normal(size=(64, 1))).astype("float32")
    return x, y


def _model():
    return keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(4, activation="tanh", name="hidden"),
            probnn.heads.NormalHead(),
        ]
    )


class _Record(keras.callbacks.Callback):
    def __init__(self, variables):
        super().__init__()
        self.variables, self.snapshots = variables, []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(np.concatenate([np.ravel(v.numpy()) for v in self.variables]))


@pytest.mark.parametrize("weight_decay", [None, 0.05])
def test_moments_are_those_of_the_sgd_iterates(data, weight_decay):
    """The same continued SGD run (same seed, same copy of the weights) recorded independently."""
    x, y = data
    keras.utils.set_random_seed(0)
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    schedule = probnn.bayes.SWAGSchedule(epochs=6, learning_rate=0.01, weight_decay=weight_decay)
    posterior = probnn.bayes.swag(model, x, y, schedule=schedule, rank=3, seed=3)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the model itself is not trained
    copy = keras.models.clone_model(model)
    copy.set_weights(before)
    record = _Record(copy.trainable_variables)
    probnn.fit(
        copy,
        x,
        y,
        epochs=6,
        batch_size=32,
        seed=3,
        verbose=0,
        callbacks=[record],
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=weight_decay),
    )
    snaps = np.stack(record.snapshots)
    running = np.cumsum(snaps, axis=0) / np.arange(1, 7)[:, None]
    np.testing.assert_allclose(posterior.mean, snaps.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(posterior.variance, snaps.var(0), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(posterior.deviations, (snaps - running)[-3:], rtol=1e-5, atol=1e-7)


def test_draws_have_the_swag_covariance():
    """Covariance of the draws = (diag + D D^T / (K - 1)) / 2, within 5 standard errors (Wishart)."""
    model = keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead()])  # 4 weights
    rng = np.random.default_rng(1)
    deviations = rng.normal(size=(3, 4))
    mean, variance = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    posterior = SWAG(model, mean=mean, sq_mean=variance + mean**2, deviations=deviations)
    expected = (np.diag(variance) + deviations.T @ deviations / 2) / 2
    k = 20_000
    draws = np.concatenate([w.reshape(k, -1) for w in posterior.sample_weights(k, seed=0)], axis=1)
    cov = np.cov(draws.astype(np.float64), rowvar=False)
    se = np.sqrt((expected**2 + np.outer(np.diag(expected), np.diag(expected))) / k)
    assert np.all(np.abs(cov - expected) <= 5 * se + 1e-6), (cov, expected)
    np.testing.assert_allclose(draws.mean(0), mean, atol=5 * np.sqrt(np.diag(expected) / k).max())


@pytest.mark.integration
def test_batch_norm_statistics_are_refreshed_per_draw(data):
    """With zero variance every draw is the mean; its refreshed statistics are those of the inputs."""
    x, _ = data
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(3),
            keras.layers.BatchNormalization(),
            probnn.heads.NormalHead(),
        ]
    )
    mean = np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables]) + 0.1
    posterior = SWAG(model, mean=mean, sq_mean=mean**2, deviations=np.zeros((1, mean.size)), x=x)
    dist = probnn.predict_distribution(model, x[:5], posterior=posterior, num_draws=2, seed=0)
    weights = [w[0] for w in posterior.sample_weights(1)]
    hidden = x @ weights[0] + weights[1]
    bn = model.layers[1]
    gamma, beta = weights[2], weights[3]
    normed = (hidden[:5] - hidden.mean(0)) / np.sqrt(hidden.var(0) + bn.epsilon) * gamma + beta
    params = normed @ weights[4] + weights[5]
    np.testing.assert_allclose(np.asarray(dist.mean())[:, 0], params[:, 0], rtol=1e-4, atol=1e-5)


def test_save_load_and_inference_data(data, tmp_path):
    x, y = data
    model = _model()
    posterior = probnn.bayes.swag(model, x, y, schedule=probnn.bayes.SWAGSchedule(epochs=3), rank=2, seed=0)
    posterior.save(tmp_path / "swag.npz")
    back = SWAG.load(tmp_path / "swag.npz", model)
    a = probnn.predict_distribution(model, x[:4], posterior=posterior, num_draws=6, seed=2)
    b = probnn.predict_distribution(model, x[:4], posterior=back, num_draws=6, seed=2)
    np.testing.assert_array_equal(a.variance(), b.variance())
    idata = back.to_inference_data(num_draws=12, seed=0)
    assert idata.posterior["hidden_kernel"].shape == (1, 12, 2, 4)
    from_idata = probnn.predict_distribution(model, x[:4], posterior=idata)
    assert from_idata.batch_shape.as_list() == [4]


def test_bad_arguments(data):
    x, y = data
    model = _model()
    with pytest.raises(ValueError, match="SWAGSchedule: epochs must be an integer >= 2"):
        probnn.bayes.SWAGSchedule(epochs=1)
    with pytest.raises(ValueError, match="SWAGSchedule: cyclic must be True or False"):
        probnn.bayes.SWAGSchedule(cyclic="linear")
    with pytest.raises(ValueError, match="SWAGSchedule: learning_rate must be"):
        probnn.bayes.SWAGSchedule(learning_rate=0)
    with pytest.raises(ValueError, match="SWAGSchedule: collect_every must be an integer >= 1"):
        probnn.bayes.SWAGSchedule(collect_every=0)
    with pytest.raises(ValueError, match="SWAGSchedule: burn_in must be an integer >= 0"):
        probnn.bayes.SWAGSchedule(burn_in=-1)
    with pytest.raises(ValueError, match="swag: schedule must be a probnn.bayes.SWAGSchedule"):
        probnn.bayes.swag(model, x, y, schedule="cyclic")
    with pytest.raises(ValueError, match="swag: rank must be an integer >= 1"):
        probnn.bayes.swag(model, x, y, rank=0)


class _RecordSteps(_Record):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= 2:
            super().on_epoch_end(self.epoch)


def test_burn_in_and_collect_every(data):
    """burn_in=2 epochs uncollected, then a snapshot after every step (64 rows, batch 32: 2 per epoch)."""
    x, y = data
    keras.utils.set_random_seed(0)
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    schedule = probnn.bayes.SWAGSchedule(epochs=3, burn_in=2, collect_every=1, learning_rate=0.01)
    posterior = probnn.bayes.swag(model, x, y, schedule=schedule, rank=4, seed=3)
    copy = keras.models.clone_model(model)
    copy.set_weights(before)
    record = _RecordSteps(copy.trainable_variables)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    probnn.fit(
        copy,
        x,
        y,
        epochs=5,
        batch_size=32,
        seed=3,
        verbose=0,
        callbacks=[record],
        optimizer=optimizer,
        steps_per_execution=1,
    )
    snaps = np.stack(record.snapshots)
    assert len(snaps) == 6
    running = np.cumsum(snaps, axis=0) / np.arange(1, 7)[:, None]
    np.testing.assert_allclose(posterior.mean, snaps.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(posterior.variance, snaps.var(0), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(posterior.deviations, (snaps - running)[-4:], rtol=1e-5, atol=1e-7)


def test_diverged_scale_is_an_error(data):
    """A collected mean whose predicted scale overflows: one clear error, not infinite variances."""
    x, _ = data
    model = _model()
    mean = np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables]).astype("float64")
    mean[-1] = 1e30  # the head's raw scale bias
    posterior = SWAG(model, mean=mean, sq_mean=mean**2, deviations=np.zeros((1, mean.size)))
    with pytest.raises(ValueError, match="predict_distribution: the SWAG draws give infinite"):
        probnn.predict_distribution(model, x[:4], posterior=posterior, num_draws=2, seed=0)


@pytest.mark.integration
def test_decoupled_weight_decay_is_a_prior_of_precision_wd_times_one_minus_momentum():
    """The `weight_decay` docstring: Keras's decoupled decay with momentum m ends where
    loss + wd (1 - m) / 2 |w|^2 is smallest (PyTorch's coupled decay: loss + wd / 2 |w|^2)."""
    w = keras.Variable(0.0)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1.0)
    for _ in range(1500):
        optimizer.apply([w - 1.0], [w])  # the gradient of (w - 1)^2 / 2
    np.testing.assert_allclose(float(w.numpy()), 1 / (1 + 1.0 * (1 - 0.9)), rtol=1e-4)
