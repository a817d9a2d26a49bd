"""Data loaders and toy data generators."""

from probnn.datasets.digits import DigitsData, load_digits
from probnn.datasets.toy import cubic_noise_scale, heteroscedastic_cubic

__all__ = ["DigitsData", "cubic_noise_scale", "heteroscedastic_cubic", "load_digits"]
