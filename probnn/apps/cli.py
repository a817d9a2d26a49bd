"""The `probnn` command: `probnn demo`, `probnn fit`, `probnn predict`, `probnn bench uci`.

Importing this module is light (argparse only): the arguments, including every
`--help`, are parsed before TensorFlow is imported (the `probnn` namespace is
lazy, so importing the package imports no TensorFlow either).

TensorFlow's start-up lines (absl, oneDNN, CUDA, CPU features, XLA) are hidden
in this process only: `main` sets `TF_CPP_MIN_LOG_LEVEL=3` (unless already set)
and sends file descriptor 2 to a temporary file while TensorFlow is imported,
replaying it if the import fails. `--verbose` shows everything, and tracebacks.
(`import probnn` already hides the start-up lines unless TF_CPP_MIN_LOG_LEVEL
is set, see `probnn._quiet`; `--verbose` undoes that.)

Errors in the user's input end with one line on stderr and exit status 2.
"""

import argparse
import contextlib
import os
import sys
import tempfile

from probnn.apps.choices import CALIBRATIONS, HEADS

XLA_CACHE_HELP = (
    "XLA cache: compiled training programs are kept in $XDG_CACHE_HOME/probnn/xla (default "
    "~/.cache/probnn/xla) so that later runs start faster; PROBNN_XLA_CACHE=0 turns it off, and a "
    "--tf_xla_persistent_cache_directory already in TF_XLA_FLAGS is used instead."
)
CALIBRATION_HELP = (
    "Calibration (--calibration, fitted on held-out calibration rows): 'conformal' (default) is "
    "normalized split conformal prediction: the interval is mean ± q·std, where q is a conformal "
    "quantile of |y - mean| / std over the n calibration rows. Guarantee: if the calibration rows and "
    "a new row are exchangeable (e.g. drawn i.i.d. from the same population), the new target lies in "
    "the p-interval with probability at least p (and below p + 1/(n+1)), over the draw of the "
    "calibration rows and the new row, whatever the network learned; not conditionally on x. 'std' "
    "multiplies every predictive std by one factor (a Normal with the head's mean and std), "
    "'isotonic' recalibrates the predictive CDF (Kuleshov et al. 2018); neither has a finite-sample "
    "guarantee. 'none' keeps the network's own distribution and holds out no calibration rows."
)
DEMO_DIR = "probnn-demo"
FIT_DIR = "probnn-model"


class CommandError(Exception):
    """A one-line problem with the command's input."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _common(parser, seed=True):
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's log lines and full tracebacks"
    )
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


# ----------------------------------------------------------------- commands


def _progress(args):
    return 1 if (args.verbose or sys.stdout.isatty()) else 0


def _demo(args):
    import pathlib

    from probnn.apps.demo import FIGURE_NAME, format_report, run_demo

    figure = pathlib.Path(args.out) / FIGURE_NAME
    if figure.exists() and not args.overwrite:
        raise CommandError(f"{figure} already exists (pass --overwrite to replace it, or --out DIR)")
    _import_tensorflow(args.verbose)
    result = run_demo(args.out, epochs=args.epochs, seed=args.seed, verbose=_progress(args))
    print(format_report(result))
    return 0


def _columns(text, keep_empty=False):
    """A comma-separated list of column names; `keep_empty` keeps '' (an unnamed column, for --drop '')."""
    if text is None:
        return None
    return [c.strip() for c in text.split(",") if c.strip() or (keep_empty and text.strip() == "")]


def _fit(args):
    from probnn.apps import tabular

    try:
        hidden = tuple(_positive_int(h) for h in args.hidden.split(","))
    except argparse.ArgumentTypeError as error:
        raise CommandError(f"--hidden: {error}") from None
    # Everything about the input is checked before TensorFlow is imported.
    tabular.check_fit_arguments(
        args.out,
        head=args.head,
        ensemble=args.ensemble,
        calibration=args.calibration,
        overwrite=args.overwrite,
    )
    data = tabular.read_training_table(
        args.data,
        args.target,
        features=_columns(args.features),
        drop=_columns(args.drop, keep_empty=True),
        sep=tabular.separator(args.sep),
        seed=args.seed,
        calibration_fraction=0.0 if args.calibration == "none" else 0.15,
    )
    _import_tensorflow(args.verbose)
    options = tabular.FitOptions(
        head=args.head,
        ensemble=args.ensemble,
        epochs=args.epochs,
        hidden=hidden,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        calibration=args.calibration,
        seed=args.seed,
        verbose=_progress(args),
    )
    result = tabular.fit_table(data, args.out, options, overwrite=args.overwrite)
    print(_fit_report(result))
    return 0


def _fit_report(result):
    m = result.metrics
    lines = [
        f"trained {result.epochs} epochs on {m['n_train']} rows (validation {m['n_val']}, "
        f"calibration {m['n_calibration']}, test {m['n_test']}) in {m['seconds']:.1f} s",
        f"test NLL {m['nll']:.4f}  RMSE {m['rmse']:.4g}  CRPS {m['crps']:.4g}  "
        f"miscalibration area {m['miscalibration_area']:.3f}",
    ]
    for label, key in (("network", "before_calibration"), (m["calibration"], "after_calibration")):
        if key in m:
            s = m[key]
            lines.append(
                f"{label:>10}: 90% coverage {s['coverage_90']:.3f} (width {s['width_90']:.4g})  "
                f"50% coverage {s['coverage_50']:.3f} (width {s['width_50']:.4g})"
            )
    lines.append(
        f"wrote {result.out_dir}/: model.keras, probnn_model.json, calibration.json, split.csv, "
        "metrics.json, calibration.png"
    )
    return "\n".join(lines)


def _predict(args):
    from probnn.apps import tabular

    job = tabular.read_prediction_job(
        args.model_dir,
        args.data,
        interval=args.interval,
        output=args.output,
        overwrite=args.overwrite,
        sep=tabular.separator(args.sep),
        mark_split=args.mark_split,
    )
    _import_tensorflow(args.verbose)
    table = tabular.run_prediction(job)
    if args.output is None:
        tabular.write_table(table, sys.stdout)
    else:
        print(f"wrote {len(table.rows)} rows to {args.output}", file=sys.stderr)
    return 0


def _bench_uci(args):
    from probnn.apps import uci_benchmark

    job = uci_benchmark.check_cli_arguments(args)  # before TensorFlow: data folder, names, output
    if not job.table_only and job.jobs == 1:
        _import_tensorflow(args.verbose)
    print(uci_benchmark.run_job(job, log=lambda line: print(line, flush=True)))
    return 0


# ----------------------------------------------------------------- parser


def _add_demo_parser(commands):
    """`probnn demo`: its options."""
    demo = commands.add_parser(
        "demo",
        help="train a heteroscedastic regression model on built-in data and report NLL, RMSE, coverage",
        description="Train a Normal-head MLP on y = x³ + (0.3 + 0.4x²)·ε and compare its test NLL, "
        "RMSE and 90% interval coverage with the true distribution's. Writes the figure "
        f"heteroscedastic.png into the folder given by --out (default: ./{DEMO_DIR}/, "
        "created in the current folder).",
    )
    demo.add_argument(
        "--out",
        "--output",
        dest="out",
        default=DEMO_DIR,
        metavar="DIR",
        help="folder for the figure (default: ./%(default)s/)",
    )
    demo.add_argument(
        "--epochs", type=_positive_int, default=300, help="maximum epochs (default: %(default)s)"
    )
    demo.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    _common(demo)
    demo.set_defaults(run=_demo)


def _add_fit_data_arguments(parser):
    """`probnn fit`'s options about the CSV file: the data, target, inputs and separator."""
    parser.add_argument("data", metavar="DATA.csv", help="comma-separated file with a header line")
    parser.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    parser.add_argument("--features", metavar="A,B,...", help="input columns (default: all others)")
    parser.add_argument(
        "--drop", metavar="A,B,...", help="columns to leave out of the inputs (e.g. a saved row index)"
    )
    parser.add_argument(
        "--sep",
        default=",",
        metavar="CHAR",
        help="field separator of DATA.csv: one character, or 'tab' (default: ',')",
    )


def _add_fit_training_arguments(parser):
    """`probnn fit`'s options about the model, its training and calibration, and the output folder."""
    parser.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default="conformal",
        help="how the predictive intervals are calibrated on held-out rows (default: %(default)s; see above)",
    )
    parser.add_argument(
        "--head", choices=HEADS, default="normal", help="predictive distribution (default: %(default)s)"
    )
    parser.add_argument(
        "--ensemble",
        type=_positive_int,
        default=1,
        metavar="M",
        help="train an ensemble of M networks (default: 1)",
    )
    parser.add_argument(
        "--epochs", type=_positive_int, default=1000, help="maximum epochs (default: %(default)s)"
    )
    parser.add_argument(
        "--patience",
        type=_positive_int,
        default=50,
        help="early stopping: epochs without validation improvement (default: %(default)s)",
    )
    parser.add_argument(
        "--hidden", default="64,64", metavar="N,N,...", help="hidden layer sizes (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=_positive_int, default=64, help="(default: %(default)s)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--out", default=FIT_DIR, metavar="DIR", help="model folder to write (default: ./%(default)s/)"
    )


def _add_fit_parser(commands):
    """`probnn fit`: its options."""
    fit = commands.add_parser(
        "fit",
        help="train a probabilistic regression model on a CSV file",
        description="Train an MLP with a distribution head on DATA.csv: standardise the columns, "
        "hold out validation rows (early stopping), calibration rows (the calibrator) and test rows "
        "(the reported metrics), and write model.keras, probnn_model.json, calibration.json (the "
        "fitted calibrator, applied by 'probnn predict'), split.csv (the role of every row: train, "
        "validation, calibration or test), metrics.json (NLL, RMSE, CRPS, miscalibration area; "
        "50% and 90% coverage, width and NLL before and after calibration) and calibration.png "
        "into DIR. " + CALIBRATION_HELP,
        epilog=XLA_CACHE_HELP,
    )
    _add_fit_data_arguments(fit)
    _add_fit_training_arguments(fit)
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _common(fit)
    fit.set_defaults(run=_fit)


def _add_predict_parser(commands):
    """`probnn predict`: its options."""
    predict = commands.add_parser(
        "predict",
        help="predict a CSV file with a model folder written by 'probnn fit'",
        description="Write DATA.csv with four columns appended: <target>_mean, <target>_std, and the "
        "<target>_lower / <target>_upper bounds of the central --interval, in the target's units, "
        "calibrated by the calibrator the model folder holds (calibration.json, see 'probnn fit "
        "--help'; with 'conformal', mean and std are the network's and the bounds are the conformal "
        "interval at the --interval level).",
        epilog=XLA_CACHE_HELP,
    )
    predict.add_argument("model_dir", metavar="DIR", help="folder written by 'probnn fit'")
    predict.add_argument("data", metavar="DATA.csv", help="rows to predict (needs the model's input columns)")
    predict.add_argument(
        "--interval",
        type=_probability,
        default=0.9,
        help="probability of the central interval (default: %(default)s)",
    )
    predict.add_argument("--output", metavar="FILE", help="CSV file to write (default: standard output)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    predict.add_argument(
        "--sep",
        default=",",
        metavar="CHAR",
        help="field separator of DATA.csv: one character, or 'tab' (default: ',')",
    )
    predict.add_argument(
        "--mark-split",
        action="store_true",
        help="DATA.csv is the training file: append a 'split' column with each row's "
        "role (train, validation, calibration, test) from DIR/split.csv",
    )
    _common(predict, seed=False)
    predict.set_defaults(run=_predict)


def _add_uci_run_arguments(parser):
    """`probnn bench uci`'s options about what to run: data, data sets, splits, methods, epochs."""
    parser.add_argument(
        "--data-dir",
        metavar="PATH",
        help="folder with one sub-folder per data set (data.txt, index_*.txt, ...)",
    )
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="data sets (default: all in PATH)")
    parser.add_argument(
        "--splits", type=_positive_int, metavar="K", help="first K splits of each (default: all)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help="methods (default: all available; see the table header)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 splits, a smaller hyperparameter grid and fewer epochs"
    )
    parser.add_argument(
        "--epochs-factor",
        type=_positive_int,
        metavar="F",
        help="cap training at F x the data set's n_epochs.txt epochs, early stopping within "
        "(default: 10, the 2018 protocol; 5 with --quick)",
    )


def _add_uci_output_arguments(parser):
    """`probnn bench uci`'s options about the outputs: table file, results folder, processes."""
    parser.add_argument("--output", metavar="FILE", help="also write the table (Markdown) here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--results-dir",
        metavar="DIR",
        help="write one JSON file per (data set, method) here as each finishes, skip pairs "
        "already there, and build the table from every file in DIR",
    )
    parser.add_argument(
        "--rerun", action="store_true", help="with --results-dir: run and replace existing pairs"
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="with --results-dir: run the data sets in N processes (one per core; default 1)",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="with --results-dir: print the table of the results files, train nothing",
    )


def _add_bench_parser(commands):
    """`probnn bench` and its suite `probnn bench uci`: their options."""
    bench = commands.add_parser(
        "bench", help="run a benchmark protocol", description="Benchmarks with published reference numbers."
    )
    suites = bench.add_subparsers(dest="suite", metavar="SUITE", required=True)
    uci = suites.add_parser(
        "uci",
        help="the UCI regression benchmark (standard splits, test log likelihood and RMSE)",
        description="Train each method on the standard splits of the UCI regression data sets, "
        "choosing hyperparameters on a validation part of each training split, and print test log "
        "likelihood and RMSE (original units, mean ± standard error over splits) with the "
        "published MC-dropout and deep-ensemble figures.",
    )
    _add_uci_run_arguments(uci)
    _add_uci_output_arguments(uci)
    _common(uci)
    uci.set_defaults(run=_bench_uci)


def build_parser():
    """The argument parser of the `probnn` command (importing nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="probnn",
        description="Probabilistic deep learning on TensorFlow Probability and Keras 3.",
        epilog="Run 'probnn COMMAND --help' for the options of a command. " + XLA_CACHE_HELP,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_demo_parser(commands)
    _add_fit_parser(commands)
    _add_predict_parser(commands)
    _add_bench_parser(commands)
    return parser


# ----------------------------------------------------------------- start-up


@contextlib.contextmanager
def _stderr_to_file():
    """Send file descriptor 2 to a temporary file; yield the file; restore fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _use_xla_cache():
    """Keep XLA's compiled programs on disk between runs of the command.

    A command started afresh for every CSV otherwise recompiles the same
    training loop each time (measured: first fit 8-10 s without, 3-3.5 s with
    the cache on a loaded 2-core machine; docs/design.md, "Compile once,
    reuse"). The cache is `$XDG_CACHE_HOME/probnn/xla` (default
    `~/.cache/probnn/xla`); `PROBNN_XLA_CACHE=0` turns it off, and a cache
    directory already in `TF_XLA_FLAGS` is left alone.
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" in flags or os.environ.get("PROBNN_XLA_CACHE") == "0":
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "probnn", "xla")
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={path}".strip()


def _import_tensorflow(verbose):
    """Import TensorFlow and Keras (which registers probnn's serializables), quietly unless `verbose`."""
    _use_xla_cache()

    if verbose:
        from probnn import _quiet

        _quiet.undo()  # `import probnn` hid TensorFlow's start-up lines; --verbose shows them
        import keras  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    failure = None
    with _stderr_to_file() as sink:
        try:
            import keras  # noqa: F401
            import tensorflow as tf
        except Exception as error:  # replayed below, once fd 2 is back
            sink.seek(0)
            failure = (error, sink.read().decode(errors="replace").strip())
    if failure is not None:
        sys.stderr.write(failure[1] + "\n" if failure[1] else "")
        raise RuntimeError(f"importing TensorFlow failed: {failure[0]}") from failure[0]
    tf.get_logger().setLevel("ERROR")


def main(argv=None):
    """Run the `probnn` command with `argv` (default: `sys.argv[1:]`); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from probnn import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    name = "probnn " + args.command + (f" {args.suite}" if getattr(args, "suite", None) else "")
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `probnn predict ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError) as error:
        if args.verbose:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if not message.startswith("probnn"):
            message = f"{name}: {message}"
        print(message, file=sys.stderr)
        return 2
    except Exception as error:  # an unexpected failure: still one line, unless --verbose
        if args.verbose:
            raise
        first = " ".join(str(error).split())[:300]
        print(f"{name}: {type(error).__name__}: {first} (run with --verbose for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
