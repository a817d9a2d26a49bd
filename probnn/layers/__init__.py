"""Keras 3 layers: radial basis functions, learnable scaling, statistics."""

from probnn.layers.stats import GaussianFit, Moments, TTest  # noqa: F401
