"""Training throughput: probnn.fit vs Keras 3 model.fit vs tf_keras + tfp.layers.

The same 16 -> 64 -> 64 -> Normal MLP (Adam 1e-3, batch 256, 20,000 rows,
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

Usage:  python benchmarks/train_throughput.py [--epochs 11] [--repeats 3] [--one-core]
                                              [--intra-op-threads N]

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
    return keras.Sequential([keras.Input((N_FEATURES,)), keras.layers.Dense(WIDTH, "relu"),
                             keras.layers.Dense(WIDTH, "relu"), probnn.heads.NormalHead()])


def arm_probnn(epochs):
    _quiet_env()
    import keras

    import probnn

    x, y = make_data()
    model = make_model()
    h = probnn.fit(model, x, y, epochs=epochs, batch_size=BATCH, verbose=0, seed=0,
                   optimizer=keras.optimizers.Adam(1e-3))
    timed = h.epoch_seconds[1:]
    head = probnn.heads.find_head(model)
    nll = float(-head.distribution(model.predict(x, batch_size=4096, verbose=0))
                .log_prob(y).numpy().mean())
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed),
            "first_epoch_s": h.epoch_seconds[0], "nll": nll}


class _EpochTimer:
    def __init__(self):
        self.times = []

    def on_epoch_begin(self, *_):
        self._t = time.perf_counter()

    def on_epoch_end(self, *_):
        self.times.append(time.perf_counter() - self._t)


def arm_keras3(epochs):
    _quiet_env()
    import keras

    import probnn

    x, y = make_data()
    model = make_model()
    head = probnn.heads.find_head(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=probnn.losses.NegativeLogLikelihood(head))

    class Timer(_EpochTimer, keras.callbacks.Callback):
        def __init__(self):
            keras.callbacks.Callback.__init__(self)
            _EpochTimer.__init__(self)

    timer = Timer()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    timed = timer.times[1:]
    nll = float(-head.distribution(model.predict(x, batch_size=4096, verbose=0))
                .log_prob(y).numpy().mean())
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed),
            "first_epoch_s": timer.times[0], "nll": nll}


def arm_tf_keras(epochs):
    _quiet_env()
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    x, y = make_data()
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([
        tf_keras.Input((N_FEATURES,)),
        tf_keras.layers.Dense(WIDTH, "relu"),
        tf_keras.layers.Dense(WIDTH, "relu"),
        tf_keras.layers.Dense(tfp.layers.IndependentNormal.params_size(1)),
        tfp.layers.IndependentNormal(1),
    ])
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss=lambda t, rv: -rv.log_prob(t))

    class Timer(_EpochTimer, tf_keras.callbacks.Callback):
        def __init__(self):
            tf_keras.callbacks.Callback.__init__(self)
            _EpochTimer.__init__(self)

    timer = Timer()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    timed = timer.times[1:]
    nll = float(tf.reduce_mean(-model(x).log_prob(y)))
    return {"steps_per_s": STEPS_PER_EPOCH / median(timed),
            "first_epoch_s": timer.times[0], "nll": nll}


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
        with contextlib.redirect_stdout(io.StringIO()):
            h = probnn.fit(model, x, y, epochs=epochs, batch_size=BATCH, seed=0, **kwargs)
        return 1000 * median(h.epoch_seconds[1:])

    out = {"plain (verbose=0)": run()}
    out["progress bar (verbose=1)"] = run(verbose=1)
    out["one line per epoch (verbose=2)"] = run(verbose=2)
    out["validation, 4,000 rows"] = run(validation_data=(xv, yv))
    with tempfile.TemporaryDirectory() as d:
        out["checkpoint every epoch"] = run(checkpoint_dir=d, resume=False)
    out["steps_per_execution=10 (8 calls/epoch)"] = run(steps_per_execution=10)
    out["early_stopping=5 (weight snapshot)"] = run(early_stopping=5)
    return out


ARMS = {"probnn": arm_probnn, "keras3": arm_keras3, "tf_keras": arm_tf_keras,
        "overhead": arm_overhead}


# -------------------------------------------------------------------- driver


def run_arm(name, epochs, pin=False, intra_op_threads=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if intra_op_threads:
        env["TF_NUM_INTRAOP_THREADS"] = str(intra_op_threads)
    preexec = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if pin else None
    proc = subprocess.run([sys.executable, __file__, "--arm", name, "--epochs", str(epochs)],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          preexec_fn=preexec)
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
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                       cpu)
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "tfp": tfp.__version__, "keras": keras.__version__,
        "tf_keras": tf_keras.__version__, "numpy": np.__version__,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=sorted(ARMS))
    parser.add_argument("--epochs", type=int, default=11,
                        help="epochs per arm; the first is excluded from timing")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each arm (interleaved); the median is reported")
    parser.add_argument("--one-core", action="store_true",
                        help="also run every arm pinned to one CPU core (per-core comparison: "
                             "XLA runs this loop on one thread, the Keras arms use a pool)")
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TF_NUM_INTRAOP_THREADS for every arm (default: TensorFlow's "
                             "choice, one per core)")
    parser.add_argument("--out", default=None,
                        help="markdown output (default benchmarks/results/train_throughput.md, "
                             "or train_throughput_intra<N>.md with --intra-op-threads N)")
    args = parser.parse_args()
    if args.out is None:
        suffix = f"_intra{args.intra_op_threads}" if args.intra_op_threads else ""
        args.out = os.path.join(HERE, "results", f"train_throughput{suffix}.md")
    if args.arm:
        print(json.dumps(ARMS[args.arm](args.epochs)))
        return

    _quiet_env()
    load_before = os.getloadavg()
    runs = {name: [] for name in ("probnn", "keras3", "tf_keras")}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(run_arm(name, args.epochs,
                                      intra_op_threads=args.intra_op_threads))
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
        lines.append(f"| {label} | {med[key]['steps_per_s']:,.0f} ({all_runs}) | "
                     f"{med[key]['first_epoch_s']:.2f} | {med[key]['nll']:.4f} |")
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
    lines += [
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']} ({info['cores']} logical cores)",
        f"- Python {info['python']}, TensorFlow {info['tensorflow']}, TFP {info['tfp']}, "
        f"Keras {info['keras']}, tf_keras {info['tf_keras']}, NumPy {info['numpy']}",
        f"- load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        "(other jobs share the cores: figures are noisy)",
        f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
