"""Heads by name: the names the `probnn fit` command and `probnn.sklearn` take.

| name | head |
| --- | --- |
| `"normal"` | `NormalHead()` |
| `"studentt"` | `StudentTHead()` |
| `"mixture"` | `MixtureNormalHead(num_components=3)` |
| `"rbf-mixture"` | `RBFMixtureHead(num_components=5)` (adapt its prototypes to the features) |
"""

from probnn.heads.mixture import MixtureNormalHead
from probnn.heads.normal import NormalHead, StudentTHead
from probnn.heads.rbf_mixture import RBFMixtureHead

HEAD_NAMES = ("normal", "studentt", "mixture", "rbf-mixture")

_DEFAULTS = {
    "normal": (NormalHead, {}),
    "studentt": (StudentTHead, {}),
    "mixture": (MixtureNormalHead, {"num_components": 3}),
    "rbf-mixture": (RBFMixtureHead, {"num_components": 5}),
}


def check_head_name(name, owner="probnn.heads.by_name"):
    """Return `name` if it names a head in `HEAD_NAMES`, else raise one clear ValueError."""
    if not isinstance(name, str) or name not in _DEFAULTS:
        raise ValueError(f"{owner}: head must be one of {', '.join(map(repr, HEAD_NAMES))}, got {name!r}")
    return name


def by_name(name, **kwargs):
    """A new head of the kind `name` (one of `HEAD_NAMES`), with the defaults of `probnn fit`.

    Args:
        name: "normal", "studentt", "mixture" (3 Normal components) or
            "rbf-mixture" (5 components gated by RBF prototypes).
        **kwargs: head arguments, overriding the defaults (`event_size`,
            `num_components`, `kernel_initializer`, ...).

    Returns:
        A `probnn.heads.DistributionHead` layer.

    Example:
    >>> import probnn
    >>> head = probnn.heads.by_name("mixture")
    >>> type(head).__name__, head.num_components, head.params_size
    ('MixtureNormalHead', 3, 9)
    """
    cls, defaults = _DEFAULTS[check_head_name(name)]
    return cls(**{**defaults, **kwargs})
