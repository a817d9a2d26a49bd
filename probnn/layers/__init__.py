"""Keras 3 layers: radial basis functions, learnable scaling, statistics, MC dropout, variational layers, SNGP."""

from probnn.layers.prototypes import select_centers, typical_distance  # noqa: E402
from probnn.layers.rbf import RBF, squared_distances  # noqa: E402
from probnn.layers.scaling import CenteringScaling, Scaling  # noqa: E402
from probnn.layers.stats import GaussianFit, Moments, TTest  # noqa: E402
from probnn.layers.dropout import MCDropout  # noqa: E402
from probnn.layers.gaussian_process import CovarianceReset, RandomFeatureGaussianProcess  # noqa: E402
from probnn.layers.priors import NormalPrior, ScaleMixturePrior  # noqa: E402
from probnn.layers.variational import (  # noqa: E402
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    DenseFlipout,
    DenseReparameterization,
)
