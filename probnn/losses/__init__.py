"""Losses built from distribution heads: likelihood, CRPS, pinball and evidential.

Each loss reads `y_pred` as the parameters a head emitted and keeps a
weightless copy of the head (`HeadLoss`), so compiled models save and load.
"""

from probnn.losses.crps import CRPS
from probnn.losses.evidential import EvidentialLoss
from probnn.losses.head_loss import HeadLoss
from probnn.losses.likelihood import NegativeLogLikelihood
from probnn.losses.pinball import Pinball

__all__ = ["CRPS", "EvidentialLoss", "HeadLoss", "NegativeLogLikelihood", "Pinball"]
