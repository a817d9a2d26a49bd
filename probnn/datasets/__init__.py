"""Data loaders and toy data generators."""
