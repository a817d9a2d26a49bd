"""An Ensemble trained on a tf.data.Dataset with the default loss: the same as on arrays.

Reproducer of a bug found in the training refactor: the target check dropped
a member axis that the dataset's targets did not have, and refused (batch, 1)
targets of a Normal head ("targets has shape (16, 1), but NormalHead expects
targets of shape (rows,) + (1,)").
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn


def _build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), probnn.heads.NormalHead()])


def _ensemble():
    keras.utils.set_random_seed(0)
    return probnn.Ensemble(_build, members=3)


@pytest.mark.integration
def test_ensemble_on_a_dataset_trains_as_on_arrays(rng):
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, :1] + 0.1 * rng.normal(size=(64, 1))).astype("float32")
    on_arrays = _ensemble()
    probnn.fit(on_arrays, x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    on_dataset = _ensemble()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    history = probnn.fit(on_dataset, dataset, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # The same rows in the same order: only the programs differ (float32 rounding, ~1e-7).
    for got, want in zip(on_dataset.get_weights(), on_arrays.get_weights()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_ensemble_dataset_targets_are_per_row(rng):
    """As with arrays, targets are (batch,) + event, broadcast to the members; a member axis is refused."""
    import pytest

    x = rng.normal(size=(32, 3)).astype("float32")
    per_member = np.repeat(x[:, None, :1], 3, axis=1)  # (rows, members, 1)
    with pytest.raises(ValueError, match=r"targets has shape \(8, 3, 1\), but NormalHead expects"):
        probnn.fit(_ensemble(), tf.data.Dataset.from_tensor_slices((x, per_member)).batch(8), epochs=1)
