"""Order statistics along the last axis: a sorting network for short samples, `tf.sort` otherwise.

XLA's CPU sort calls a comparator per element pair and is slow (on 100,000
rows of 50 values it is 4x slower than NumPy's partition-based median). For
a short sample of static length n <= `NETWORK_MAX` the values are instead
ordered by Batcher's odd-even merge sort network: a fixed list of
compare-exchange steps between wires, each one elementwise over the whole
batch (vectorised and fused by XLA). Only the comparators that can reach the
requested ranks are kept (a median of 50 needs 330 of the 403).

Each compare-exchange is a `tf.minimum` / `tf.maximum` pair (XLA fuses the
whole network into one loop). Their own gradients would send a tie's
gradient twice to the same input, so the network carries no gradient; the
gradient of each returned order statistic is supplied directly: it goes to
the element equal to it, split evenly among ties (the sort's sub-gradient,
and the exact gradient of a smooth symmetric function such as a median whose
middle values tie).

Called eagerly on a large input, the network runs as one XLA-compiled
function (cached per length and ranks, compiled per shape); on a small one
its ops run one by one; inside a `tf.function` they join the caller's graph.
A NaN anywhere in a sample makes every order statistic of that sample NaN
(numpy's median does the same).
"""

import functools

import numpy as np
import tensorflow as tf

NETWORK_MAX = 64  # longer samples use tf.sort (the network grows as n log(n)**2)
# Eagerly, inputs this large run the network as one XLA function (compiled once per shape);
# smaller ones run its ops one by one, which is faster than compiling for each new shape.
COMPILE_MIN_ELEMENTS = 1 << 16


@functools.cache
def batcher_network(n):
    """Comparators `(i, j)`, i < j, of Batcher's odd-even merge sort on n wires.

    Built for the next power of two; comparators touching the padding wires
    (which would hold +inf) never swap and are dropped.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple((a, b) for a, b in pairs if b < n)


@functools.cache
def pruned_network(n, ranks):
    """The comparators of `batcher_network(n)` that can affect the wires in `ranks`."""
    needed, kept = set(ranks), []
    for a, b in reversed(batcher_network(n)):
        if a in needed or b in needed:
            kept.append((a, b))
            needed.update((a, b))
    return tuple(reversed(kept))


def _run_network(x_first, n, ranks):
    """The order statistics `ranks` of `x_first` (samples along axis 0), as a tuple.

    A tuple, not a stacked tensor: XLA fuses the network into each consumer's
    loop, and a concatenating consumer makes it re-evaluate the network's
    shared subexpressions exponentially often (measured: 20 s instead of
    0.03 s for 100,000 medians). Callers combine the outputs elementwise.
    """
    wires = list(tf.unstack(x_first, num=n, axis=0))
    for a, b in pruned_network(n, ranks):
        wires[a], wires[b] = tf.minimum(wires[a], wires[b]), tf.maximum(wires[a], wires[b])
    return tuple(wires[r] for r in ranks)


def _network_values(x_last, n, ranks):
    """The network's order statistics of `x_last` (no gradient), NaN for samples with a NaN."""
    perm = [x_last.shape.rank - 1] + list(range(x_last.shape.rank - 1))
    values = _run_network(tf.transpose(x_last, perm), n, ranks)
    has_nan = tf.reduce_any(tf.math.is_nan(x_last), axis=-1)
    nan = tf.constant(np.nan, x_last.dtype)
    return tuple(tf.where(has_nan, nan, v) for v in values)


@functools.cache
def _compiled_network(n, ranks):
    return tf.function(lambda x: _network_values(x, n, ranks), jit_compile=True, autograph=False)


def _ranked(x_last, values):
    """Identity on `values` (order statistics of `x_last`), with the sort's gradient.

    The gradient of each order statistic goes to the element of `x_last`
    equal to it, split evenly among tied elements: the average over every
    order the ties could be sorted in, which is the exact gradient of any
    smooth symmetric function of the order statistics (e.g. a median whose
    two middle values tie).
    """

    @tf.custom_gradient
    def identity(x_last, *values):
        def grad(*upstream):
            total = tf.zeros_like(x_last)
            for u, v in zip(upstream, values):
                matches = tf.cast(tf.equal(x_last, v[..., None]), x_last.dtype)
                total += u[..., None] * matches / tf.reduce_sum(matches, axis=-1, keepdims=True)
            return (total,) + tuple(tf.zeros_like(v) for v in values)

        return tuple(tf.identity(v) for v in values), grad

    return identity(x_last, *values)


def order_statistics(x_last, ranks):
    """The order statistics of static 0-based `ranks` along the last axis, as a tuple.

    Each element has the shape of `x_last` without its last axis. Combine
    them elementwise (see `_run_network` for why they are not stacked). A
    NaN in a sample makes its order statistics NaN.
    """
    n = x_last.shape[-1]
    ranks = tuple(int(r) for r in ranks)
    if n is None or n > NETWORK_MAX:
        sorted_last = tf.sort(x_last, axis=-1)
        has_nan = tf.reduce_any(tf.math.is_nan(x_last), axis=-1)
        nan = tf.constant(np.nan, x_last.dtype)
        return tuple(tf.where(has_nan, nan, sorted_last[..., r]) for r in ranks)
    data = tf.stop_gradient(x_last)
    if tf.executing_eagerly() and (x_last.shape.num_elements() or 0) >= COMPILE_MIN_ELEMENTS:
        values = _compiled_network(n, ranks)(data)
    else:
        values = _network_values(data, n, ranks)
    return _ranked(x_last, tuple(values))
