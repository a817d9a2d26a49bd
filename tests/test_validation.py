"""probnn._validation: each check's one-line message names the owner, the argument, what was wrong and the value."""

import numpy as np
import pytest

from probnn import _validation as v


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: v.positive_int("fit", "epochs", 0), "fit: epochs must be a positive integer, got 0"),
        (lambda: v.positive_int("fit", "epochs", True), "fit: epochs must be a positive integer, got True"),
        (lambda: v.positive_int("fit", "epochs", 2.0), "fit: epochs must be a positive integer, got 2.0"),
        (lambda: v.positive_int("fit", "epochs", None), "fit: epochs must be a positive integer, got None"),
        (
            lambda: v.positive_int("refit", "epochs", -1, allow_none=True),
            "refit: epochs must be a positive integer or None, got -1",
        ),
        (
            lambda: v.positive_int("RBF", "units", 2.5, whole_floats=True),
            "RBF: units must be a positive integer, got 2.5",
        ),
        (
            lambda: v.int_at_least("FlowHead", "num_bins", 1, 2),
            "FlowHead: num_bins must be an integer >= 2, got 1",
        ),
        (lambda: v.int_at_least("fit", "patience", "3", 0), "fit: patience must be an integer >= 0, got '3'"),
        (lambda: v.positive_number("RBF", "width", 0), "RBF: width must be a positive number, got 0"),
        (
            lambda: v.positive_number("RBF", "width", float("nan")),
            "RBF: width must be a positive number, got nan",
        ),
        (lambda: v.positive_number("RBF", "width", "1"), "RBF: width must be a positive number, got '1'"),
        (lambda: v.positive_number("RBF", "width", True), "RBF: width must be a positive number, got True"),
        (
            lambda: v.finite_number("Head", "lower", float("-inf")),
            "Head: lower must be a finite number, got -inf",
        ),
        (lambda: v.probability("coverage", "level", 0.0), r"coverage: level must be in \(0, 1\), got 0.0"),
        (lambda: v.probability("coverage", "level", None), r"coverage: level must be in \(0, 1\), got None"),
        (
            lambda: v.finite_array("auroc", "scores", [0.1, np.nan, np.inf, 1.0]),
            r"auroc: scores must be finite, found 2 NaN or infinite value\(s\)",
        ),
        (
            lambda: v.same_length("plot", {"x": [1, 2, 3], "mean": [1, 2, 3], "lower": [1]}),
            "plot: x, mean and lower must have the same length, got 3, 3 and 1",
        ),
    ],
)
def test_each_check_raises_one_line_naming_owner_argument_and_value(call, message):
    with pytest.raises(ValueError, match=f"^{message}$") as info:
        call()
    assert "\n" not in str(info.value)


def test_checks_return_the_converted_value():
    assert v.positive_int("f", "n", np.int64(3)) == 3 and type(v.positive_int("f", "n", np.int64(3))) is int
    assert v.positive_int("f", "n", 4.0, whole_floats=True) == 4
    assert v.int_at_least("f", "n", 0, 0) == 0
    assert v.positive_number("f", "x", np.float32(0.5)) == 0.5
    assert v.positive_number("f", "x", np.array(2.0)) == 2.0  # a 0-d array, as Keras configs may give
    assert v.finite_number("f", "x", -3) == -3.0
    assert v.probability("f", "p", np.float64(0.25)) == 0.25
    assert v.finite_array("f", "a", [1, 2]).dtype == np.float64
    assert v.finite_array("f", "a", np.ones(2, np.float32), dtype=None).dtype == np.float32
    assert v.same_length("f", {"a": [1, 2], "b": np.zeros(2)}) == 2
    assert str(v.error("owner", "what went wrong")) == "owner: what went wrong"
