"""Data-driven starting points for prototype layers (RBF centres and widths).

Plain NumPy/SciPy functions, so any layer or head can call them from its
`adapt` method. Both work on a bounded random subsample where the cost would
otherwise grow with the data set, so memory stays bounded on large data.
"""

import numpy as np

from probnn._validation import finite_array, positive_int

# SciPy is imported inside the functions: `import probnn` stays light.

_METHODS = ("random", "kmeans++", "kmeans")


def _as_points(x, who):
    """`x` as a finite floating (N, n) array; raise ValueError naming `who` otherwise."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.ndim != 2:
        raise ValueError(f"{who}: expected data of shape (num_points, num_features), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{who}: expected non-empty data, got shape {x.shape}")
    finite_array(who, "data", x, dtype=None)
    return x


def _subsample(x, max_samples, rng, y=None):
    if x.shape[0] <= max_samples:
        return x, y
    idx = np.sort(rng.choice(x.shape[0], size=max_samples, replace=False))
    return x[idx], (None if y is None else y[idx])


def _kmeanspp_seeds(x, num_centers, rng):
    """Indices of `num_centers` rows of `x` picked by k-means++ D^2 sampling."""
    n_points = x.shape[0]
    chosen = np.empty(num_centers, dtype=np.int64)
    chosen[0] = rng.integers(n_points)
    d2 = np.sum((x - x[chosen[0]]) ** 2, axis=1, dtype=np.float64)
    taken = np.zeros(n_points, dtype=bool)
    taken[chosen[0]] = True
    for k in range(1, num_centers):
        total = d2.sum()
        if total > 0:
            i = rng.choice(n_points, p=d2 / total)
        else:  # every point coincides with a chosen centre: pick an unused row
            i = rng.choice(np.flatnonzero(~taken))
        chosen[k] = i
        taken[i] = True
        np.minimum(d2, np.sum((x - x[i]) ** 2, axis=1, dtype=np.float64), out=d2)
    return chosen


def select_centers(x, num_centers, *, method="random", seed=None, max_samples=10_000, iterations=10):
    """Pick `num_centers` prototype centres from the data.

    Methods:
    - `"random"`: distinct rows of `x` drawn uniformly without replacement.
      Every centre *is* a data point.
    - `"kmeans++"`: k-means++ seeding (Arthur and Vassilvitskii, 2007): the
      first centre is a random row, each next one a row drawn with probability
      proportional to its squared distance to the nearest centre so far. Every
      centre *is* a data point, and the centres are spread over the data.
    - `"kmeans"`: k-means++ seeding followed by `iterations` Lloyd iterations
      (`scipy.cluster.vq.kmeans2`). Each centre is the mean of the points of its
      cluster, so it lies *near* the data: inside the convex hull of its
      cluster, closer to its nearest data point than the typical
      (median) distance between two data points.

    k-means++ and k-means run on a random subsample of at most `max_samples`
    rows (cost O(max_samples * num_centers * n)); `"random"` uses all rows.

    Args:
        x: data, array of shape `(num_points, n)`.
        num_centers: number of centres, 1 <= num_centers <= num_points.
        method: `"random"`, `"kmeans++"` or `"kmeans"`.
        seed: anything `numpy.random.default_rng` accepts.
        max_samples: size of the subsample for `"kmeans++"` and `"kmeans"`.
        iterations: Lloyd iterations for `"kmeans"`.

    Returns:
        A float array of shape `(num_centers, n)` with the dtype of `x`.

    Example:
    >>> x = np.random.default_rng(0).normal(size=(100, 3))
    >>> select_centers(x, 5, method="kmeans++", seed=0).shape
    (5, 3)
    """
    who = "select_centers"
    x = _as_points(x, who)
    num_centers = positive_int(who, "num_centers", num_centers, whole_floats=True)
    if method not in _METHODS:
        raise ValueError(f"{who}: method must be one of {_METHODS}, got {method!r}")
    if x.shape[0] < num_centers:
        raise ValueError(f"{who}: need at least num_centers={num_centers} data points, got {x.shape[0]}")
    rng = np.random.default_rng(seed)
    if method == "random":
        return x[rng.choice(x.shape[0], size=num_centers, replace=False)].copy()
    sub, _ = _subsample(x, max(int(max_samples), num_centers), rng)
    seeds = sub[_kmeanspp_seeds(sub, num_centers, rng)]
    if method == "kmeans++":
        return seeds.copy()
    from scipy.cluster.vq import kmeans2

    centers, _ = kmeans2(
        sub.astype(np.float64), seeds.astype(np.float64), iter=int(iterations), minit="matrix", missing="warn"
    )
    return centers.astype(x.dtype)


def _as_labels(y, n_points, who):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot or probabilities
        y = np.argmax(y, axis=1)
    y = y.reshape(-1)
    if y.shape[0] != n_points:
        raise ValueError(f"{who}: got {n_points} data points but {y.shape[0]} labels")
    return y


def typical_distance(x, y=None, *, max_samples=2_000, seed=None):
    """Median Euclidean distance between two data points (within a class if labelled).

    Computed with `scipy.spatial.distance.pdist` on a random subsample of at
    most `max_samples` rows, so memory stays below `max_samples**2 * 4` bytes
    (16 MB by default) however large the data set. Zero distances (duplicate
    points) are left out so the result is positive.

    Args:
        x: data, array of shape `(num_points, n)`.
        y: optional labels, shape `(num_points,)` (or one-hot `(num_points, k)`).
            With labels, only pairs of points of the same class count.
        max_samples: size of the random subsample (at least 2).
        seed: anything `numpy.random.default_rng` accepts.

    Returns:
        The median pairwise distance, a positive Python float.

    Example:
    >>> x = np.random.default_rng(0).normal(size=(500, 2))
    >>> 1.5 < typical_distance(x, seed=0) < 2.0  # sqrt(2) * median of a chi(2)
    True
    """
    from scipy.spatial.distance import pdist

    who = "typical_distance"
    x = _as_points(x, who)
    if int(max_samples) != max_samples or max_samples < 2:
        raise ValueError(f"{who}: max_samples must be an integer >= 2, got {max_samples!r}")
    if y is not None:
        y = _as_labels(y, x.shape[0], who)
    rng = np.random.default_rng(seed)
    sub, sub_y = _subsample(x, int(max_samples), rng, y)
    sub = sub.astype(np.float64)
    if sub_y is None:
        d = pdist(sub) if sub.shape[0] >= 2 else np.empty(0)
    else:
        parts = [pdist(sub[sub_y == c]) for c in np.unique(sub_y) if np.sum(sub_y == c) >= 2]
        d = np.concatenate(parts) if parts else np.empty(0)
    d = d[d > 0]
    if d.size == 0:
        what = "two distinct points of the same class" if y is not None else "two distinct points"
        raise ValueError(f"{who}: need at least {what} in the (sub)sample to measure a distance")
    return float(np.median(d))
