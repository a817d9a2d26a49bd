"""Time and peak memory of `RBF(m)` against the naive broadcast RBF and `Dense(m)`.

Run from the repository root:

    python benchmarks/rbf_layer.py            # n=784, m=2048, batches 64..4096
    python benchmarks/rbf_layer.py --quick    # smaller, for a smoke test

All three are timed in the same process, interleaved round by round, as
`tf.function`s on float32 inputs, once in graph mode and once compiled with XLA
(`jit_compile=True`, `model.fit`'s default on TensorFlow with a GPU; Keras
uses graph mode on CPU-only machines); the
tables give medians and the ratios to Dense. Peak memory is the increase of the peak resident set size
(VmHWM, reset before the pass) over a warmed-up baseline, measured in a fresh subprocess per
(implementation, batch size). The naive version materialises a
(batch, n, m) tensor (4 * batch * n * m bytes: 26 GB at 4096 x 784 x 2048),
so it only runs at the batch sizes where that fits (`--naive-max-batch`).
Writes `benchmarks/results/rbf_layer.md`.
"""

import argparse
import json
import subprocess
import sys
import time

import _common

IMPLEMENTATIONS = ("rbf", "naive", "dense")


def build(impl, n, m):
    """A callable x -> (batch, m) and its trainable variables."""
    import keras
    import tensorflow as tf

    from probnn.layers import RBF

    if impl == "dense":
        layer = keras.layers.Dense(m, activation="relu")
        layer.build((None, n))
        return layer, layer.trainable_variables
    layer = RBF(m, centers_initializer=keras.initializers.RandomUniform(0.0, 1.0), width=8.0)
    layer.build((None, n))
    if impl == "rbf":
        return layer, layer.trainable_variables

    def naive(x):  # the common tutorial version: a (batch, n, m) difference tensor
        diff = x[:, :, None] - tf.transpose(layer.centers)[None]
        d2 = tf.reduce_sum(tf.square(diff), axis=1)
        return layer.output_weights * tf.exp(-d2 * tf.exp(-2.0 * layer.log_width))

    return naive, layer.trainable_variables


def memory_probe(impl, batch, n, m):
    """Peak RSS increase (bytes) of one forward pass, in this (fresh) process."""
    import numpy as np
    import tensorflow as tf

    def status_bytes(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    f, _ = build(impl, n, m)
    f = tf.function(f)
    x = np.random.default_rng(0).random((batch, n), dtype=np.float32)
    f(x[:2])  # warm-up: kernels, thread pools
    f(tf.constant(x[:2]))
    xt = tf.constant(x)
    # The peak RSS (VmHWM, ru_maxrss) starts at the parent's RSS, kept across fork + exec:
    # reset it to the current RSS (Linux >= 4.0) so it measures this pass only.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base = status_bytes("VmRSS")
    y = f(xt)
    float(tf.reduce_sum(y))
    return status_bytes("VmHWM") - base


def make_train_step(f, variables):
    import tensorflow as tf

    def train_step(x):  # closes over the variables: passed as arguments they would become tensors
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(f(x)))
        return tape.gradient(loss, variables)

    return train_step


def time_all(batches, n, m, naive_max_batch, repeats, jit):
    import numpy as np
    import tensorflow as tf

    rows = []
    for batch in batches:
        x = tf.constant(np.random.default_rng(0).random((batch, n), dtype=np.float32))
        impls = [i for i in IMPLEMENTATIONS if i != "naive" or batch <= naive_max_batch]
        fwd, step = {}, {}
        for impl in impls:
            f, variables = build(impl, n, m)
            fwd[impl] = tf.function(f, jit_compile=jit)
            if impl != "naive":
                step[impl] = tf.function(make_train_step(f, variables), jit_compile=jit)
        times = {(kind, impl): [] for impl in impls for kind in ("fwd", "step")}
        for fns in (fwd, step):
            for fn in fns.values():  # trace and warm up
                fn(x)
                fn(x)
        for _ in range(repeats):  # interleaved rounds: the load of the machine hits all alike
            for fn_kind, fns in (("fwd", fwd), ("step", step)):
                for impl, fn in fns.items():
                    start = time.perf_counter()
                    out = fn(x)
                    float(tf.reduce_sum(tf.nest.flatten(out)[0]))  # wait for the result
                    times[(fn_kind, impl)].append(time.perf_counter() - start)
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items() if v}
        rows.append((batch, med))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=784)
    parser.add_argument("--m", type=int, default=2048)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--naive-max-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="n=64, m=256, batches 64 256, 3 repeats")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--memory-probe", nargs=4, metavar=("IMPL", "BATCH", "N", "M"), help=argparse.SUPPRESS
    )
    parser.add_argument("--output", default="rbf_layer.md")
    args = parser.parse_args(argv)
    if args.memory_probe:
        impl, batch, n, m = args.memory_probe
        print(json.dumps({"extra_bytes": memory_probe(impl, int(batch), int(n), int(m))}))
        return
    if args.quick:
        args.n, args.m, args.batches, args.repeats = 64, 256, [64, 256], 3

    n, m = args.n, args.m
    memory = {}
    if not args.no_memory:
        for batch in args.batches:
            for impl in IMPLEMENTATIONS:
                if impl == "naive" and batch > args.naive_max_batch:
                    continue
                out = subprocess.run(
                    [sys.executable, __file__, "--memory-probe", impl, str(batch), str(n), str(m)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                memory[(impl, batch)] = json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"] / 2**20
    sections, summary = [], []
    modes = (
        (False, "graph mode (`tf.function`)"),
        (
            True,
            "XLA (`tf.function(jit_compile=True)`: `model.fit`'s default on TensorFlow with a GPU; "
            "on CPU-only machines Keras trains in graph mode)",
        ),
    )
    for jit, title in modes:
        rows = time_all(args.batches, n, m, args.naive_max_batch, args.repeats, jit)
        table = [timing_row(batch, med, memory if not jit else {}, n, m) for batch, med in rows]
        header = [
            "batch",
            "RBF fwd ms",
            "Dense fwd ms",
            "naive fwd ms",
            "RBF/Dense fwd",
            "naive/RBF fwd",
            "RBF step ms",
            "Dense step ms",
            "RBF/Dense step",
        ]
        if not jit:
            header += ["RBF peak MiB", "Dense peak MiB", "naive peak MiB", "naive tensor MiB"]
        worst_step = max(med[("step", "rbf")] / med[("step", "dense")] for _, med in rows)
        worst_fwd = max(med[("fwd", "rbf")] / med[("fwd", "dense")] for _, med in rows)
        sections += [f"## {title}", "", _common.markdown_table(header, table), ""]
        summary.append(
            f"- {title.split(' (')[0]}: worst RBF/Dense time ratio over the batch sizes: forward "
            f"{worst_fwd:.2f}x, training step {worst_step:.2f}x."
        )
    text = "\n".join(
        [
            f"# RBF({m}) vs naive broadcast RBF vs Dense({m}, relu), n = {n} inputs",
            "",
            *_common.machine_description(),
            "- **The machine was shared with other TensorFlow jobs while this ran: timings are noisy.** "
            "The three implementations are interleaved round by round, so ratios are fairer than absolute times.",
            "",
            f"Command: `python benchmarks/rbf_layer.py {' '.join(sys.argv[1:])}`. Median of {args.repeats} "
            "rounds, float32. *fwd* = forward pass; *step* = forward + gradient of "
            "a mean-squared loss w.r.t. the layer's variables. *Peak MiB* = increase of the peak resident "
            "set size over a warmed-up baseline for one graph-mode forward pass, in a fresh process. "
            f"*naive tensor MiB* = size of the (batch, {n}, {m}) float32 difference tensor the naive version "
            f"needs; it runs only up to batch {args.naive_max_batch} (beyond that it needs several GB: "
            f"{4 * 4096 * n * m / 1e9:.1f} GB at batch 4096).",
            "",
            "Target: RBF within 2x of Dense's time.",
            "",
            *summary,
            "",
            *sections,
            "RBF memory grows with batch x m (the (batch, m) distance matrix and its exp), the naive "
            "version's with batch x n x m.",
            "",
        ]
    )
    _common.write_result(args.output, text)


def timing_row(batch, med, memory, n, m):
    def cell(value, fmt):
        return "—" if value is None else fmt.format(value)

    dense_f, dense_s = med[("fwd", "dense")], med[("step", "dense")]
    rbf_f, rbf_s = med[("fwd", "rbf")], med[("step", "rbf")]
    naive_f = med.get(("fwd", "naive"))
    row = [
        batch,
        f"{rbf_f:.2f}",
        f"{dense_f:.2f}",
        cell(naive_f, "{:.2f}"),
        f"**{rbf_f / dense_f:.2f}**",
        cell(None if naive_f is None else naive_f / rbf_f, "{:.1f}"),
        f"{rbf_s:.2f}",
        f"{dense_s:.2f}",
        f"**{rbf_s / dense_s:.2f}**",
    ]
    if memory:
        row += [cell(memory.get((i, batch)), "{:.0f}") for i in ("rbf", "dense", "naive")]
        row.append(f"{4 * batch * n * m / 2**20:.0f}")
    return row


if __name__ == "__main__":
    main()
