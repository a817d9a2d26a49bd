"""Toy data generators with a known data-generating distribution."""

import numpy as np


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
    if int(n) != n or n < 1:
        raise ValueError(f"heteroscedastic_cubic: n must be a positive integer, got {n!r}")
    if not low < high:
        raise ValueError(f"heteroscedastic_cubic: need low < high, got low={low}, high={high}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(int(n), 1))
    y = x**3 + cubic_noise_scale(x) * rng.standard_normal(size=x.shape)
    return x.astype(dtype), y.astype(dtype)
