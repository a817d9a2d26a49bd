import logging
import socket

import keras
import numpy as np
import pytest

from probnn.datasets import digits as digits_module
from probnn.datasets import load_digits


def write_fake_mnist(directory, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    np.savez(directory / "mnist.npz", **arrays)
    return arrays


def no_network(*args, **kwargs):
    raise AssertionError("the test tried to download")


def test_sklearn_digits_split():
    data = load_digits("sklearn")
    assert data.source == "sklearn" and data.image_shape == (8, 8)
    assert data.x_train.shape == (1347, 64) and data.x_test.shape == (450, 64)
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # Stratified: every class has the same share (to one image) in train and test.
    train_counts, test_counts = np.bincount(data.y_train), np.bincount(data.y_test)
    np.testing.assert_allclose(train_counts / 1347, test_counts / 450, atol=1.5 / 450)
    again = load_digits("sklearn")
    np.testing.assert_array_equal(data.x_test, again.x_test)  # fixed split


def test_cached_mnist_is_used_without_download(tmp_path, monkeypatch, caplog):
    arrays = write_fake_mnist(tmp_path)
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with caplog.at_level(logging.INFO, logger="probnn.datasets.digits"):
        data = load_digits("auto", cache_dir=tmp_path)
    assert data.source == "mnist" and data.image_shape == (28, 28)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)
    assert data.x_train.dtype == np.float32
    np.testing.assert_allclose(data.x_train, arrays["x_train"].reshape(20, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert "local cache" in caplog.text and "using mnist" in caplog.text
    assert load_digits("mnist", cache_dir=tmp_path, download=False).source == "mnist"


def test_offline_falls_back_to_sklearn_with_a_logged_warning(tmp_path, monkeypatch, caplog, capsys):
    seen = {}

    def offline(**kwargs):
        seen["timeout"] = socket.getdefaulttimeout()
        seen["kwargs"] = kwargs
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with caplog.at_level(logging.INFO, logger="probnn.datasets.digits"):
        data = load_digits("auto", cache_dir=tmp_path, timeout=3.0)
    assert data.source == "sklearn"
    assert seen["timeout"] == 3.0  # the download attempt ran under the short timeout...
    assert socket.getdefaulttimeout() is None  # ...which is restored afterwards
    assert seen["kwargs"]["file_hash"] == digits_module.MNIST_SHA256
    assert seen["kwargs"]["origin"] == digits_module.MNIST_URL
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "scikit-learn digits" in warnings[0].getMessage()
    assert capsys.readouterr().out == ""  # logged, not printed


def test_no_download_when_disabled_and_mnist_required(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    assert load_digits("auto", cache_dir=tmp_path, download=False).source == "sklearn"
    with pytest.raises(RuntimeError, match="MNIST is not available.*download=False"):
        load_digits("mnist", cache_dir=tmp_path, download=False)


def test_corrupt_cache_falls_back(tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"not an npz file")
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    assert load_digits("auto", cache_dir=tmp_path).source == "sklearn"


def test_bad_source():
    with pytest.raises(ValueError, match="source must be one of"):
        load_digits("cifar")
