"""Toy data generators with a known data-generating distribution."""

import numpy as np

from probnn._validation import positive_int


def cubic_noise_scale(x):
    """Standard deviation of the noise in `heteroscedastic_cubic` at inputs `x`.

    sigma(x) = 0.3 + 0.4 x^2: 0.3 at the centre, 1.9 at the edges of [-2, 2].

    Example:
    >>> round(float(cubic_noise_scale(np.array([0.0, 2.0]))[1]), 6)
    1.9
    """
    x = np.asarray(x, dtype=np.float64)
    return 0.3 + 0.4 * x**2


def heteroscedastic_cubic(n, *, seed=None, low=-2.0, high=2.0, dtype="float32"):
    """Draw `n` points of y = x^3 + sigma(x) * eps, x ~ U(low, high), eps ~ N(0, 1).

    The noise scale sigma(x) is `cubic_noise_scale(x)`, so the true predictive
    distribution is Normal(x^3, sigma(x)): models can be checked against it.

    Args:
        n: number of points, a positive integer.
        seed: seed for NumPy's random generator.
        low, high: the interval x is drawn from (low < high).
        dtype: dtype of the returned arrays.

    Returns:
        `(x, y)`, each of shape `(n, 1)`.

    Example:
    >>> x, y = heteroscedastic_cubic(100, seed=0)
    >>> x.shape, y.shape
    ((100, 1), (100, 1))
    """
    n = positive_int("heteroscedastic_cubic", "n", n, whole_floats=True)
    if not low < high:
        raise ValueError(f"heteroscedastic_cubic: need low < high, got low={low}, high={high}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(int(n), 1))
    y = x**3 + cubic_noise_scale(x) * rng.standard_normal(size=x.shape)
    return x.astype(dtype), y.astype(dtype)


def two_moons(n, *, noise=0.1, seed=None, dtype="float32"):
    """Draw `n` points of two interleaving half circles, labelled 0 and 1 (scikit-learn's `make_moons`).

    Class 0 lies on the upper half circle of radius 1 around (0, 0), class 1
    on the lower one around (1, 0.5); `noise` is the standard deviation of
    Gaussian noise added to each coordinate. The classic check of
    distance-aware classifiers: all data lie in [-1.5, 2.5] x [-1, 1.5].

    Args:
        n: number of points (>= 2), split as evenly as possible between the classes.
        noise: non-negative noise standard deviation.
        seed: seed for NumPy's random generator.
        dtype: dtype of the inputs.

    Returns:
        `(x, y)`: inputs `(n, 2)` and integer labels `(n,)`.

    Example:
    >>> x, y = two_moons(100, seed=0)
    >>> x.shape, int(y.sum())
    ((100, 2), 50)
    """
    if int(n) != n or n < 2:
        raise ValueError(f"two_moons: n must be an integer >= 2, got {n!r}")
    if not float(noise) >= 0:
        raise ValueError(f"two_moons: noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    n_out = int(n) // 2
    n_in = int(n) - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.r_[np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)]]
    x = x + noise * rng.standard_normal(size=x.shape)
    y = np.r_[np.zeros(n_out, int), np.ones(n_in, int)]
    order = rng.permutation(int(n))
    return x[order].astype(dtype), y[order]
