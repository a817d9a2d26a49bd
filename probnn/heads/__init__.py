"""Distribution heads: Keras 3 layers whose output parameterises a TFP distribution.

Every head's `call` returns one parameter tensor; `head.distribution(params)`
builds the `tfd.Distribution`. See `probnn.heads.base` for the contract.
"""

from probnn.heads.base import DistributionHead, RealEventHead, find_head
from probnn.heads.counts import NegativeBinomialHead, ZeroInflatedPoissonHead
from probnn.heads.discrete import BernoulliHead, CategoricalHead, PoissonHead
from probnn.heads.duq import DUQHead
from probnn.heads.evidential import EvidentialHead
from probnn.heads.flow import FlowHead
from probnn.heads.mixture import MixtureNormalHead
from probnn.heads.multivariate_normal import MultivariateNormalHead
from probnn.heads.names import HEAD_NAMES, by_name, check_head_name
from probnn.heads.normal import NormalHead, StudentTHead
from probnn.heads.positive import BetaHead, CensoredNormalHead, GammaHead, LogNormalHead
from probnn.heads.quantile import QuantileHead
from probnn.heads.rbf_mixture import RBFMixtureHead

__all__ = [
    "BernoulliHead",
    "BetaHead",
    "CategoricalHead",
    "CensoredNormalHead",
    "DUQHead",
    "DistributionHead",
    "EvidentialHead",
    "FlowHead",
    "GammaHead",
    "LogNormalHead",
    "HEAD_NAMES",
    "MixtureNormalHead",
    "MultivariateNormalHead",
    "NegativeBinomialHead",
    "NormalHead",
    "PoissonHead",
    "QuantileHead",
    "RealEventHead",
    "RBFMixtureHead",
    "StudentTHead",
    "ZeroInflatedPoissonHead",
    "by_name",
    "check_head_name",
    "find_head",
]
