"""Keras 3 layers: radial basis functions, learnable scaling, statistics, MC dropout, variational layers, SNGP."""

from probnn.layers.dropout import MCDropout
from probnn.layers.gaussian_process import CovarianceReset, RandomFeatureGaussianProcess
from probnn.layers.priors import NormalPrior, ScaleMixturePrior
from probnn.layers.prototypes import select_centers, typical_distance
from probnn.layers.rbf import RBF, squared_distances
from probnn.layers.scaling import CenteringScaling, Scaling
from probnn.layers.stats import GaussianFit, Moments, TTest
from probnn.layers.variational import (
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    DenseFlipout,
    DenseReparameterization,
)

__all__ = [
    "RBF",
    "CenteringScaling",
    "Conv1DFlipout",
    "Conv1DReparameterization",
    "Conv2DFlipout",
    "Conv2DReparameterization",
    "CovarianceReset",
    "DenseFlipout",
    "DenseReparameterization",
    "GaussianFit",
    "MCDropout",
    "Moments",
    "NormalPrior",
    "RandomFeatureGaussianProcess",
    "ScaleMixturePrior",
    "Scaling",
    "TTest",
    "select_centers",
    "squared_distances",
    "typical_distance",
]
