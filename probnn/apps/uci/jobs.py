"""`probnn bench uci`: check the command's arguments, run the pending pairs (in processes), the table."""

import dataclasses
import os
import pathlib
import time

import numpy as np

from probnn.apps.uci.methods import METHODS, QUICK_SETTINGS, QUICK_SPLITS, Settings, quick
from probnn.apps.uci.protocol import run_method
from probnn.apps.uci.results import load_result, load_results, result_path, save_result
from probnn.apps.uci.table import format_table
from probnn.datasets.uci import UCI_DATASETS, available_uci_datasets, uci_folder, uci_num_splits


@dataclasses.dataclass
class BenchJob:
    data_dir: pathlib.Path
    datasets: list
    splits: dict
    methods: list
    quick: bool
    output: object
    seed: int
    results_dir: object = None
    rerun: bool = False
    table_only: bool = False
    jobs: int = 1
    splits_arg: int = None  # --splits as given
    epochs_factor: int = None  # --epochs-factor: None for the default of the kind of run

    def default_settings(self):
        return QUICK_SETTINGS if self.quick else Settings()

    def settings(self):
        default = self.default_settings()
        return dataclasses.replace(
            default, seed=self.seed, max_epochs_factor=self.epochs_factor or default.max_epochs_factor
        )

    def method(self, name):
        return quick(METHODS[name]) if self.quick else METHODS[name]

    def pending(self):
        """(data set, method) pairs to run: all, or those without a results file unless `rerun`."""
        pairs = [(d, m) for d in self.datasets for m in self.methods]
        if self.results_dir is None or self.rerun:
            return pairs
        return [(d, m) for d, m in pairs if not result_path(self.results_dir, d, m).is_file()]


_OWNER = "probnn bench uci"


def _check_outputs(args):
    """`(results_dir, table_only, rerun, output)` from the arguments, checked against each other."""
    owner = _OWNER
    results_dir = getattr(args, "results_dir", None)
    results_dir = None if results_dir is None else pathlib.Path(results_dir)
    table_only = bool(getattr(args, "table_only", False))
    rerun = bool(getattr(args, "rerun", False))
    if results_dir is not None and results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f"{owner}: --results-dir {results_dir} is not a folder")
    if table_only and results_dir is None:
        raise ValueError(f"{owner}: --table-only needs --results-dir (the folder of results files)")
    if rerun and results_dir is None:
        raise ValueError(f"{owner}: --rerun needs --results-dir")
    output = None
    if args.output:
        output = pathlib.Path(args.output)
        if output.exists() and not args.overwrite:
            raise ValueError(f"{owner}: output file {output} already exists (pass --overwrite to replace it)")
    return results_dir, table_only, rerun, output


def _known(kind, given, choices):
    """`given` (each one of `choices`) or, when empty, all `choices`; else a one-line error."""
    names = given or list(choices)
    bad = [name for name in names if name not in choices]
    if bad:
        raise ValueError(f"{_OWNER}: unknown {kind} {bad[0]!r} (choose from {', '.join(choices)})")
    return names


def _datasets_and_splits(args, data_dir):
    """The data sets in `data_dir` to run and the split indices of each (`--splits`, `--quick` or all)."""
    if not data_dir.is_dir():
        raise ValueError(f"{_OWNER}: --data-dir {data_dir} is not a folder")
    datasets = args.datasets or [d for d in UCI_DATASETS if d in available_uci_datasets(data_dir)]
    if not datasets:
        raise ValueError(f"{_OWNER}: no UCI data set folders (with data.txt) in {data_dir}")
    splits = {}
    for name in datasets:
        uci_folder(name, data_dir, _OWNER)
        total = uci_num_splits(name, data_dir)
        k = args.splits or (QUICK_SPLITS if args.quick else total)
        if k > total:
            raise ValueError(f"{_OWNER}: --splits {k} but {name} has {total} splits")
        splits[name] = list(range(k))
    return datasets, splits


def _check_existing_results(job):
    """A results file to be skipped must hold the same kind of run; anything else is a one-line error."""
    factor = job.settings().max_epochs_factor
    for d in job.datasets:
        for m in job.methods:
            path = result_path(job.results_dir, d, m)
            if not path.is_file():
                continue
            old = load_result(path)
            kind = "--quick" if old.meta.get("quick") else "full"
            old_factor = old.meta.get("settings", {}).get("max_epochs_factor")
            if (
                bool(old.meta.get("quick")) != job.quick
                or [s.split for s in old.splits] != job.splits[d]
                or old_factor != factor
            ):
                raise ValueError(
                    f"{_OWNER}: {path} holds a {kind} run on splits {[s.split for s in old.splits]} "
                    f"with --epochs-factor {old_factor}, not this one (pass --rerun to replace it, "
                    "or another --results-dir)"
                )


def check_cli_arguments(args):
    """Check `probnn bench uci`'s arguments (no TensorFlow needed); return a `BenchJob`."""
    results_dir, table_only, rerun, output = _check_outputs(args)
    methods = _known("method", args.methods, METHODS)
    if args.data_dir is None and not table_only:
        raise ValueError(f"{_OWNER}: --data-dir PATH is required (the folder of the UCI data set folders)")
    data_dir = None if args.data_dir is None else pathlib.Path(args.data_dir)
    if table_only:
        names = _known("data set", args.datasets, UCI_DATASETS)
        return BenchJob(
            data_dir, names, {}, methods, bool(args.quick), output, int(args.seed), results_dir, rerun, True
        )
    datasets, splits = _datasets_and_splits(args, data_dir)
    jobs = int(getattr(args, "jobs", None) or 1)
    if jobs > 1 and results_dir is None:
        raise ValueError(
            f"{_OWNER}: --jobs {jobs} needs --results-dir (the processes share their results there)"
        )
    job = BenchJob(
        data_dir,
        datasets,
        splits,
        methods,
        bool(args.quick),
        output,
        int(args.seed),
        results_dir,
        rerun,
        False,
        jobs,
        args.splits,
        getattr(args, "epochs_factor", None),
    )
    if results_dir is not None and not rerun:
        _check_existing_results(job)
    return job


def run(job, log=print, on_result=None):
    """Run a `BenchJob`; return the `MethodResult`s of the pairs run (`on_result(result)` after each).

    With `job.results_dir`, each (data set, method) result is written to its own JSON
    file as soon as it is done, and pairs whose file exists are skipped (unless
    `job.rerun`): an interrupted run continues where it stopped.
    """
    settings = job.settings()
    results = []
    for name, m in job.pending():
        method = job.method(m)
        result = run_method(name, method, job.splits[name], job.data_dir, settings, log=log)
        if job.results_dir is not None:
            save_result(
                result,
                result_path(job.results_dir, name, m),
                settings=settings,
                method=method,
                quick=job.quick,
            )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def table_text(job, results, wall=None):
    """The Markdown text of `job`'s table: of every results file in `job.results_dir` if it has one."""
    if job.results_dir is not None and job.results_dir.is_dir():
        results = load_results(job.results_dir)
        results = [r for r in results if r.dataset in job.datasets and r.method in job.methods]
        text = format_table(
            results,
            datasets=[d for d in UCI_DATASETS if d in job.datasets] if job.table_only else job.datasets,
            methods=job.methods,
        )
        text += f"\n\nFrom the results files in {job.results_dir}."
    else:
        text = format_table(results, datasets=job.datasets, methods=job.methods)
    if job.quick:
        text += (
            "\n--quick: fewer splits, a smaller grid, fewer epochs (not comparable to the published columns)."
        )
    factor = job.settings().max_epochs_factor  # of results not read from a file
    factors = sorted(
        {r.meta.get("settings", {}).get("max_epochs_factor", factor) for r in results} or {factor}
    )
    default = job.default_settings().max_epochs_factor
    if factors != [default]:
        text += (
            f"\nEpochs capped at {' / '.join(map(str, factors))} x n_epochs.txt (--epochs-factor; "
            f"the default is {default} x)."
        )
    if wall is not None:
        text += f"\nThis invocation: {wall:.0f} s wall on {os.cpu_count()} CPU cores."
    return text


def partition(job):
    """The pending data sets split into `job.jobs` lists of about equal work (largest first).

    Work of a data set: its pending methods x splits x data rows x `n_epochs.txt` epochs
    (x 2 for 100 hidden units); measured CPU time grows about linearly in each (without the
    epochs, protein's 5 splits of 20 epochs weighed as naval's, power's and kin8nm's 20
    splits of 40 together, and took a third of their CPU time).
    """
    pending = {}
    for d, _ in job.pending():
        pending[d] = pending.get(d, 0) + 1
    cost = {}
    for d, methods in pending.items():
        folder = uci_folder(d, job.data_dir, "probnn bench uci")
        rows = sum(1 for _ in open(folder / "data.txt"))
        hidden = int((folder / "n_hidden.txt").read_text().split()[0])
        epochs = int((folder / "n_epochs.txt").read_text().split()[0])
        cost[d] = methods * len(job.splits[d]) * rows * epochs * (hidden / 50)
    groups = [[] for _ in range(job.jobs)]
    load = [0.0] * job.jobs
    for d in sorted(cost, key=cost.get, reverse=True):
        i = int(np.argmin(load))
        groups[i].append(d)
        load[i] += cost[d]
    order = {d: i for i, d in enumerate(job.datasets)}
    return [sorted(g, key=order.get) for g in groups if g]


def run_in_processes(job, log=print):
    """Run the pending pairs in `job.jobs` `probnn bench uci` processes (data sets split between
    them by `partition`), each writing its results files; their lines are logged with a prefix."""
    import subprocess
    import sys
    import threading

    import probnn

    root = str(pathlib.Path(probnn.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    procs = []
    for i, group in enumerate(partition(job)):
        argv = [
            sys.executable,
            "-u",
            "-m",
            "probnn",
            "bench",
            "uci",
            "--data-dir",
            str(job.data_dir),
            "--results-dir",
            str(job.results_dir),
            "--datasets",
            *group,
            "--methods",
            *job.methods,
            "--seed",
            str(job.seed),
        ]
        argv += ["--quick"] if job.quick else []
        argv += ["--rerun"] if job.rerun else []
        argv += ["--splits", str(job.splits_arg)] if job.splits_arg else []
        argv += ["--epochs-factor", str(job.epochs_factor)] if job.epochs_factor else []
        log(f"  process {i + 1}: {' '.join(group)}")
        procs.append(
            (
                i + 1,
                subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env),
            )
        )

    def relay(number, proc):
        for line in proc.stdout:
            if line.startswith(("  ", "probnn")):  # progress and error lines; the table is rebuilt below
                log(f"  [{number}]{line.rstrip()}")

    threads = [threading.Thread(target=relay, args=p) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [n for n, p in procs if p.wait() != 0]
    if failed:
        raise RuntimeError(
            f"probnn bench uci: process {failed[0]} of {len(procs)} failed (see its lines above)"
        )


def run_job(job, log=print):
    """`probnn bench uci`: run what is pending, write the table to `job.output`; return the table text."""
    started = time.perf_counter()

    def save(_=None):
        if job.output is not None:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            wall = None if job.table_only else time.perf_counter() - started
            job.output.write_text(table_text(job, done, wall) + "\n")

    done = []
    if not job.table_only:
        skipped = len(job.datasets) * len(job.methods) - len(job.pending())
        if skipped:
            log(f"  skipping {skipped} (data set, method) pairs with results files in {job.results_dir}")
        if job.jobs > 1:
            run_in_processes(job, log)
        else:
            run(job, log=log, on_result=lambda r: (done.append(r), save()))
    save()
    return table_text(job, done, None if job.table_only else time.perf_counter() - started)
