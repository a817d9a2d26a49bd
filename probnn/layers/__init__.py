"""Keras 3 layers: radial basis functions, learnable scaling, statistics."""
