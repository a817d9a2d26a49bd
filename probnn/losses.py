"""Likelihood losses built from distribution heads."""
