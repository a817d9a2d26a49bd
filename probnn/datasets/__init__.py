"""Data loaders and toy data generators."""

from probnn.datasets.toy import cubic_noise_scale, heteroscedastic_cubic

__all__ = ["cubic_noise_scale", "heteroscedastic_cubic"]
