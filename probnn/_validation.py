"""The small argument checks probnn repeats: counts, positive and finite numbers, probabilities, arrays.

Every check names where it happened (`owner`, e.g. "fit" or "NormalHead") and
what (`name`), and raises a `ValueError` with one line that says what was
wrong and what it got, e.g. "fit: epochs must be a positive integer, got 0".
A check returns the value converted (an `int`, a `float`, an array), so the
caller keeps what was checked. Light to import: numpy only.

Example:
>>> positive_int("fit", "epochs", 3)
3
>>> positive_int("fit", "epochs", 0)
Traceback (most recent call last):
...
ValueError: fit: epochs must be a positive integer, got 0
"""

import math
import numbers

import numpy as np


def error(owner, message):
    """The `ValueError` "owner: message" (to raise); the one helper behind every check here.

    Example:
    >>> error("predict_distribution", "x is empty")
    ValueError('predict_distribution: x is empty')
    """
    return ValueError(f"{owner}: {message}")


def _whole(value, whole_floats):
    """True for an integer (not a bool); with `whole_floats`, also for a float with no fraction (3.0)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    number = _real(value) if whole_floats else None
    return number is not None and number.is_integer()


def _real(value):
    """`value` as a float if it is a real number (numpy and 0-d tensor scalars too); None for a bool, text or else."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def positive_int(owner, name, value, *, allow_none=False, whole_floats=False):
    """`value` as an `int` >= 1 (None passes with `allow_none`); else "... must be a positive integer".

    Booleans are refused; floats too unless `whole_floats` (then 3.0 is 3).

    Example:
    >>> positive_int("Ensemble", "members", 5), positive_int("refit", "epochs", None, allow_none=True)
    (5, None)
    >>> positive_int("refit", "epochs", 2.5, allow_none=True)
    Traceback (most recent call last):
    ...
    ValueError: refit: epochs must be a positive integer or None, got 2.5
    """
    if value is None and allow_none:
        return None
    if not _whole(value, whole_floats) or int(value) < 1:
        alternative = " or None" if allow_none else ""
        raise error(owner, f"{name} must be a positive integer{alternative}, got {value!r}")
    return int(value)


def int_at_least(owner, name, value, minimum, *, whole_floats=False):
    """`value` as an `int` >= `minimum`; else "... must be an integer >= minimum".

    Example:
    >>> int_at_least("CRPS", "num_samples", 8, 2)
    8
    >>> int_at_least("FlowHead", "num_bins", 1, 2)
    Traceback (most recent call last):
    ...
    ValueError: FlowHead: num_bins must be an integer >= 2, got 1
    """
    if not _whole(value, whole_floats) or int(value) < minimum:
        raise error(owner, f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_number(owner, name, value):
    """`value` as a finite `float` > 0; else "... must be a positive number".

    Any real number is accepted (int, float, numpy or 0-d tensor scalars),
    not a bool or a string.

    Example:
    >>> positive_number("RBF", "width", 2)
    2.0
    >>> positive_number("RBF", "width", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: RBF: width must be a positive number, got inf
    """
    number = _real(value)
    if number is None or not 0 < number < math.inf:
        raise error(owner, f"{name} must be a positive number, got {value!r}")
    return number


def finite_number(owner, name, value):
    """`value` as a finite `float`; else "... must be a finite number".

    Example:
    >>> finite_number("CensoredNormalHead", "lower", -1)
    -1.0
    >>> finite_number("CensoredNormalHead", "lower", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: CensoredNormalHead: lower must be a finite number, got nan
    """
    number = _real(value)
    if number is None or not math.isfinite(number):
        raise error(owner, f"{name} must be a finite number, got {value!r}")
    return number


def probability(owner, name, value):
    """`value` as a `float` strictly between 0 and 1; else "... must be in (0, 1)".

    Example:
    >>> probability("coverage", "level", 0.9)
    0.9
    >>> probability("coverage", "level", 1)
    Traceback (most recent call last):
    ...
    ValueError: coverage: level must be in (0, 1), got 1
    """
    number = _real(value)
    if number is None or not 0.0 < number < 1.0:
        raise error(owner, f"{name} must be in (0, 1), got {value!r}")
    return number


def finite_array(owner, name, values, dtype=np.float64):
    """`values` as a numpy array of `dtype`; "... must be finite, found k NaN or infinite value(s)" if not.

    Example:
    >>> finite_array("select_centers", "data", [[1.0, 2.0]]).shape
    (1, 2)
    >>> finite_array("NormalHead.adapt", "targets", [1.0, float("nan"), float("inf")])
    Traceback (most recent call last):
    ...
    ValueError: NormalHead.adapt: targets must be finite, found 2 NaN or infinite value(s)
    """
    array = np.asarray(values, dtype=dtype)
    finite = np.isfinite(array)
    if not np.all(finite):
        bad = int(finite.size - np.count_nonzero(finite))
        raise error(owner, f"{name} must be finite, found {bad} NaN or infinite value(s)")
    return array


def same_length(owner, arrays):
    """Check that the named 1-D arrays (a dict name -> array) have one length; else "... must have the same length".

    Example:
    >>> same_length("plot", {"x": [1, 2], "mean": [0, 0]})
    2
    >>> same_length("plot", {"x": [1, 2], "mean": [0]})
    Traceback (most recent call last):
    ...
    ValueError: plot: x and mean must have the same length, got 2 and 1
    """
    lengths = [np.size(a) for a in arrays.values()]
    if len(set(lengths)) > 1:
        names = list(arrays)
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        got = ", ".join(map(str, lengths[:-1])) + f" and {lengths[-1]}"
        raise error(owner, f"{listed} must have the same length, got {got}")
    return lengths[0] if lengths else 0
