"""The fused runner: in-memory data, one XLA call per epoch (or per K steps).

See docs/design.md (Training) for the design: device-resident arrays, a
per-epoch permutation from `(seed, epoch)`, the smaller last batch as a second
program with its own static shape, row counts rounded up to buckets so that
one compiled program serves many `fit` calls, and ensembles (`probnn_members`).
"""

import math

import numpy as np
import tensorflow as tf

from probnn.training.batching import bucket, gather_member_rows, member_major, padded, signature
from probnn.training.compiled import Compiled, cached_program, last_batch_jit
from probnn.training.step import StepBatch, train_step


def _epoch_order(n, total, seed, epoch, shuffle, members, bootstrap):
    """Row order of one epoch, padded with its own first rows to `total` entries.

    Plain models: shape `(total,)`, the permutation of `(seed, epoch)`.
    Ensembles: shape `(total, members)`, column m the permutation of
    `(seed, epoch, m)` of member m's rows (its bootstrap resample, if any), or
    of `(seed[m], epoch)`, a plain model's, when `seed` is a tuple of M seeds.
    """
    columns = []
    for m in range(members or 1):
        rows = bootstrap[m] if bootstrap is not None else np.arange(n)
        if shuffle:
            if isinstance(seed, tuple):  # one seed per member: each shuffles as a plain model
                key = [int(seed[m]), int(epoch)]
            else:
                key = [int(seed), int(epoch)] if members is None else [int(seed), int(epoch), m]
            rows = rows[np.random.default_rng(key).permutation(n)]
        if total > n:
            rows = np.concatenate([rows, np.resize(rows, total - n)])
        columns.append(rows)
    order = columns[0] if members is None else np.stack(columns, axis=1)
    return order.astype(np.int32)


def _bootstrap_rows(n, seed, members):
    """Each member's bootstrap resample of the rows, drawn once from `(seed, member)`."""
    seeds = seed if isinstance(seed, tuple) else [seed] * members
    return [np.random.default_rng([int(seeds[m]), m]).integers(0, n, n) for m in range(members)]


class FusedRunner:
    """In-memory data on one device: an epoch (or K steps) per compiled call.

    A runner (see `runner.Runner`). The compiled program depends only on the
    model, optimizer, loss, batch size, the bucketed row count and the shapes
    and dtypes of the data; it is cached on the model, so another `fit` call
    with other values, epochs or seed reuses it without tracing or compiling
    again. The smaller last batch (`n mod batch_size` rows) is a second cached
    program of one step.
    """

    def __init__(self, model, optimizer, objective, data, batch_size, jit_compile, seed):
        self.n = data.n
        self.members = objective.members
        self.bootstrap = (
            _bootstrap_rows(self.n, seed, self.members)
            if objective.members and getattr(model, "probnn_bootstrap", False)
            else None
        )
        rows = bucket(self.n)
        self.batch_size = min(batch_size, rows)
        self.full = self.n // self.batch_size  # full batches
        self.rest = self.n - self.full * self.batch_size  # rows of the smaller last batch
        self.steps = self.full + (self.rest > 0)
        self.total_steps = math.ceil(rows / self.batch_size)
        self.member_wise = data.member_wise
        if self.member_wise:  # member-major (M, rows, ...): member m gathers from its own slice
            self.x, self.y, self.w = (member_major(a, rows) for a in (data.x, data.y, data.weights))
        else:
            self.x, self.y, self.w = (padded(a, rows) for a in (data.x, data.y, data.weights))

        def program(batch, steps, jit):
            key = (
                "fused",
                optimizer,
                objective.key,
                batch,
                steps,
                signature(self.x),
                signature(self.y),
                signature(self.w),
                jit,
                self.member_wise,
                tuple(id(v) for v in model.trainable_variables),
            )
            member_wise = self.member_wise
            return cached_program(
                model, key, lambda: _fused_program(model, optimizer, objective, batch, jit, member_wise)
            )

        self._run = program(self.batch_size, self.total_steps, jit_compile)
        # The smaller last batch runs as its own program with its own static
        # shape, as in model.fit: batch-dependent layers (BatchNormalization's
        # statistics, activity regularisers' per-batch means, dropout masks)
        # see only its real rows, never padding.
        self._run_rest = program(self.rest, 1, last_batch_jit(jit_compile)) if self.rest else None
        self.rest_n = tf.constant(self.rest, tf.int32)
        self._true, self._zero, self._one = (
            tf.constant(True),
            tf.constant(0, tf.int32),
            tf.constant(1, tf.int32),
        )

    def run_epoch(self, epoch, seed, shuffle, chunk, before, after):
        """Runs one epoch; returns `(totals, bad_step or None)`.

        `before(begin)` and `after(begin, end, totals)` are called around each
        compiled call (steps `[begin, end)`; the full batches and the last,
        smaller one are two programs but one call for the hooks); `after`
        returning True ends the epoch early.
        """
        total = self.total_steps * self.batch_size
        order = _epoch_order(self.n, total, seed, epoch, shuffle, self.members, self.bootstrap)
        cut = self.full * self.batch_size
        rest_order = tf.constant(order[cut : self.n].reshape((1, self.rest) + order.shape[1:]))
        order = tf.constant(order.reshape((self.total_steps, self.batch_size) + order.shape[1:]))
        n = tf.constant(self.n, tf.int32)
        totals = None
        start = 0
        while start < self.steps:
            stop = min(start + chunk, self.steps)
            before(start)
            parts, ok = [], self._true
            if start < self.full:
                out, ok = self._run(
                    self.x,
                    self.y,
                    self.w,
                    order,
                    n,
                    ok,
                    tf.constant(start, tf.int32),
                    tf.constant(min(stop, self.full), tf.int32),
                )
                parts.append((0, out))
            if stop > self.full:
                # Launched without waiting for the loop: it runs only if the loop's
                # steps were all finite (`ok` stays on the device).
                out, ok = self._run_rest(
                    self.x, self.y, self.w, rest_order, self.rest_n, ok, self._zero, self._one
                )
                parts.append((self.full, out))
            for offset, out in parts:
                out = out.numpy()
                i, ok, part = int(out[0]) + offset, bool(out[1]), out[2:]
                totals = part if totals is None else totals + part
                if not ok:
                    # The program stopped right after the bad step, whose 0-based
                    # index is i - 1: its 1-based number is i.
                    return totals, i
            if after(start, stop, totals):
                break
            start = stop
        return totals, None


def _fused_program(model, optimizer, objective, batch_size, jit_compile, member_wise=False):
    """The compiled loop over steps `[start, stop)` of an epoch's `order` (batches of `batch_size` rows).

    `member_wise`: the data are member-major `(M, rows, ...)` and member m's
    rows of a step come from its own slice (`gather_member_rows`).
    """
    gather = gather_member_rows if member_wise else tf.gather

    def run(x_all, y_all, w_all, order, n, ok, start, stop):
        def body(i, ok, sums):
            rows = tf.gather(order, i)  # static shape (B,) or (B, M)
            mask = tf.cast(tf.range(batch_size) + i * batch_size < n, tf.float32)
            weights = mask[:, None]
            if w_all is not None:
                weights = weights * tf.reshape(gather(w_all, rows), (batch_size, -1))
            batch = StepBatch(
                tf.nest.map_structure(lambda t: gather(t, rows), x_all),
                gather(y_all, rows),
                weights,
                tf.reduce_sum(mask),
            )
            step, finite = train_step(model, optimizer, objective, batch)
            return i + 1, finite, sums + step

        # float64 sums: exact for long epochs.
        sums = tf.zeros([2 + 2 * (objective.members or 1)], tf.float64)
        # `ok` False (an earlier program of the epoch hit a non-finite step): no step runs.
        i, ok, sums = tf.while_loop(lambda i, ok, sums: tf.logical_and(i < stop, ok), body, (start, ok, sums))
        # One tensor, so the host reads the results with a single transfer; `ok`
        # also separately, to chain the next program on the device.
        return tf.concat([[tf.cast(i, tf.float64), tf.cast(ok, tf.float64)], sums], axis=0), ok

    return Compiled(run, jit_compile, "training loop")
