"""Training throughput: probnn.fit vs Keras 3 model.fit vs tf_keras + tfp.layers.

Part 1, what a user waits for (each job in a FRESH process, imports and data
creation excluded, median of interleaved runs), probnn.fit vs tf_keras +
tfp.layers:

  - warm: a 1-epoch fit, then a timed 5-epoch fit of the same model on the
    same data (steps/s of the timed fit), target >= 5x;
  - cold 50: from building the model to the end of a 50-epoch fit, target >= 4x;
  - cold 5: the same with 5 epochs, target >= 1.5x;
  - probnn's second-call overhead: wall time of a repeated 1-epoch fit minus
    its compiled call (argument checks, data transfer, cache look-up, callbacks).
  - cold 5 with XLA's persistent compilation cache
    (TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=...), filled by one
    earlier process: what a re-started CLI or notebook pays;
  - cold 5 with `jit_compile=False` (plain graphs, no XLA compilation): the
    choice for a one-off fit of a few hundred steps.

Part 2, steady state: the same 16 -> 64 -> 64 -> Normal MLP (Adam 1e-3, batch 256, 20,000 rows,
79 steps per epoch) is trained by

  (a) `probnn.fit` (whole epoch fused in one XLA while_loop),
  (b) Keras 3 `model.fit` with `probnn.losses.NegativeLogLikelihood` (Keras
      defaults: jit_compile="auto", steps_per_execution=1),
  (c) `tf_keras` with `tfp.layers.IndependentNormal` (tf_keras defaults),

each arm in its own subprocess so the two Keras stacks never share a process.
The first epoch (tracing / compilation) is excluded; steps/s is steps per
epoch divided by the MEDIAN wall time of the remaining epochs (robust to the
other jobs sharing the machine preempting single epochs), and the median over
interleaved runs is reported.  Every arm trains the same number of epochs, then
reports the training-set NLL of its final weights (they should agree within
run-to-run noise).  A second table measures the per-epoch overhead of
probnn.fit's optional work (validation, progress bar, checkpoints, chunked
execution), so the fast path stays fast.

Usage:  python benchmarks/train_throughput.py [--quick] [--epochs 11] [--repeats 3]
                                              [--part1-repeats 5]
                                              [--one-core] [--intra-op-threads N]

`--quick` runs part 1 once per job and skips part 2 (about 3 minutes on an
idle 2-core machine).

On a small CPU shared with other jobs, XLA's small matmuls split over the
intra-op thread pool wait on preempted threads; `--intra-op-threads 1` (the
same for every arm) shows the loop without that effect.
Writes benchmarks/results/train_throughput.md and prints the same markdown.
"""

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from _common import write_result

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
N_ROWS, N_FEATURES, BATCH, WIDTH = 20_000, 16, 256, 64
STEPS_PER_EPOCH = -(-N_ROWS // BATCH)


def make_data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, N_FEATURES)).astype("float32")
    w = rng.normal(size=(N_FEATURES, 1)).astype("float32") / 4
    mean = np.sin(x @ w) + 0.1 * (x[:, :1] ** 2)
    scale = 0.2 + 0.5 * np.abs(x[:, 1:2])
    y = (mean + scale * rng.normal(size=(N_ROWS, 1))).astype("float32")
    return x, y


def _quiet_env():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


# ---------------------------------------------------------------- the three arms


def make_model():
    """The benchmark's 16 -> 64 -> 64 -> Normal MLP on Keras 3, seeded identically for every arm."""
    import keras

    import probnn

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            keras.layers.Dense(WIDTH, "relu"),
            keras.layers.Dense(WIDTH, "relu"),
            probnn.heads.NormalHead(),
        ]
    )


def arm_probnn(epochs):
    _quiet_env()
    import keras

    import probnn

    x, y = make_data()
    model = make_model()
    timer = keras_timer(keras)
    probnn.fit(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=BATCH,
        verbose=0,
        seed=0,
        optimizer=keras.optimizers.Adam(1e-3),
        callbacks=[timer],
    )
    timed = timer.times[1:]
    head = probnn.heads.find_head(model)
    nll = float(-head.distribution(model.predict(x, batch_size=4096, verbose=0)).log_prob(y).numpy().mean())
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed), "first_epoch_s": timer.times[0], "nll": nll}


class _EpochTimer:
    def __init__(self):
        self.times = []

    def on_epoch_begin(self, *_):
        self._t = time.perf_counter()

    def on_epoch_end(self, *_):
        self.times.append(time.perf_counter() - self._t)


def keras_timer(keras_module):
    """An epoch timer that is a callback of the given Keras (Keras 3 or tf_keras)."""

    class Timer(_EpochTimer, keras_module.callbacks.Callback):
        def __init__(self):
            keras_module.callbacks.Callback.__init__(self)
            _EpochTimer.__init__(self)

    return Timer()


def arm_keras3(epochs):
    _quiet_env()
    import keras

    import probnn

    x, y = make_data()
    model = make_model()
    head = probnn.heads.find_head(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=probnn.losses.NegativeLogLikelihood(head))

    timer = keras_timer(keras)
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    timed = timer.times[1:]
    nll = float(-head.distribution(model.predict(x, batch_size=4096, verbose=0)).log_prob(y).numpy().mean())
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed), "first_epoch_s": timer.times[0], "nll": nll}


def make_tf_keras_model():
    """The same MLP on tf_keras with `tfp.layers.IndependentNormal`, compiled (tf_keras defaults)."""
    import tensorflow_probability as tfp
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((N_FEATURES,)),
            tf_keras.layers.Dense(WIDTH, "relu"),
            tf_keras.layers.Dense(WIDTH, "relu"),
            tf_keras.layers.Dense(tfp.layers.IndependentNormal.params_size(1)),
            tfp.layers.IndependentNormal(1),
        ]
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss=lambda t, rv: -rv.log_prob(t))
    return model


def arm_tf_keras(epochs):
    _quiet_env()
    import tensorflow as tf
    import tf_keras

    x, y = make_data()
    model = make_tf_keras_model()
    timer = keras_timer(tf_keras)
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    timed = timer.times[1:]
    nll = float(tf.reduce_mean(-model(x).log_prob(y)))
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed), "first_epoch_s": timer.times[0], "nll": nll}


def arm_overhead(epochs):
    """ms per epoch of probnn.fit with optional per-epoch work switched on."""
    _quiet_env()
    import keras

    import probnn

    x, y = make_data()
    xv, yv = x[:4000], y[:4000]

    def run(**kwargs):
        model = make_model()
        kwargs.setdefault("verbose", 0)
        timer = keras_timer(keras)
        kwargs["callbacks"] = kwargs.get("callbacks", []) + [timer]
        with contextlib.redirect_stdout(io.StringIO()):
            probnn.fit(model, x, y, epochs=epochs, batch_size=BATCH, seed=0, **kwargs)
        return 1000 * median(timer.times[1:])

    out = {"plain (verbose=0)": run()}
    out["progress bar (verbose=1)"] = run(verbose=1)
    out["one line per epoch (verbose=2)"] = run(verbose=2)
    out["validation, 4,000 rows"] = run(validation_data=(xv, yv))
    with tempfile.TemporaryDirectory() as d:
        out["checkpoint every epoch"] = run(checkpoint_dir=d, resume=False)
    out["steps_per_execution=10 (8 calls/epoch)"] = run(steps_per_execution=10)
    out["keras EarlyStopping(patience=5, restore_best_weights)"] = run(
        callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)]
    )
    return out


# ------------------------------------------- part 1: jobs as a user waits for them


def job(arm, kind):
    """One part-1 job in this (fresh) process: `kind` is "warm", "cold50" or "cold5"."""
    _quiet_env()
    import keras

    import probnn  # noqa: F401  (imports are excluded from the timings)

    if arm == "tf_keras":
        import tensorflow_probability  # noqa: F401
        import tf_keras  # noqa: F401

    x, y = make_data()

    def build():
        return make_model() if arm == "probnn" else make_tf_keras_model()

    def train(model, epochs, callbacks=()):
        if arm == "probnn":
            probnn.fit(
                model,
                x,
                y,
                epochs=epochs,
                batch_size=BATCH,
                verbose=0,
                seed=0,
                optimizer=model.__dict__.get("optimizer") or keras.optimizers.Adam(1e-3),
                callbacks=list(callbacks),
                jit_compile=False if kind == "cold5graph" else "auto",
            )
        else:
            model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=list(callbacks))

    if kind.startswith("cold"):
        epochs = int(kind[4:].removesuffix("graph"))
        start = time.perf_counter()
        train(build(), epochs)
        seconds = time.perf_counter() - start
        return {"steps_per_s": epochs * STEPS_PER_EPOCH / seconds, "seconds": seconds}
    model = build()
    train(model, 1)
    start = time.perf_counter()
    train(model, 5)
    seconds = time.perf_counter() - start
    out = {"steps_per_s": 5 * STEPS_PER_EPOCH / seconds, "seconds": seconds}
    if arm == "probnn":
        # The batch hooks bracket each compiled call: what is outside them is overhead.
        class CompiledTime(keras.callbacks.Callback):
            seconds = 0.0

            def on_train_batch_begin(self, batch, logs=None):
                self._t = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                CompiledTime.seconds += time.perf_counter() - self._t

        overheads, epochs = [], []
        for _ in range(7):
            CompiledTime.seconds = 0.0
            start = time.perf_counter()
            train(model, 1, [CompiledTime()])
            overheads.append(time.perf_counter() - start - CompiledTime.seconds)
            epochs.append(CompiledTime.seconds)
        out["second_call_overhead_ms"] = 1000 * median(overheads)
        out["epoch_ms"] = 1000 * median(epochs)
    return out


ARMS = {"probnn": arm_probnn, "keras3": arm_keras3, "tf_keras": arm_tf_keras, "overhead": arm_overhead}


# -------------------------------------------------------------------- driver


def run_arm(name, epochs, pin=False, intra_op_threads=None, job_kind=None, xla_cache=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_XLA_FLAGS", None)
    if xla_cache:
        env["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={xla_cache}"
    if intra_op_threads:
        env["TF_NUM_INTRAOP_THREADS"] = str(intra_op_threads)
    preexec = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if pin else None
    command = [sys.executable, __file__, "--arm", name, "--epochs", str(epochs)]
    if job_kind:
        command += ["--job", job_kind]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=preexec)
    if proc.returncode != 0:
        raise RuntimeError(f"arm {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine():
    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfp": tfp.__version__,
        "keras": keras.__version__,
        "tf_keras": tf_keras.__version__,
        "numpy": np.__version__,
    }


def machine_lines(info, load_before, load_after):
    return [
        "## Machine",
        "",
        f"- CPU: {info['cpu']} ({info['cores']} logical cores)",
        f"- Python {info['python']}, TensorFlow {info['tensorflow']}, TFP {info['tfp']}, "
        f"Keras {info['keras']}, tf_keras {info['tf_keras']}, NumPy {info['numpy']}",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        "(other jobs share the cores: figures are noisy)",
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]


def part1_lines(jobs, cached, graph, repeats, load_before, load_after):
    """Markdown of part 1: the three ratios, the second-call overhead, the XLA cache, no XLA."""

    def med(arm, kind, key="steps_per_s"):
        return median([r[key] for r in jobs[arm, kind]])

    def runs(arm, kind):
        return ", ".join(f"{r['steps_per_s']:.0f}" for r in jobs[arm, kind])

    targets = {"warm": 5.0, "cold50": 4.0, "cold5": 1.5}
    labels = {
        "warm": "warm: a 1-epoch fit, then a timed 5-epoch fit",
        "cold50": "cold: building the model to the end of 50 epochs",
        "cold5": "cold: building the model to the end of 5 epochs",
    }
    lines = [
        "## Part 1: what a user waits for",
        "",
        f"Each job in a fresh process (imports and data creation excluded), steps/s; median "
        f"of {repeats} interleaved run(s), all runs in brackets; load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after.",
        "",
        "| job | tf_keras + tfp.layers | probnn.fit | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, target in targets.items():
        ratio = med("probnn", kind) / med("tf_keras", kind)
        lines.append(
            f"| {labels[kind]} | {med('tf_keras', kind):,.0f} ({runs('tf_keras', kind)})"
            f" | {med('probnn', kind):,.0f} ({runs('probnn', kind)}) | "
            f"**{ratio:.1f}x** | >= {target}x |"
        )
    cached_sps = median([r["steps_per_s"] for r in cached])
    cached_runs = ", ".join(f"{r['steps_per_s']:.0f}" for r in cached)
    graph_sps = median([r["steps_per_s"] for r in graph])
    graph_runs = ", ".join(f"{r['steps_per_s']:.0f}" for r in graph)
    lines += [
        "",
        f"- probnn.fit second-call overhead (wall time of a repeated 1-epoch fit minus its "
        f"compiled call, median of 7): **{med('probnn', 'warm', 'second_call_overhead_ms'):.1f} ms** (epoch "
        f"{med('probnn', 'warm', 'epoch_ms'):.1f} ms).",
        f"- cold 5 epochs with XLA's persistent compilation cache filled by an earlier "
        f"process (`TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR`): "
        f"{cached_sps:,.0f} steps/s ({cached_runs}), "
        f"**{cached_sps / med('tf_keras', 'cold5'):.1f}x** tf_keras cold.",
        f"- cold 5 epochs with `jit_compile=False` (plain graphs, no XLA compilation): "
        f"{graph_sps:,.0f} steps/s ({graph_runs}), "
        f"**{graph_sps / med('tf_keras', 'cold5'):.1f}x** tf_keras cold.",
        "",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=sorted(ARMS))
    parser.add_argument(
        "--job",
        choices=["warm", "cold50", "cold5", "cold5graph"],
        help="(internal) run one part-1 job of --arm in this process",
    )
    parser.add_argument("--quick", action="store_true", help="part 1 only, one run per job (a few minutes)")
    parser.add_argument(
        "--epochs", type=int, default=11, help="epochs per arm; the first is excluded from timing"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each arm (interleaved); the median is reported"
    )
    parser.add_argument(
        "--part1-repeats",
        type=int,
        default=5,
        help="interleaved runs of each part-1 job (cold starts vary most)",
    )
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="also run every arm pinned to one CPU core (per-core comparison: "
        "XLA runs this loop on one thread, the Keras arms use a pool)",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=None,
        help="TF_NUM_INTRAOP_THREADS for every arm (default: TensorFlow's choice, one per core)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="markdown output (default benchmarks/results/train_throughput.md, "
        "or train_throughput_intra<N>.md with --intra-op-threads N)",
    )
    args = parser.parse_args()
    if args.out is None:
        suffix = f"_intra{args.intra_op_threads}" if args.intra_op_threads else ""
        args.out = os.path.join(HERE, "results", f"train_throughput{suffix}.md")
    if args.arm:
        result = job(args.arm, args.job) if args.job else ARMS[args.arm](args.epochs)
        print(json.dumps(result))
        return

    _quiet_env()
    load_before = os.getloadavg()
    repeats = 1 if args.quick else args.part1_repeats
    jobs = {(arm, kind): [] for kind in ("warm", "cold50", "cold5") for arm in ("tf_keras", "probnn")}
    cached, graph = [], []
    with tempfile.TemporaryDirectory() as cache_dir:
        run_arm("probnn", 0, job_kind="cold5", xla_cache=cache_dir)  # fills the cache
        for _ in range(repeats):
            for arm, kind in jobs:
                jobs[arm, kind].append(run_arm(arm, 0, job_kind=kind, intra_op_threads=args.intra_op_threads))
            cached.append(
                run_arm(
                    "probnn", 0, job_kind="cold5", xla_cache=cache_dir, intra_op_threads=args.intra_op_threads
                )
            )
            graph.append(run_arm("probnn", 0, job_kind="cold5graph", intra_op_threads=args.intra_op_threads))
    part1 = part1_lines(jobs, cached, graph, repeats, load_before, os.getloadavg())
    if args.quick:
        text = "\n".join(
            [
                "# Training throughput (--quick: part 1 only)",
                "",
                *part1,
                *machine_lines(machine(), load_before, os.getloadavg()),
            ]
        )
        write_result(args.out.replace(".md", "_quick.md"), text)
        return
    runs = {name: [] for name in ("probnn", "keras3", "tf_keras")}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(run_arm(name, args.epochs, intra_op_threads=args.intra_op_threads))
    overhead = run_arm("overhead", max(args.epochs, 11), intra_op_threads=args.intra_op_threads)
    pinned = {}
    if args.one_core:
        pinned = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name in pinned:
                pinned[name].append(run_arm(name, args.epochs, pin=True))
    load_after = os.getloadavg()

    med = {k: {m: median([r[m] for r in v]) for m in v[0]} for k, v in runs.items()}
    rows = [
        ("probnn.fit (fused epoch, XLA)", "probnn"),
        ("Keras 3 model.fit + NegativeLogLikelihood", "keras3"),
        ("tf_keras + tfp.layers.IndependentNormal", "tf_keras"),
    ]
    info = machine()
    lines = [
        "# Training throughput",
        "",
        *part1,
        "## Part 2: steady state",
        "",
        f"16 -> {WIDTH} -> {WIDTH} -> Normal MLP, Adam(1e-3), batch {BATCH}, "
        f"{N_ROWS:,} rows ({STEPS_PER_EPOCH} steps/epoch), {args.epochs} epochs per run, "
        f"first epoch excluded; steps/s from the median epoch time of each run, "
        f"median of {args.repeats} interleaved runs per arm (all runs in brackets); "
        f"TF_NUM_INTRAOP_THREADS={args.intra_op_threads or 'default'}.",
        "",
        "| trainer | steps/s | first epoch (s) | final train NLL |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        all_runs = ", ".join(f"{r['steps_per_s']:.0f}" for r in runs[key])
        lines.append(
            f"| {label} | {med[key]['steps_per_s']:,.0f} ({all_runs}) | "
            f"{med[key]['first_epoch_s']:.2f} | {med[key]['nll']:.4f} |"
        )
    p = med["probnn"]["steps_per_s"]
    lines += [
        "",
        f"- probnn / tf_keras: **{p / med['tf_keras']['steps_per_s']:.1f}x** (target >= 5x)",
        f"- probnn / Keras 3 fit: **{p / med['keras3']['steps_per_s']:.1f}x** (target >= 10x)",
    ]
    if pinned:
        pmed = {k: median([r["steps_per_s"] for r in v]) for k, v in pinned.items()}
        lines += [
            "",
            "Pinned to one core (`--one-core`), steps/s (median; all runs in brackets):",
            "",
            "| trainer | steps/s |",
            "| --- | ---: |",
        ]
        for label, key in rows:
            all_runs = ", ".join(f"{r['steps_per_s']:.0f}" for r in pinned[key])
            lines.append(f"| {label} | {pmed[key]:,.0f} ({all_runs}) |")
        lines += [
            "",
            f"- one core: probnn / tf_keras **{pmed['probnn'] / pmed['tf_keras']:.1f}x**, "
            f"probnn / Keras 3 fit **{pmed['probnn'] / pmed['keras3']:.1f}x**",
        ]
    lines += [
        "",
        "## Per-epoch cost of optional work in probnn.fit",
        "",
        "Median epoch time of one run each (noise is a few ms):",
        "",
        "| configuration | ms / epoch | overhead vs plain (ms) |",
        "| --- | ---: | ---: |",
    ]
    base = overhead["plain (verbose=0)"]
    for label, ms in overhead.items():
        lines.append(f"| {label} | {ms:.1f} | {ms - base:+.1f} |")
    lines += ["", *machine_lines(info, load_before, load_after)]
    write_result(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
