import numpy as np
import pytest
import scipy.spatial.distance
from scipy.spatial.distance import cdist, pdist

from probnn.layers import select_centers, typical_distance


@pytest.mark.parametrize("method", ["random", "kmeans++"])
def test_select_centers_returns_distinct_data_points(method, rng):
    x = rng.normal(size=(500, 3)).astype(np.float32)
    c = select_centers(x, 40, method=method, seed=0)
    assert c.shape == (40, 3) and c.dtype == np.float32
    assert cdist(c, x).min(axis=1).max() == 0.0
    assert len(np.unique(c, axis=0)) == 40


def test_kmeanspp_spreads_centres_over_clusters(rng):
    # Five tight, far-apart clusters of very different sizes. Once a cluster has
    # a centre, its points carry squared distances ~0.01 against >= 1250 for the
    # points of the others, so D^2 sampling picks a new cluster with probability
    # > 0.999 at each step; uniform sampling nearly always stays in the big one.
    locs = np.array([[0, 0], [50, 0], [0, 50], [50, 50], [25, 25]], dtype=float)
    sizes = [2000, 10, 10, 10, 10]
    x = np.concatenate([rng.normal(loc, 0.05, size=(k, 2)) for loc, k in zip(locs, sizes)])
    for seed in range(5):
        c = select_centers(x, 5, method="kmeans++", seed=seed)
        assert len(set(cdist(c, locs).argmin(axis=1))) == 5
        c = select_centers(x, 5, method="random", seed=seed)
        assert len(set(cdist(c, locs).argmin(axis=1))) < 5


def test_kmeans_centres_are_near_the_data(rng):
    x = np.concatenate([rng.normal(loc, 1.0, size=(300, 4)) for loc in (-4.0, 4.0)])
    c = select_centers(x, 8, method="kmeans", seed=0)
    nearest = cdist(c, x).min(axis=1)
    assert nearest.max() < np.median(pdist(x))  # the documented meaning of "near"
    assert nearest.max() > 0  # moved off the seeds


def test_select_centers_is_reproducible_and_seed_dependent(rng):
    x = rng.normal(size=(200, 2))
    for method in ("random", "kmeans++", "kmeans"):
        a, b = select_centers(x, 5, method=method, seed=7), select_centers(x, 5, method=method, seed=7)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(select_centers(x, 5, seed=1), select_centers(x, 5, seed=2))


def test_kmeanspp_works_with_fewer_distinct_points_than_centres():
    x = np.repeat(np.eye(3), 10, axis=0)  # 30 rows, 3 distinct points
    c = select_centers(x, 5, method="kmeans++", seed=0)
    assert len(np.unique(c, axis=0)) == 3  # all distinct points used, then duplicates


def test_typical_distance_of_a_gaussian():
    # For two independent N(0, I_2) points the distance is sqrt(2) * Rayleigh(1):
    # median 2 sqrt(ln 2) = 1.6651 (the mean, sqrt(pi) = 1.7725, would fail).
    # Measured spread of the estimate over 20 seeds with 5000 points: 0.010;
    # the tolerance 0.05 is 5 of those.
    x = np.random.default_rng(0).normal(size=(20_000, 2))
    d = typical_distance(x, max_samples=5000, seed=0)
    assert abs(d - 2 * np.sqrt(np.log(2))) < 0.05


def test_typical_distance_within_class_and_one_hot(rng):
    x = np.concatenate([rng.normal(0, 1, size=(300, 2)), rng.normal(100, 1, size=(300, 2))])
    y = np.repeat([0, 1], 300)
    within = typical_distance(x, y, seed=0)
    assert within < 3 < 50 < typical_distance(x, seed=0)
    assert typical_distance(x, np.eye(2)[y], seed=0) == within


def test_typical_distance_uses_a_bounded_subsample(monkeypatch, rng):
    sizes = []

    def spy(a):
        sizes.append(len(a))
        return pdist(a)

    monkeypatch.setattr(scipy.spatial.distance, "pdist", spy)
    x = rng.normal(size=(50_000, 3)).astype(np.float32)
    typical_distance(x, max_samples=300, seed=0)
    assert sizes == [300]
    sizes.clear()
    typical_distance(x, rng.integers(0, 4, size=50_000), max_samples=300, seed=0)
    assert len(sizes) == 4 and sum(sizes) == 300


def test_typical_distance_ignores_duplicates_and_errors():
    x = np.array([[0.0], [0.0], [0.0], [3.0]])
    assert typical_distance(x) == 3.0  # zero distances between duplicates are left out
    with pytest.raises(ValueError, match="two distinct points"):
        typical_distance(np.ones((5, 2)))
    with pytest.raises(ValueError, match="same class"):
        typical_distance(np.arange(4.0)[:, None], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="4 data points but 3 labels"):
        typical_distance(np.arange(4.0)[:, None], [0, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        typical_distance(np.array([[0.0], [np.nan]]))


def test_select_centers_errors():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="at least num_centers=5 data points, got 4"):
        select_centers(x, 5)
    with pytest.raises(ValueError, match="positive integer"):
        select_centers(x, 0)
    with pytest.raises(ValueError, match="num_points, num_features"):
        select_centers(np.zeros(4), 2)
    with pytest.raises(ValueError, match="method must be one of"):
        select_centers(x, 2, method="kmedoids")
