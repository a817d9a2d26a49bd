"""Handwritten digits: MNIST when available, scikit-learn's bundled digits otherwise."""

import logging
import os
import socket
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
# The hash keras.datasets.mnist.load_data checks the download against.
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_FILENAME = "mnist.npz"
_SOURCES = ("auto", "mnist", "sklearn")


class DigitsData(NamedTuple):
    """Train/test split of a digits data set: flattened float32 images in [0, 1], int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "mnist" or "sklearn": the data actually loaded
    image_shape: tuple  # (28, 28) for MNIST, (8, 8) for the scikit-learn digits


def default_cache_dir():
    """Where Keras caches MNIST: `$KERAS_HOME/datasets`, by default `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _load_mnist_file(path):
    with np.load(path, allow_pickle=False) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    image_shape = tuple(x_train.shape[1:])
    if len(image_shape) != 2 or x_test.shape[1:] != image_shape:
        raise ValueError(
            f"{path}: expected images of shape (N, H, W), got {x_train.shape} and {x_test.shape}"
        )

    def flat(x):
        return (x.reshape(x.shape[0], -1).astype(np.float32) / 255.0).clip(0.0, 1.0)

    return DigitsData(
        flat(x_train), y_train.astype(np.int64), flat(x_test), y_test.astype(np.int64), "mnist", image_shape
    )


def _download_mnist(cache_dir, timeout):
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # urllib's download reads honour the default socket timeout
    try:
        return keras.utils.get_file(
            fname=MNIST_FILENAME,
            origin=MNIST_URL,
            file_hash=MNIST_SHA256,
            cache_dir=cache_dir,
            cache_subdir=os.path.abspath(cache_dir),
        )
    finally:
        socket.setdefaulttimeout(previous)


def _load_mnist(cache_dir, download, timeout):
    path = os.path.join(cache_dir, MNIST_FILENAME)
    if os.path.exists(path):
        logger.info("Loading MNIST from the local cache %s", path)
    elif download:
        logger.info(
            "MNIST is not cached in %s; downloading %s (timeout %.0f s)", cache_dir, MNIST_URL, timeout
        )
        os.makedirs(cache_dir, exist_ok=True)
        path = _download_mnist(cache_dir, timeout)
    else:
        raise FileNotFoundError(f"MNIST is not cached at {path} and download=False")
    return _load_mnist_file(path)


def _load_sklearn_digits(test_size, seed):
    try:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The scikit-learn digits data set needs scikit-learn: pip install 'probnn[data]'"
        ) from err
    bunch = sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return DigitsData(x_train, y_train, x_test, y_test, "sklearn", (8, 8))


def load_digits(source="auto", *, cache_dir=None, download=True, timeout=10.0, test_size=0.25, seed=0):
    """Load handwritten digits as flattened float32 images in [0, 1] with integer labels.

    Sources:
    - `"mnist"`: MNIST (60 000 train / 10 000 test images of 28x28). Read from
      `cache_dir/mnist.npz` when present, else downloaded there with
      `keras.utils.get_file` (the same URL and SHA-256 as
      `keras.datasets.mnist.load_data`) unless `download=False`. Socket
      operations of the download time out after `timeout` seconds.
    - `"sklearn"`: the 1 797 8x8 digits bundled with scikit-learn (no
      download), split into train and test by a fixed stratified split.
    - `"auto"`: MNIST if it is cached or can be downloaded, otherwise
      scikit-learn's digits. The source actually used is logged (logger
      `probnn.datasets.digits`) and returned in `source`.

    Args:
        source: `"auto"`, `"mnist"` or `"sklearn"`.
        cache_dir: directory holding `mnist.npz`; default `default_cache_dir()`
            (the Keras cache, `~/.keras/datasets`).
        download: whether MNIST may be downloaded when it is not cached.
        timeout: socket timeout in seconds for the download.
        test_size: fraction of the scikit-learn digits held out for testing.
        seed: random state of the scikit-learn split.

    Returns:
        A `DigitsData` named tuple `(x_train, y_train, x_test, y_test, source, image_shape)`.

    Example:
    >>> data = load_digits("sklearn")
    >>> data.source, data.x_train.shape, data.x_test.shape
    ('sklearn', (1347, 64), (450, 64))
    """
    if source not in _SOURCES:
        raise ValueError(f"load_digits: source must be one of {_SOURCES}, got {source!r}")
    if source == "sklearn":
        data = _load_sklearn_digits(test_size, seed)
    else:
        cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            data = _load_mnist(cache_dir, download, timeout)
        except Exception as err:
            if source == "mnist":
                raise RuntimeError(f"load_digits: MNIST is not available: {err}") from err
            logger.warning(
                "MNIST is not available (%s: %s); using the scikit-learn digits data set instead",
                type(err).__name__,
                err,
            )
            data = _load_sklearn_digits(test_size, seed)
    logger.info(
        "load_digits: using %s (%d train / %d test images of %s pixels)",
        data.source,
        len(data.x_train),
        len(data.x_test),
        "x".join(map(str, data.image_shape)),
    )
    return data
