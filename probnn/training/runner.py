"""What `probnn.fit` needs from a runner (`Runner`), and which runner a `fit` gets (`make_runner`).

A runner owns the compiled training programs of one `fit` and runs epochs of
`train_step` (`step.py`) with them. `fit` only calls `run_epoch` and reads
`steps`; it never asks which runner it has.
"""

from typing import Protocol

from probnn.training.fused import FusedRunner
from probnn.training.streaming import StreamRunner


class Runner(Protocol):
    """The runner protocol: what `fit` uses of a runner.

    Attributes:
        steps: the number of steps of an epoch, or None when it is not known
            before the first epoch (a dataset of unknown cardinality). `fit`
            reads it once, after the runner is made (the callbacks' `steps`).
    """

    steps: int | None

    def run_epoch(self, epoch, seed, shuffle, chunk, before, after):
        """Runs epoch `epoch` (0-based); returns `(totals, bad_step)`.

        `seed` and `shuffle` are `fit`'s (the shuffle of an epoch is a
        function of `(seed, epoch)`); the steps run in compiled calls of up to
        `chunk` steps each. Around each call the runner calls `before(begin)`
        and `after(begin, end, totals)` (steps `[begin, end)`, `totals` so
        far); `after` returning True ends the epoch after that call.

        `totals` is the sum over the epoch's steps of the steps' sums (a
        float64 vector, see `step.epoch_logs`). `bad_step` is None, or the
        1-based number of the step whose objective or gradient was not finite
        (its update was not applied and the epoch stopped there).
        """
        ...


def make_runner(model, optimizer, objective, data, args, seed):
    """The runner of one `fit`: the fused runner for in-memory data on one device, else the streaming runner.

    `data` is `fit`'s `data.FitData`, `args` its checked `data.Arguments`,
    `seed` the seed of its shuffles. Under a strategy, `jit_compile="auto"`
    means no XLA.
    """
    if data.arrays is not None and args.strategy is None:
        return FusedRunner(model, optimizer, objective, data.arrays, args.batch_size, args.jit_compile, seed)
    jit = args.jit_compile
    if args.strategy is not None:
        jit = False if jit == "auto" else jit
    source = data.dataset if data.dataset is not None else data.arrays
    return StreamRunner(model, optimizer, objective, source, args.strategy, jit, args.batch_size)
