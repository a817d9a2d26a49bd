"""Distribution heads: Keras 3 layers whose output parameterises a TFP distribution.

Every head's `call` returns one parameter tensor; `head.distribution(params)`
builds the `tfd.Distribution`. See `probnn.heads.base` for the contract.
"""

from probnn.heads.base import DistributionHead, RealEventHead, find_head
from probnn.heads.discrete import BernoulliHead, CategoricalHead, PoissonHead
from probnn.heads.mixture import MixtureNormalHead
from probnn.heads.multivariate_normal import MultivariateNormalHead
from probnn.heads.names import HEAD_NAMES, by_name, check_head_name
from probnn.heads.normal import NormalHead, StudentTHead
from probnn.heads.rbf_mixture import RBFMixtureHead

__all__ = [
    "BernoulliHead",
    "CategoricalHead",
    "DistributionHead",
    "HEAD_NAMES",
    "MixtureNormalHead",
    "MultivariateNormalHead",
    "NormalHead",
    "PoissonHead",
    "RealEventHead",
    "RBFMixtureHead",
    "StudentTHead",
    "by_name",
    "check_head_name",
    "find_head",
]
