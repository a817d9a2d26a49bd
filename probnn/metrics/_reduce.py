"""The `reduction` argument shared by the per-example metrics."""

import tensorflow as tf

REDUCTIONS = ("mean", "sum", "none")


def reduce(values, reduction, owner):
    """Mean, sum or the values themselves (`reduction` = "mean", "sum" or "none")."""
    if reduction == "mean":
        return tf.reduce_mean(values)
    if reduction == "sum":
        return tf.reduce_sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
