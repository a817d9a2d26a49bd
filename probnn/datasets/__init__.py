"""Data loaders and toy data generators."""

from probnn.datasets.digits import DigitsData, load_digits
from probnn.datasets.toy import cubic_noise_scale, heteroscedastic_cubic, two_moons
from probnn.datasets.uci import UCI_DATASETS, UCISplit, available_uci_datasets, load_uci, uci_num_splits

__all__ = [
    "DigitsData",
    "UCISplit",
    "UCI_DATASETS",
    "available_uci_datasets",
    "cubic_noise_scale",
    "heteroscedastic_cubic",
    "load_digits",
    "load_uci",
    "two_moons",
    "uci_num_splits",
]
