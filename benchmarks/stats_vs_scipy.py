"""Time probnn.stats against scipy.stats's vectorised calls on the same batched data.

Every statistic is computed for each of ROWS samples of COLS values
(`axis=1`). scipy gets a float64 NumPy array; probnn gets the same data as a
float64 tensor (eager, and inside `tf.function(jit_compile=True)`) and as a
float32 tensor (XLA). After one warm-up call per arm (so XLA compile time is
excluded; it is reported separately), REPEATS rounds run scipy and the three
probnn arms in turn; each timing is the median over rounds and each ratio the
median of the per-round ratios, which keeps bursts of load on a shared machine
out of the comparison. Timings include fetching the result to NumPy.

scipy's wasserstein_distance takes 1-D samples only, so its time is a Python
loop over SCIPY_LOOP_ROWS rows scaled up to ROWS (marked in the table).
`median` is `numpy.median` (scipy.stats has none).

Run: python benchmarks/stats_vs_scipy.py [--rows 100000] [--cols 50] [--repeats 7]
Writes benchmarks/results/stats_vs_scipy.md.
"""

import argparse
import os
import pathlib
import platform
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.stats  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from probnn import stats  # noqa: E402

SCIPY_LOOP_ROWS = 2000


def _half(x):
    h = x.shape[1] // 2
    return x[:, :h], x[:, h:]


def _thirds(x):
    k = x.shape[1] // 3
    return x[:, :k], x[:, k : 2 * k], x[:, 2 * k :]


# name -> (scipy call on ndarray, probnn call on tensor, scipy is a per-row loop)
CASES = {
    "describe": (lambda x: scipy.stats.describe(x, axis=1), lambda x: stats.describe(x, axis=1), False),
    "skew": (lambda x: scipy.stats.skew(x, axis=1), lambda x: stats.skew(x, axis=1), False),
    "kurtosis": (lambda x: scipy.stats.kurtosis(x, axis=1), lambda x: stats.kurtosis(x, axis=1), False),
    "ttest_ind": (
        lambda x: scipy.stats.ttest_ind(*_half(x), axis=1),
        lambda x: stats.ttest_ind(*_half(x), axis=1),
        False,
    ),
    "ttest_ind (Welch)": (
        lambda x: scipy.stats.ttest_ind(*_half(x), axis=1, equal_var=False),
        lambda x: stats.ttest_ind(*_half(x), axis=1, equal_var=False),
        False,
    ),
    "ttest_rel": (
        lambda x: scipy.stats.ttest_rel(*_half(x), axis=1),
        lambda x: stats.ttest_rel(*_half(x), axis=1),
        False,
    ),
    "pearsonr": (
        lambda x: scipy.stats.pearsonr(*_half(x), axis=1),
        lambda x: stats.pearsonr(*_half(x), axis=1),
        False,
    ),
    "linregress": (
        lambda x: scipy.stats.linregress(*_half(x), axis=1),
        lambda x: stats.linregress(*_half(x), axis=1),
        False,
    ),
    "f_oneway": (
        lambda x: scipy.stats.f_oneway(*_thirds(x), axis=1),
        lambda x: stats.f_oneway(*_thirds(x), axis=1),
        False,
    ),
    "median (numpy)": (lambda x: np.median(x, axis=1), lambda x: stats.median(x, axis=1), False),
    "iqr": (lambda x: scipy.stats.iqr(x, axis=1), lambda x: stats.iqr(x, axis=1), False),
    "wasserstein_distance": (
        lambda x: [scipy.stats.wasserstein_distance(u, v) for u, v in zip(*_half(x))],
        lambda x: stats.wasserstein_distance(*_half(x), axis=1),
        True,
    ),
}


def _fetch(result):
    return [np.asarray(t) for t in tf.nest.flatten(result)]


def _once(fn, arg):
    start = time.perf_counter()
    _fetch(fn(arg))
    return time.perf_counter() - start


def _compile_time(fn, arg):
    return _once(fn, arg)


def _side_by_side(arms, repeats):
    """Median time of each arm over `repeats` rounds; the arms run in turn within a round,
    so a burst of load on the shared machine hits all of them. Also the median over
    rounds of scipy's time over each arm's (the ratio measured side by side)."""
    for fn, arg, _ in arms.values():
        _fetch(fn(arg))  # warm-up (and compile)
    times = {name: [] for name in arms}
    for _ in range(repeats):
        for name, (fn, arg, scale) in arms.items():
            times[name].append(_once(fn, arg) * scale)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    ratios = {name: float(np.median(np.array(times["scipy"]) / np.array(t))) for name, t in times.items()}
    return medians, ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "stats_vs_scipy.md"))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, args.cols)) * rng.uniform(0.5, 2.0, size=(args.rows, 1))
    x64 = tf.constant(x, tf.float64)
    x32 = tf.constant(x, tf.float32)
    loop_rows = min(SCIPY_LOOP_ROWS, args.rows)

    header = (
        "| function | scipy (s) | probnn eager f64 (s) | probnn XLA f64 (s) | probnn XLA f32 (s) "
        "| XLA compile f64 (s) | scipy / eager f64 | scipy / XLA f64 | scipy / XLA f32 |"
    )
    lines = [header, "|" + "---|" * 9]
    print(header)
    print(lines[1])
    load_before = os.getloadavg()
    for name, (scipy_fn, probnn_fn, loop) in CASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # autograph=False: the ops have no tensor-dependent Python control flow.
            t_compile = _compile_time(tf.function(probnn_fn, jit_compile=True, autograph=False), x64)
            compiled = tf.function(probnn_fn, jit_compile=True, autograph=False)
            arms = {
                "scipy": (scipy_fn, x[:loop_rows] if loop else x, args.rows / loop_rows if loop else 1.0),
                "eager": (probnn_fn, x64, 1.0),
                "xla64": (compiled, x64, 1.0),
                "xla32": (compiled, x32, 1.0),
            }
            t, ratio = _side_by_side(arms, args.repeats)
        label = f"{name} (scipy: loop over {loop_rows} rows, scaled)" if loop else name
        row = (
            f"| {label} | {t['scipy']:.4f} | {t['eager']:.4f} | {t['xla64']:.4f} | {t['xla32']:.4f} | "
            f"{t_compile:.2f} | {ratio['eager']:.2f} | {ratio['xla64']:.2f} | {ratio['xla32']:.2f} |"
        )
        lines.append(row)
        print(row, flush=True)
    load_after = os.getloadavg()

    machine = (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores visible (shared with other jobs: timings are noisy); "
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"tensorflow {tf.__version__}, tensorflow-probability {tfp.__version__}"
    )
    text = "\n".join(
        [
            "# probnn.stats vs scipy.stats",
            "",
            f"{args.rows:,} samples x {args.cols} values, statistic per sample (axis=1); "
            f"median of {args.repeats} rounds after a warm-up; in each round scipy and the three probnn "
            "arms run in turn (side by side), and each ratio is the median over rounds of scipy's time "
            "over probnn's in the same round; ratio > 1 means probnn is faster. "
            "XLA compile time (first call, float64) is listed separately and excluded from the timings.",
            "",
            f"Load average (1, 5, 15 min) at the start: {', '.join(f'{v:.1f}' for v in load_before)}; "
            f"at the end: {', '.join(f'{v:.1f}' for v in load_after)} (2 cores shared with other jobs).",
            "",
            f"Machine: {machine}.",
            "",
            *lines,
            "",
        ]
    )
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nMachine: {machine}\nwrote {out}")


if __name__ == "__main__":
    main()
