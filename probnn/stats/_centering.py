"""Deviations from the mean that survive large offsets and extreme magnitudes.

Every second- and higher-order statistic in `probnn.stats` is computed from
the deviations this module returns, never from raw squares:

1. **Shift by a sample value.** The first value along the axis, `c`, is
   subtracted first. For data sitting on a large common offset (NIST's
   1e12 + 0.1 sets) `a - c` is exact (Sterbenz), so the mean of the shifted
   data, and every deviation from it, keeps all its digits; the naive mean
   of the raw values is off by about `n * eps * |offset|`, which is
   larger than the spread. Any sample value is within `sqrt(n)` standard
   deviations of the mean, so the shift never makes things worse (Chan,
   Golub and LeVeque, "Algorithms for computing the sample variance", 1983).
2. **Rescale by the largest magnitude.** The shifted values are divided by
   `s`, the power of two just below `max|a - c|`, so they lie in (-2, 2):
   their squares, cubes and fourth powers neither overflow (values ~1e200)
   nor underflow (values ~1e-90). Dividing by a power of two is exact, so
   scaling the data by `2**k` scales every result exactly.
3. **Two passes.** The mean of the scaled values, then the deviations from
   it; both passes fuse into one loop under XLA.

`c` and `s` are wrapped in `tf.stop_gradient`: every formula below is an
identity in `c` and `s` (the result is the same for any shift and scale), so
treating them as constants leaves the gradient exact, and avoids sending a
mathematically-zero gradient through the first sample value and the max.
"""

import numpy as np
import tensorflow as tf

_EXPONENT_MASK = {tf.float64: (tf.int64, 0x7FF0000000000000), tf.float32: (tf.int32, 0x7F800000)}


def power_of_two_scale(magnitude):
    """The power of two in `(magnitude / 2, magnitude]`, or 1 where `magnitude` is 0, inf or nan.

    Computed by masking the exponent bits (exact, XLA-friendly). Subnormal
    magnitudes get the smallest normal number (dividing by it is still exact).
    The result carries no gradient.
    """
    magnitude = tf.stop_gradient(magnitude)
    dtype = magnitude.dtype
    int_dtype, mask = _EXPONENT_MASK[dtype]
    bits = tf.bitwise.bitwise_and(tf.bitcast(magnitude, int_dtype), tf.constant(mask, int_dtype))
    scale = tf.bitcast(bits, dtype)
    scale = tf.maximum(scale, tf.constant(np.finfo(dtype.as_numpy_dtype).tiny, dtype))
    usable = tf.logical_and(tf.math.is_finite(magnitude), magnitude > 0)
    return tf.where(usable, scale, tf.ones_like(scale))


def first_value(a, axis):
    """The first value of `a` along `axis` (kept, length 1), as a gradient-free shift.

    0 where that value is not finite (an inf shift would turn every value into
    nan) and when the axis is empty.
    """
    if a.shape[axis] == 0:
        return tf.zeros_like(tf.reduce_sum(a, axis=axis, keepdims=True))
    c = tf.stop_gradient(tf.gather(a, [0], axis=axis))
    return tf.where(tf.math.is_finite(c), c, tf.zeros_like(c))


def rescale(values, axis, shift=None):
    """`[(v - shift) / s for v in values]` and `(shift, s)`, with one common shift and scale.

    `shift` defaults to the first value of `values[0]` along `axis`; pass it
    to shift by a given point (e.g. `moment`'s `center`, which then keeps its
    gradient). `s` is the power of two just below the largest `|v - shift|`
    over all the values (per batch element, kept dims), so every scaled value
    lies in (-2, 2). The values must broadcast against each other except
    along `axis`.
    """
    if shift is None:
        shift = first_value(values[0], axis)
    shifted = [v - shift for v in values]
    largest = [tf.reduce_max(tf.abs(v), axis=axis, keepdims=True) for v in shifted]
    largest = (
        largest[0]
        if len(largest) == 1
        else tf.reduce_max(
            tf.stack(
                [
                    tf.broadcast_to(m, tf.broadcast_dynamic_shape(tf.shape(largest[0]), tf.shape(m)))
                    for m in largest
                ]
            ),
            axis=0,
        )
    )
    s = power_of_two_scale(largest)
    return [v / s for v in shifted], shift, s


def centered(a, axis):
    """`(mean, d, s)`: the mean of `a` along `axis` (kept dims), and `d = (a - mean) / s`.

    `s` (kept dims, no gradient) is a power of two with every `|d| < 4`; the
    central moment of order k is `s**k * mean(d**k)`, and scale-invariant
    statistics (skewness, kurtosis, z-scores, t, F, r) use `d` directly.
    """
    (z,), c, s = rescale([a], axis)
    mz = tf.reduce_mean(z, axis=axis, keepdims=True)
    return c + s * mz, z - mz, s


def hypot(a, b):
    """`sqrt(a**2 + b**2)` without overflow or underflow of the squares."""
    m = power_of_two_scale(tf.maximum(tf.abs(a), tf.abs(b)))
    return m * tf.sqrt((a / m) ** 2 + (b / m) ** 2)
