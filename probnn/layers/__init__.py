"""Keras 3 layers: radial basis functions, learnable scaling, statistics."""

from probnn.layers.prototypes import select_centers, typical_distance  # noqa: E402
from probnn.layers.rbf import RBF, squared_distances  # noqa: E402
from probnn.layers.scaling import CenteringScaling, Scaling  # noqa: E402
from probnn.layers.stats import GaussianFit, Moments, TTest  # noqa: E402
