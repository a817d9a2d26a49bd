"""Distances between two 1-D empirical distributions, batched, as differentiable TF ops.

Both distances integrate a function of the difference of the two empirical
CDFs over the pooled sorted values, as scipy's `_cdf_distance` does: with
`deltas` the gaps between consecutive pooled values, the Wasserstein-1
distance is `sum(|F_u - F_v| * deltas)` and the energy distance
`sqrt(2 * sum((F_u - F_v)**2 * deltas))`. Values are sorted (gradient flows to
the sorted values, a sub-gradient where they tie); the CDFs are cumulative sums
of the (normalised) weights in sorted order, so no `searchsorted` is needed
and the whole computation compiles with XLA.

scipy's functions take 1-D samples only; here `axis` (default 0, like the rest
of `probnn.stats`) selects the sample axis and the other dimensions are a
batch. The two samples may differ in length along `axis`.
"""

import tensorflow as tf

from probnn.stats import _centering, _common


def _weights(weights, values, axis):
    """Weights shaped like (already flattened, if axis is None) values; ones if None."""
    if weights is None:
        return tf.ones_like(values)
    if axis is None:
        weights = tf.reshape(weights, [-1])
    return tf.broadcast_to(weights, tf.shape(values))


def _cdf_differences(fname, u_values, v_values, u_weights, v_weights, axis):
    """Pooled sorted gaps and the CDF difference on each gap, samples on the last axis."""
    values = [u_values, v_values]
    weights = [w for w in (u_weights, v_weights) if w is not None]
    converted = _common.to_floats(*(values + weights))
    u, v = converted[:2]
    ndim = _common.rank(fname, u)
    if _common.rank(fname, v) != ndim:
        raise ValueError(f"{fname}: u_values and v_values must have the same rank.")
    u, ax = _common.check_axis(fname, u, axis)
    v, _ = _common.check_axis(fname, v, axis)
    given = iter(converted[2:])
    uw = _weights(next(given) if u_weights is not None else None, u, axis)
    vw = _weights(next(given) if v_weights is not None else None, v, axis)
    u, v, uw, vw = (_common.moveaxis_last(t, ax) for t in (u, v, uw, vw))
    if u.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"{fname}: u_values and v_values must have the same shape except along axis "
            f"{axis}; got {u.shape.as_list()} and {v.shape.as_list()} (axis moved last)."
        )
    if u.shape[-1] == 0 or v.shape[-1] == 0:
        raise ValueError(f"{fname}: distribution can't be empty.")
    uw = uw / tf.reduce_sum(uw, axis=-1, keepdims=True)
    vw = vw / tf.reduce_sum(vw, axis=-1, keepdims=True)
    pooled = tf.concat([u, v], axis=-1)
    u_mass = tf.concat([uw, tf.zeros_like(vw)], axis=-1)
    v_mass = tf.concat([tf.zeros_like(uw), vw], axis=-1)
    order = tf.argsort(pooled, axis=-1, stable=True)
    batch_dims = pooled.shape.rank - 1
    sorted_values = tf.gather(pooled, order, axis=-1, batch_dims=batch_dims)
    # At a tie the CDF before the last tied value is incomplete, but the gap
    # after it is zero, so it does not contribute.
    u_cdf = tf.cumsum(tf.gather(u_mass, order, axis=-1, batch_dims=batch_dims), axis=-1)
    v_cdf = tf.cumsum(tf.gather(v_mass, order, axis=-1, batch_dims=batch_dims), axis=-1)
    deltas = sorted_values[..., 1:] - sorted_values[..., :-1]
    return deltas, u_cdf[..., :-1] - v_cdf[..., :-1]


def wasserstein_distance(u_values, v_values, u_weights=None, v_weights=None, *, axis=0):
    """First Wasserstein distance between two 1-D distributions, like `scipy.stats.wasserstein_distance`.

    Args:
        u_values, v_values: samples along `axis` (lengths may differ); the
            other dimensions are a batch and must match.
        u_weights, v_weights: optional non-negative weights shaped like the
            values (default: equal weights).
        axis: the sample axis (scipy's inputs are 1-D); None flattens both.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> round(float(wasserstein_distance([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])), 6)
    5.0
    """
    deltas, diff = _cdf_differences("wasserstein_distance", u_values, v_values, u_weights, v_weights, axis)
    return tf.reduce_sum(tf.abs(diff) * deltas, axis=-1)


def energy_distance(u_values, v_values, u_weights=None, v_weights=None, *, axis=0):
    """Energy distance between two 1-D distributions, like `scipy.stats.energy_distance`.

    `sqrt(2) * (integral of (F_u - F_v)**2)**(1/2)`. Its gradient is infinite
    where the distance is 0 (identical samples), as for any square root.

    Args:
        u_values, v_values: samples along `axis` (lengths may differ); the
            other dimensions are a batch and must match.
        u_weights, v_weights: optional non-negative weights shaped like the values.
        axis: the sample axis (scipy's inputs are 1-D); None flattens both.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> round(float(energy_distance([0.0, 8.0], [0.0, 8.0, 3.0])), 6)
    0.666667
    """
    deltas, diff = _cdf_differences("energy_distance", u_values, v_values, u_weights, v_weights, axis)
    # sqrt(m) * sqrt(2 * sum(diff**2 * deltas / m)) with m a power of two near
    # the largest gap: neither the sum nor its double over- or underflows.
    m = _centering.power_of_two_scale(tf.reduce_max(deltas, axis=-1, keepdims=True))
    scaled = tf.reduce_sum(diff * diff * (deltas / m), axis=-1)
    return tf.sqrt(tf.squeeze(m, -1)) * tf.sqrt(2.0 * scaled)
