"""probnn.fit throughput, side by side: intra-op threads, and two versions of the code.

Runs the `probnn` arm of benchmarks/train_throughput.py (16 -> 64 -> 64 ->
Normal MLP, batch 256, 20,000 rows, 79 steps per epoch; first epoch excluded,
steps/s from the median epoch time) in fresh subprocesses, INTERLEAVED over
the configurations, so that all of them see the same machine load: on a
shared machine only ratios measured this way mean anything.

Configurations: every `--tree` (a checkout of probnn; default: this one)
times every `--threads` value (`default` = TensorFlow's choice, one per core;
a number sets TF_NUM_INTRAOP_THREADS).

Usage:  python benchmarks/fit_side_by_side.py [--tree DIR ...] [--threads default 1]
                                              [--repeats 5] [--epochs 11] [--out FILE]
        python benchmarks/fit_side_by_side.py --last-batch [--repeats 40]

`--last-batch` measures, in ONE process and alternating epoch by epoch (so
both see the same load), the cost of the smaller last batch's own program:
the same model trained on 20,000 rows (78 full batches of 256 and a last
batch of 32 rows: two compiled calls per epoch) and on 19,968 rows (78 full
batches, one call); both share the loop program (same row bucket).

Writes markdown (default benchmarks/results/fit_side_by_side.md) and prints it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import write_result

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(tree, threads, epochs):
    env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_NUM_INTRAOP_THREADS", None)
    if threads != "default":
        env["TF_NUM_INTRAOP_THREADS"] = threads
    script = os.path.join(tree, "benchmarks", "train_throughput.py")
    proc = subprocess.run(
        [sys.executable, script, "--arm", "probnn", "--epochs", str(epochs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tree} threads={threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_describe(tree):
    try:
        return subprocess.run(
            ["git", "-C", tree, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
        ).stdout.strip()[:70]
    except (OSError, subprocess.CalledProcessError):
        return "?"


def last_batch(repeats):
    """Median ms per epoch with and without the last partial batch, alternating epochs."""
    sys.path[:0] = [ROOT, HERE]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from train_throughput import BATCH, make_data, make_model

    import probnn

    x, y = make_data()
    model = make_model()
    cut = (x.shape[0] // BATCH) * BATCH
    optimizer = keras.optimizers.Adam(1e-3)
    times = {"with": [], "without": []}
    for rep in range(repeats + 1):
        for name, rows in (("with", x.shape[0]), ("without", cut)):
            start = time.perf_counter()
            probnn.fit(
                model,
                x[:rows],
                y[:rows],
                epochs=1,
                batch_size=BATCH,
                verbose=0,
                seed=rep,
                optimizer=optimizer,
            )
            if rep:  # the first round traces and compiles
                times[name].append(1000 * (time.perf_counter() - start))
    return x.shape[0], cut, times


def main_last_batch(args):
    loads = [os.getloadavg()[0]]
    n, cut, times = last_batch(args.repeats)
    loads.append(os.getloadavg()[0])
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    paired = [a / b for a, b in zip(times["with"], times["without"])]
    lines = [
        "# The last partial batch: cost of its own program",
        "",
        f"One process, {args.repeats} alternating 1-epoch `probnn.fit` calls each (after one "
        f"compiling round), benchmark MLP, batch 256, Adam. Wall time per call (argument "
        f"checks, data transfer, cache look-up and the compiled epoch). Load average "
        f"(1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f} on {os.cpu_count()} "
        "logical cores.",
        "",
        "| rows | compiled calls per epoch | ms per call (median) | ms per step |",
        "| ---: | ---: | ---: | ---: |",
        f"| {n:,} (78 x 256 + 32) | 2 | {w:.1f} | {w / 79:.3f} |",
        f"| {cut:,} (78 x 256) | 1 | {wo:.1f} | {wo / 78:.3f} |",
        "",
        f"- ratio of the medians: {w / wo:.3f}; median of the paired ratios: "
        f"{statistics.median(paired):.3f} (one 32-row step more is 79/78 = 1.013 of the "
        "work at the same per-step cost)",
        f"- extra time per epoch for the last batch's program: {w - wo:+.2f} ms",
        "",
        f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--last-batch", action="store_true", help="cost of the last partial batch's program, in one process"
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=None,
        help="a probnn checkout to measure (repeatable; default: this one)",
    )
    parser.add_argument(
        "--threads",
        nargs="+",
        default=["default", "1"],
        help="TF_NUM_INTRAOP_THREADS values ('default' = TensorFlow's choice)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per configuration (default 5; 40 with --last-batch)"
    )
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "fit_side_by_side.md"))
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 40 if args.last_batch else 5
    if args.last_batch:
        write_result(args.out, main_last_batch(args))
        return
    trees = [os.path.abspath(t) for t in (args.tree or [ROOT])]
    configs = [(t, th) for t in trees for th in args.threads]
    results = {c: [] for c in configs}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for c in configs:
            results[c].append(run(c[0], c[1], args.epochs)["steps_per_s"])
            loads.append(os.getloadavg()[0])
    base = statistics.median(results[configs[0]])
    lines = [
        "# probnn.fit side by side",
        "",
        f"probnn arm of train_throughput.py, {args.epochs} epochs per run (first excluded), "
        f"{args.repeats} runs per configuration interleaved; steps/s median (all runs). "
        f"Load average (1 min) during the runs: min {min(loads):.2f}, "
        f"median {statistics.median(loads):.2f}, max {max(loads):.2f} on "
        f"{os.cpu_count()} logical cores: other jobs share the machine, so read the "
        "ratios, not the absolute figures.",
        "",
        "| code | TF_NUM_INTRAOP_THREADS | steps/s | ms / epoch | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (tree, threads), values in results.items():
        med = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        lines.append(
            f"| {git_describe(tree)} | {threads} | {med:,.0f} ({runs}) | "
            f"{1000 * 79 / med:.1f} | {med / base:.2f} |"
        )
    lines += ["", f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    write_result(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
