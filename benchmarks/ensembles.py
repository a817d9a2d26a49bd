"""Deep ensembles: one probnn.fit of a probnn.Ensemble vs M separate fits.

For M = 1, 5 and 10 members, on two jobs

  uci  455 rows x 13 features, 13-50-Normal, batch 32, 40 epochs (a UCI split)
  mlp  20,000 rows x 16 features, 16-64-64-Normal, batch 256, 20 epochs

three arms train M members (Adam 1e-3):

  ensemble  ONE `probnn.fit` of `probnn.Ensemble(build, members=M)`
  separate  M `probnn.fit` calls, one fresh model each (what a user would write)
  keras     M Keras 3 `model.fit` calls (jit_compile="auto"), one fresh model each

Each (job, M, arm) runs in its own subprocess (no compile cache shared between
arms), repeated `--repeats` times in interleaved order; the table gives the
median. "total" is wall time from building the model(s) to the end of
training, compilation included; "per epoch" is the median epoch time after the
first (summed over the M calls for the separate arms). The machine's 1-minute
load average is recorded before each run: on a shared machine the absolute
times are noisy, the ratios measured side by side less so.

Usage:  python benchmarks/ensembles.py [--repeats 3] [--members 1 5 10] [--jobs uci mlp]
Writes benchmarks/results/ensembles.md (and the raw runs as ensembles.json).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

JOBS = {
    "uci": dict(rows=455, features=13, hidden=(50,), batch=32, epochs=40),
    "mlp": dict(rows=20_000, features=16, hidden=(64, 64), batch=256, epochs=20),
}
ARMS = ("ensemble", "separate", "keras")


def make_data(job):
    import numpy as np

    spec = JOBS[job]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(spec["rows"], spec["features"])).astype("float32")
    w = rng.normal(size=(spec["features"], 1)).astype("float32") / 4
    scale = 0.2 + 0.5 * np.abs(x[:, 1:2])
    y = (np.sin(x @ w) + scale * rng.normal(size=(spec["rows"], 1))).astype("float32")
    return x, y


def run_arm(job, members, arm):
    """Train M members with one arm; return timings (in this fresh process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    import keras

    import probnn

    spec = JOBS[job]
    x, y = make_data(job)

    def build():
        layers = [keras.Input((spec["features"],))]
        layers += [keras.layers.Dense(h, activation="relu") for h in spec["hidden"]]
        layers.append(probnn.heads.NormalHead())
        return keras.Sequential(layers)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, *_):
            self._t = time.perf_counter()

        def on_epoch_end(self, *_):
            self.times.append(time.perf_counter() - self._t)

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    imported = time.perf_counter()
    per_epoch = 0.0
    fit = dict(epochs=spec["epochs"], batch_size=spec["batch"], verbose=0)
    if arm == "ensemble":
        timer = Timer()
        model = probnn.Ensemble(build, members=members)
        probnn.fit(model, x, y, optimizer=keras.optimizers.Adam(1e-3), seed=0, callbacks=[timer], **fit)
        per_epoch = median(timer.times[1:])
    else:
        for m in range(members):
            timer = Timer()
            model = build()
            if arm == "separate":
                probnn.fit(
                    model, x, y, optimizer=keras.optimizers.Adam(1e-3), seed=m, callbacks=[timer], **fit
                )
            else:
                model.compile(
                    optimizer=keras.optimizers.Adam(1e-3),
                    loss=probnn.losses.NegativeLogLikelihood(probnn.heads.find_head(model)),
                )
                model.fit(x, y, callbacks=[timer], **fit)
            per_epoch += median(timer.times[1:])
    end = time.perf_counter()
    return {"total_s": end - imported, "per_epoch_s": per_epoch, "import_s": imported - start}


def child(args):
    result = run_arm(args.job, args.m, args.arm)
    print("RESULT " + json.dumps(result))


def run_child(job, members, arm):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")])
    )
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--job", job, "--m", str(members), "--arm", arm],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    result.update(job=job, members=members, arm=arm, load=load)
    return result


def report(runs, repeats):
    from _common import machine_description, markdown_table

    def med(job, m, arm, key):
        values = sorted(r[key] for r in runs if (r["job"], r["members"], r["arm"]) == (job, m, arm))
        return values[len(values) // 2] if values else float("nan")

    loads = [r["load"] for r in runs]
    lines = [
        "# Deep ensembles: one `probnn.fit` of an `Ensemble` vs M separate fits",
        "",
        *machine_description(),
        f"- 1-minute load average before the runs: min {min(loads):.1f}, median "
        f"{sorted(loads)[len(loads) // 2]:.1f}, max {max(loads):.1f} (2 cores shared "
        "with other jobs: absolute times are noisy; compare ratios)",
        f"- median of {repeats} interleaved runs, each in a fresh process",
        "",
    ]
    for job, spec in JOBS.items():
        ms = sorted({r["members"] for r in runs if r["job"] == job})
        if not ms:
            continue
        lines += [
            f"## {job}: {spec['rows']} rows x {spec['features']} features, hidden "
            f"{spec['hidden']}, batch {spec['batch']}, {spec['epochs']} epochs",
            "",
        ]
        rows = []
        for m in ms:
            row = [m]
            for arm in ARMS:
                row += [f"{med(job, m, arm, 'total_s'):.2f}", f"{1000 * med(job, m, arm, 'per_epoch_s'):.1f}"]
            row += [
                f"{med(job, m, 'ensemble', 'total_s') / med(job, 1, 'ensemble', 'total_s'):.2f}"
                if 1 in ms
                else "",
                f"{med(job, m, 'ensemble', 'total_s') / med(job, m, 'separate', 'total_s'):.2f}",
                f"{med(job, m, 'ensemble', 'total_s') / med(job, m, 'keras', 'total_s'):.2f}",
            ]
            rows.append(row)
        header = ["M"]
        for arm in ARMS:
            header += [f"{arm} total s", f"{arm} ms/epoch"]
        header += ["ensemble / ensemble M=1", "ensemble / separate", "ensemble / keras"]
        lines += [markdown_table(header, rows), ""]
    lines += [
        "Targets (issue 13; totals, build to end of training, compile included):",
        "uci: 5 members <= 1.5x one member (column 'ensemble / ensemble M=1' at M=5, the "
        "M=1 ensemble being one member trained by probnn.fit);",
        "mlp: 5 members <= 0.5x five separate probnn.fit calls ('ensemble / separate' at M=5).",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--jobs", nargs="+", default=list(JOBS))
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--job")
    parser.add_argument("--m", type=int)
    parser.add_argument("--arm")
    args = parser.parse_args()
    if args.child:
        return child(args)
    from _common import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    for r in range(args.repeats):
        order = [(job, m, arm) for job in args.jobs for m in args.members for arm in ARMS]
        order = order[r % len(ARMS) :] + order[: r % len(ARMS)]  # rotate: interleave the arms
        for job, m, arm in order:
            result = run_child(job, m, arm)
            runs.append(result)
            print(json.dumps(result), flush=True)
            # Written after every run, so an interrupted benchmark keeps what it measured.
            (RESULTS / "ensembles.json").write_text(json.dumps(runs, indent=1))
            (RESULTS / "ensembles.md").write_text(report(runs, r + 1))
    print(report(runs, args.repeats))


if __name__ == "__main__":
    main()
