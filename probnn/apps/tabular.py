"""Regression on a CSV table: the jobs behind `probnn fit` and `probnn predict`.

`fit_csv` reads a table, uses one numeric column as the target and the others
(or a chosen subset) as inputs, standardises both with the statistics of the
training rows, holds out a validation part (early stopping), a calibration
part (the calibrator, `probnn.apps.calibrator`) and a test part (the reported
metrics), trains an MLP with a probnn distribution head with `probnn.fit`,
calibrates it, and writes a model folder:

    model.keras           the trained Keras model (inputs and target standardised)
    probnn_model.json     columns, standardisation statistics, head, calibration method,
                          probnn version, the training file's row count and SHA-256
    calibration.json      the fitted calibrator (conformal scores, std factor or isotonic knots)
    split.csv             every data row of the training file: row (0-based), line, role
                          (train / validation / calibration / test)
    metrics.json          test NLL, RMSE, MAE, CRPS, 90 % coverage and width, calibration errors
                          (`probnn.metrics`), in the target's original units; 50 % and 90 %
                          coverage, width and NLL before and after calibration
    calibration.png       observed vs nominal coverage of central intervals, before and after

`predict_csv` reads such a folder and a table with the same input columns and
returns the table with the predictive mean, standard deviation and calibrated
central interval bounds, in the target's original units, appended to every row
(and with `mark_split`, each row's role in the training split).

Every problem with the input (a missing or non-numeric column, NaN, an empty
file, too few rows, a column that looks like a row index, a file separated by
another character than `sep`, a folder that is not a model folder or holds a
damaged model file, an output that exists) raises `TableError`, a
`ValueError` with a one-line message, before TensorFlow is needed.
"""

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import pathlib
import time
import zipfile

import numpy as np

from probnn._validation import positive_int, probability
from probnn.apps.calibrator import CALIBRATION_FILE as CALIBRATOR_FILE
from probnn.apps.calibrator import CommandCalibrator
from probnn.apps.choices import CALIBRATIONS, HEADS
from probnn.datasets.standardise import Standardisation, shuffled_split

MODEL_FILE = "model.keras"
INFO_FILE = "probnn_model.json"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.png"
SPLIT_FILE = "split.csv"
MIN_ROWS = 20


class TableError(ValueError):
    """Bad input to `fit_csv` / `predict_csv`; the message is one line."""


@contextlib.contextmanager
def _as_table_error():
    """Raise the `ValueError` of a shared check (`probnn._validation`) as a `TableError`, same message."""
    try:
        yield
    except TableError:
        raise
    except ValueError as error:
        raise TableError(str(error)) from None


# ------------------------------------------------------------------ reading


@dataclasses.dataclass
class Table:
    """A CSV file as text: the header and the rows, unchanged."""

    path: pathlib.Path
    columns: list
    rows: list
    sha256: str = ""

    def numeric(self, names, owner, *, missing="refuse"):
        """The named columns as a float64 array (rows, len(names)); TableError if not numbers.

        An empty cell, NaN or inf is refused (`missing="refuse"`, what `probnn
        fit` and `probnn predict` need) or read as NaN (`missing="nan"`: the
        caller drops those rows, as the example scripts do).
        """
        if missing not in ("refuse", "nan"):
            raise ValueError(f"Table.numeric: missing must be 'refuse' or 'nan', got {missing!r}")
        absent = [name for name in names if name not in self.columns]
        if absent:
            raise TableError(
                f"{owner}: {self.path} has no column {absent[0]!r} (columns: {', '.join(self.columns)})"
            )
        out = np.empty((len(self.rows), len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            k = self.columns.index(name)
            for i, row in enumerate(self.rows):
                text = row[k].strip()
                if not text and missing == "nan":
                    out[i, j] = np.nan
                    continue
                if not text:
                    raise TableError(
                        f"{owner}: column {name!r} of {self.path} has a missing value (line {i + 2}); "
                        "drop or fill those rows first"
                    )
                try:
                    value = float(text)
                except ValueError:
                    raise TableError(
                        f"{owner}: column {name!r} of {self.path} is not numeric (line {i + 2}: {text!r})"
                    ) from None
                if not math.isfinite(value) and missing != "nan":
                    raise TableError(
                        f"{owner}: column {name!r} of {self.path} has a missing or infinite value "
                        f"(line {i + 2}: {text!r}); drop or fill those rows first"
                    )
                out[i, j] = value
        return out


def separator(text):
    """The one-character field separator that `--sep` names ("tab" or "\\t" for a tab).

    Example:
    >>> separator(";"), separator("tab") == chr(9)
    (';', True)
    """
    text = {"tab": "\t", "\\t": "\t"}.get(text, text)
    if len(text) != 1:
        raise TableError(f"--sep must be one character (or 'tab'), got {text!r}")
    return text


def _separator_hint(columns, sep, path, owner):
    """A one-column header holding ';' or a tab: the file uses another separator."""
    if len(columns) != 1:
        return
    for char, name in ((";", "';'"), ("\t", "tab"), (",", "','")):
        if char != sep and char in columns[0]:
            raise TableError(
                f"{owner}: the header of {path} holds {name} characters but no {sep!r}: "
                f"pass --sep {name} if the columns are separated by {name}"
            )


def read_table(path, owner="read_table", sep=","):
    """Read a file of `sep`-separated fields with a header line into a `Table`.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("x,y\\n1,2\\n3,4\\n")
    >>> read_table(path).rows
    [['1', '2'], ['3', '4']]
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise TableError(f"{owner}: no such file: {path}")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
        lines = [
            row
            for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep)
            if row and any(cell.strip() for cell in row)
        ]
    except (UnicodeDecodeError, csv.Error) as error:
        raise TableError(f"{owner}: {path} is not a readable CSV text file ({error})") from None
    if not lines:
        raise TableError(f"{owner}: {path} is empty (expected a header line and data rows)")
    columns = [name.strip() for name in lines[0]]
    _separator_hint(columns, sep, path, owner)
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise TableError(f"{owner}: {path} has the column {duplicates[0]!r} more than once")
    rows = lines[1:]
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise TableError(
                f"{owner}: line {i + 2} of {path} has {len(row)} fields, the header has {len(columns)}"
            )
    return Table(path, columns, rows, hashlib.sha256(raw).hexdigest())


# ------------------------------------------------------------------ the model folder


def _check_new_output(path, overwrite, owner, what="output folder"):
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise TableError(f"{owner}: {what} {path} is a file, not a folder (choose another --out)")
    if path.exists() and not overwrite:
        if path.is_dir() and not any(path.iterdir()):
            return path
        raise TableError(f"{owner}: {what} {path} already exists (pass --overwrite to replace it)")
    return path


def build_model(n_features, head="normal", hidden=(64, 64), *, x_adapt=None, seed=0):
    """The MLP that `probnn fit` trains: ReLU hidden layers and a probnn head.

    Example:
    >>> build_model(3, "mixture").output_shape
    (None, 9)
    """
    import keras

    import probnn

    if head not in HEADS:
        raise TableError(f"build_model: head must be one of {', '.join(HEADS)}, got {head!r}")
    layers = [keras.Input((n_features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    head_layer = probnn.heads.by_name(head)
    model = keras.Sequential([*layers, head_layer], name=f"probnn_{head.replace('-', '_')}")
    if head == "rbf-mixture" and x_adapt is not None:
        body = keras.Sequential(model.layers[:-1])
        head_layer.adapt(np.asarray(body.predict(x_adapt, verbose=0)), seed=seed)
    return model


# ------------------------------------------------------------------ the two jobs


@dataclasses.dataclass
class FitResult:
    """What `fit_csv` wrote and measured."""

    out_dir: pathlib.Path
    metrics: dict
    epochs: int


@dataclasses.dataclass
class TrainingTable:
    """A checked CSV table, split and standardised for `fit_table` (no TensorFlow needed)."""

    path: pathlib.Path
    target: str
    features: list
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    scaling: Standardisation  # of the training rows
    calibration: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=int))
    sha256: str = ""

    def roles(self):
        """The role of every data row: 'train', 'validation', 'calibration' or 'test'."""
        roles = np.empty(self.y.shape[0], dtype=object)
        for rows, role in (
            (self.train, "train"),
            (self.val, "validation"),
            (self.calibration, "calibration"),
            (self.test, "test"),
        ):
            roles[rows] = role
        return roles

    def xs(self, rows):
        """The standardised inputs of `rows` (float32)."""
        return self.scaling.standardise_inputs(self.x[rows])

    def ys(self, rows):
        """The standardised targets of `rows` (float32, shape (len(rows), 1))."""
        return self.scaling.standardise_targets(self.y[rows])


INDEX_NAMES = ("index", "unnamed: 0")


def _check_index_column(table, name, owner):
    """Refuse an unnamed input column, or one named like an index whose values are 0..n-1 or 1..n."""
    if name and name.lower() not in INDEX_NAMES:
        return
    try:
        values = np.array([float(row[table.columns.index(name)]) for row in table.rows])
    except ValueError:
        values = None
    n = len(table.rows)
    looks = (
        values is not None
        and n > 0
        and (np.array_equal(values, np.arange(n)) or np.array_equal(values, np.arange(1, n + 1)))
    )
    if name and not looks:
        return
    what = "has no name" if not name else "holds the row numbers"
    raise TableError(
        f"{owner}: column {name!r} of {table.path} {what}: it looks like a saved row index, "
        f"not an input; pass --drop {name!r} to leave it out, or --features to choose the inputs"
    )


def _input_columns(table, target, features, drop, owner):
    """The input columns: `features`, or every column but the target and `drop` (index columns refused)."""
    for name in list(drop or []) + list(features or []):
        if name not in table.columns:
            raise TableError(
                f"{owner}: {table.path} has no column {name!r} (columns: {', '.join(table.columns)})"
            )
    if features is not None:
        return list(features)
    features = [c for c in table.columns if c != target and c not in (drop or [])]
    for name in features:
        _check_index_column(table, name, owner)
    return features


def read_training_table(
    path,
    target,
    *,
    features=None,
    drop=None,
    val_fraction=0.15,
    calibration_fraction=0.15,
    test_fraction=0.15,
    seed=0,
    sep=",",
    owner="probnn fit",
):
    """Read and check a CSV table and split its rows into training, validation, calibration and test parts.

    Rows are shuffled by `seed`; inputs and target are standardised with the
    training part's mean and standard deviation (a constant input is left
    unscaled). Raises `TableError` for a missing, non-numeric or incomplete
    column, an input column that looks like a saved row index, a constant
    target, or fewer than `MIN_ROWS` rows. `calibration_fraction=0` holds out
    no calibration rows.

    Example:
    >>> import pathlib, tempfile, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("x,y\\n" + "".join(f"{a},{2 * a}\\n" for a in range(40)))
    >>> data = read_training_table(path, "y")
    >>> data.features, len(data.train), len(data.val), len(data.calibration), len(data.test)
    (['x'], 22, 6, 6, 6)
    """
    table = read_table(path, owner, sep=sep)
    if target not in table.columns:
        raise TableError(
            f"{owner}: {table.path} has no column {target!r} (columns: {', '.join(table.columns)})"
        )
    features = _input_columns(table, target, features, drop, owner)
    if target in features:
        raise TableError(f"{owner}: the target column {target!r} cannot also be an input")
    if not features:
        raise TableError(f"{owner}: {table.path} has no input column besides the target {target!r}")
    x = table.numeric(features, owner)
    y = table.numeric([target], owner)
    n = x.shape[0]
    if n < MIN_ROWS:
        raise TableError(
            f"{owner}: {table.path} has {n} data rows; at least {MIN_ROWS} are needed "
            "to hold out validation and test rows"
        )
    test, val, calibration, train = shuffled_split(
        n, (test_fraction, val_fraction, calibration_fraction), seed
    )
    with _as_table_error():
        scaling = Standardisation.fit(x[train], y[train], owner=owner, target=target)
    return TrainingTable(
        table.path, target, features, x, y, train, val, test, scaling, calibration, table.sha256
    )


def check_fit_arguments(
    out_dir, *, head="normal", ensemble=1, calibration="conformal", overwrite=False, owner="probnn fit"
):
    """Check `fit_table`'s options before any work is done; return the output folder path."""
    if head not in HEADS:
        raise TableError(f"{owner}: --head must be one of {', '.join(HEADS)}, got {head!r}")
    with _as_table_error():
        positive_int(owner, "--ensemble", ensemble, whole_floats=True)
    if calibration not in CALIBRATIONS:
        raise TableError(
            f"{owner}: --calibration must be one of {', '.join(CALIBRATIONS)}, got {calibration!r}"
        )
    return _check_new_output(out_dir, overwrite, owner)


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """The training and calibration options of `fit_table` (the `probnn fit` flags of the same names)."""

    head: str = "normal"
    ensemble: int = 1
    epochs: int = 1000
    hidden: tuple = (64, 64)
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 50
    calibration: str = "conformal"
    seed: int = 0
    verbose: int = 0


def _train(data, options):
    """Build and train the model (early stopping on the validation rows); returns `(model, epochs run)`."""
    import keras

    import probnn

    keras.utils.set_random_seed(options.seed)
    x_train = data.xs(data.train)

    def build():
        return build_model(
            len(data.features), options.head, options.hidden, x_adapt=x_train, seed=options.seed
        )

    model = probnn.Ensemble(build, members=int(options.ensemble)) if options.ensemble > 1 else build()
    history = probnn.fit(
        model,
        x_train,
        data.ys(data.train),
        optimizer=keras.optimizers.Adam(options.learning_rate),
        epochs=int(options.epochs),
        batch_size=int(options.batch_size),
        validation_data=(data.xs(data.val), data.ys(data.val)),
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=int(options.patience), restore_best_weights=True
            )
        ],
        verbose=options.verbose,
        seed=options.seed,
    )
    return model, len(history.epoch)


def interval_scores(calibrator, dist, y, *, loc=0.0, scale=1.0, levels=(0.5, 0.9)):
    """Coverage, mean width (original units) and NLL of `calibrator` applied to `dist` at targets `y`.

    `dist` predicts `(y - loc) / scale`. The NLL is None for the conformal
    method (it calibrates intervals, not a density).

    Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=4000)
    >>> s = interval_scores(CommandCalibrator("none"), (np.zeros(4000), np.ones(4000)), y)
    >>> round(s["coverage_90"], 2), round(s["width_50"], 2), round(s["nll"], 2)
    (0.9, 1.35, 1.42)
    """
    import probnn

    z = (np.asarray(y, dtype=np.float64).reshape(-1) - loc) / scale
    scores = {}
    for level in levels:
        lower, upper = calibrator.interval(dist, level)
        name = f"{100 * level:g}".replace(".", "_")
        scores[f"coverage_{name}"] = float(np.mean((lower <= z) & (z <= upper)))
        scores[f"width_{name}"] = float(np.mean(upper - lower) * scale)
    calibrated = calibrator.distribution(dist)
    scores["nll"] = None if calibrated is None else float(probnn.metrics.nll(calibrated, z)) + math.log(scale)
    return scores


def _calibrated_curve(calibrator, dist, z):
    """Observed coverage of the calibrated central intervals at 99 levels: `(expected, observed)`."""
    expected = np.linspace(0.01, 0.99, 99)
    observed = []
    for level in expected:
        lower, upper = calibrator.interval(dist, level)
        observed.append(np.mean((lower <= z) & (z <= upper)))
    return expected, np.asarray(observed)


def _calibrate(model, data, method):
    """Fit the calibrator on the calibration rows; score the test rows before and after.

    Returns `(calibrator, metrics, dist, calibrated_curve)`: metrics as
    `Standardisation.scores`' plus "before_calibration" and
    "after_calibration" blocks; `dist` the network's predictive of the test
    rows; the calibrated intervals' curve (None for "none").
    """
    import probnn

    dist = probnn.predict_distribution(model, data.xs(data.test))
    y_test, scale = data.y[data.test], dict(loc=data.scaling.y_mean, scale=data.scaling.y_std)
    metrics = data.scaling.scores(dist, y_test)
    metrics["before_calibration"] = interval_scores(CommandCalibrator("none"), dist, y_test, **scale)
    calibrator, curve = CommandCalibrator(method), None
    if method != "none":
        calibrator.fit(
            probnn.predict_distribution(model, data.xs(data.calibration)),
            data.ys(data.calibration).reshape(-1),
        )
        metrics["after_calibration"] = interval_scores(calibrator, dist, y_test, **scale)
        curve = _calibrated_curve(calibrator, dist, data.ys(data.test).reshape(-1))
    return calibrator, metrics, dist, curve


def _write_split(data, path):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["row", "line", "role"])
        writer.writerows([i, i + 2, role] for i, role in enumerate(data.roles()))


def _write_calibration_figure(data, dist, calibrated_curve, path):
    """`calibration.png`: the network's calibration curve on the test rows, and the calibrated one if any."""
    from probnn.plotting import plot_calibration_curve

    z = data.ys(data.test).reshape(-1)
    title = f"{data.target}: calibration on {data.test.size} test rows"
    fig = plot_calibration_curve(
        dist, z, label="network" if calibrated_curve is not None else "model", title=title
    )
    if calibrated_curve is not None:
        plot_calibration_curve(curve=calibrated_curve, ax=fig.axes[0], label="calibrated")
    fig.savefig(path, dpi=110)


def _model_record(data, options):
    """The `probnn_model.json` record: what `probnn predict` needs to read the model folder."""
    import probnn

    return {
        "format": "probnn-model/1",
        "probnn_version": probnn.__version__,
        "target": data.target,
        "features": data.features,
        "head": options.head,
        "ensemble": int(options.ensemble),
        "calibration": options.calibration,
        "x_mean": data.scaling.x_mean.tolist(),
        "x_std": data.scaling.x_std.tolist(),
        "y_mean": data.scaling.y_mean,
        "y_std": data.scaling.y_std,
        "training_rows": int(data.y.shape[0]),
        "training_sha256": data.sha256,
    }


def _describe_run(metrics, data, options, epochs_run, seconds):
    """Add the split sizes, the options and the run time to the test metrics."""
    metrics.update(
        n_train=int(data.train.size),
        n_val=int(data.val.size),
        n_calibration=int(data.calibration.size),
        n_test=int(data.test.size),
        epochs=epochs_run,
        head=options.head,
        ensemble=int(options.ensemble),
        calibration=options.calibration,
        target=data.target,
        features=data.features,
        seconds=round(seconds, 2),
        note="metrics on the test rows (never used in training, early stopping or calibration), "
        "original units; the top-level scores are the network's own, before calibration",
    )
    return metrics


def fit_table(data, out_dir, options=FitOptions(), *, overwrite=False):
    """Train on a `TrainingTable`, calibrate, and write the model folder `out_dir` (see the module docstring).

    Training (`options`, a `FitOptions`) stops early on the validation NLL
    and keeps the best weights; the calibrator (`options.calibration`, one of
    `CALIBRATIONS`) is fitted on the calibration rows; the metrics are those
    of the test part, in original units. With `options.ensemble=M > 1` the
    model is a `probnn.Ensemble` of M networks. Returns a `FitResult`.
    """
    started = time.perf_counter()
    out_dir = check_fit_arguments(
        out_dir,
        head=options.head,
        ensemble=options.ensemble,
        calibration=options.calibration,
        overwrite=overwrite,
    )
    if options.calibration != "none" and data.calibration.size == 0:
        raise TableError(
            f"probnn fit: --calibration {options.calibration} needs calibration rows; the split has none"
        )
    model, epochs_run = _train(data, options)
    calibrator, metrics, dist, calibrated_curve = _calibrate(model, data, options.calibration)
    _describe_run(metrics, data, options, epochs_run, time.perf_counter() - started)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILE)
    (out_dir / INFO_FILE).write_text(json.dumps(_model_record(data, options), indent=2) + "\n")
    (out_dir / CALIBRATOR_FILE).write_text(json.dumps(calibrator.to_json()) + "\n")
    _write_split(data, out_dir / SPLIT_FILE)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    _write_calibration_figure(data, dist, calibrated_curve, out_dir / CALIBRATION_FILE)
    return FitResult(out_dir, metrics, epochs_run)


def fit_csv(path, target, out_dir, *, features=None, drop=None, sep=",", seed=0, overwrite=False, **options):
    """Train a probabilistic regression model on a CSV table and write a model folder.

    `read_training_table(path, target, features=..., drop=..., sep=..., seed=...)`
    followed by `fit_table(data, out_dir, FitOptions(seed=..., **options), overwrite=...)`;
    see those. With `calibration="none"` no calibration rows are held out.

    Example:
    >>> import pathlib, tempfile, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "d.csv").write_text("x,y\\n" + "".join(f"{a},{2 * a}\\n" for a in range(60)))
    >>> fit_csv(folder / "d.csv", "y", folder / "m", epochs=2).metrics["n_test"]  # doctest: +SKIP
    9
    """
    options = FitOptions(seed=seed, **options)
    check_fit_arguments(
        out_dir,
        head=options.head,
        ensemble=options.ensemble,
        calibration=options.calibration,
        overwrite=overwrite,
    )
    data = read_training_table(
        path,
        target,
        features=features,
        drop=drop,
        sep=sep,
        seed=seed,
        calibration_fraction=0.0 if options.calibration == "none" else 0.15,
    )
    return fit_table(data, out_dir, options, overwrite=overwrite)


def read_model_record(model_dir, owner="probnn predict"):
    """Check that `model_dir` is a folder written by `fit_table`; return its `probnn_model.json` record.

    Needs no TensorFlow: `model.keras` is checked to be a complete zip archive
    (a truncated or damaged file is named as such). Raises `TableError` for
    anything else.
    """
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        raise TableError(f"{owner}: no such folder: {model_dir}")
    info_path, model_path = model_dir / INFO_FILE, model_dir / MODEL_FILE
    if not info_path.is_file() or not model_path.is_file():
        raise TableError(
            f"{owner}: {model_dir} is not a probnn model folder (expected {INFO_FILE} and "
            f"{MODEL_FILE}, as written by probnn fit)"
        )
    _check_model_file(model_path, owner)
    try:
        info = json.loads(info_path.read_text())
        missing = [k for k in ("target", "features", "x_mean", "x_std", "y_mean", "y_std") if k not in info]
        if missing:
            raise ValueError(f"no {missing[0]!r} entry")
    except (ValueError, TypeError) as error:
        raise TableError(f"{owner}: {info_path} is not a valid probnn model record ({error})") from None
    return info


def _check_model_file(path, owner):
    """A `.keras` file is a zip archive; a truncated or overwritten one fails here, before TensorFlow."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise TableError(
            f"{owner}: {path} exists but is not a complete Keras model file "
            f"(truncated or damaged: {error}); run probnn fit again"
        ) from None
    if damaged is not None:
        raise TableError(
            f"{owner}: {path} exists but is damaged (bad entry {damaged!r}); run probnn fit again"
        )


def read_calibrator(model_dir, owner="probnn predict"):
    """The `CommandCalibrator` stored in a model folder (method "none" for a folder without one)."""
    path = pathlib.Path(model_dir) / CALIBRATOR_FILE
    if not path.is_file():
        return CommandCalibrator("none")
    try:
        return CommandCalibrator.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as error:
        raise TableError(f"{owner}: {path} is not a valid calibrator record ({error})") from None


def read_split_roles(model_dir, table, info, owner="probnn predict"):
    """The training role of every row of `table`, which must be the file `model_dir` was trained on."""
    path = pathlib.Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        raise TableError(f"{owner}: --mark-split needs {path}, which this model folder lacks")
    if info.get("training_sha256") not in (None, table.sha256) or len(table.rows) != info.get(
        "training_rows", len(table.rows)
    ):
        raise TableError(
            f"{owner}: --mark-split: {table.path} is not the file this model was trained on "
            f"({info.get('training_rows')} rows, SHA-256 {str(info.get('training_sha256'))[:12]}...)"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    roles = [""] * len(table.rows)
    for record in records:
        roles[int(record["row"])] = record["role"]
    return roles


def load_model_folder(model_dir, owner="probnn predict"):
    """The Keras model and the `probnn_model.json` record of a folder written by `fit_table`."""
    import keras

    import probnn  # noqa: F401  (registers the heads for load_model)

    info = read_model_record(model_dir, owner)
    model_path = pathlib.Path(model_dir) / MODEL_FILE
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # any failure to read the file is a problem of the user's folder
        first = " ".join(str(error).split())[:200] or type(error).__name__
        raise TableError(f"{owner}: cannot load {model_path}: {first}") from None
    return model, info


@dataclasses.dataclass
class PredictionJob:
    """Checked inputs of a prediction (see `read_prediction_job`); needs no TensorFlow."""

    model_dir: pathlib.Path
    info: dict
    table: Table
    x: np.ndarray
    interval: float
    output: object
    calibrator: CommandCalibrator = None
    roles: list = None


def read_prediction_job(
    model_dir,
    path,
    *,
    interval=0.9,
    output=None,
    overwrite=False,
    sep=",",
    mark_split=False,
    owner="probnn predict",
):
    """Check a model folder, a CSV table and the options of a prediction; no TensorFlow needed."""
    with _as_table_error():
        interval = probability(owner, "--interval", interval)
    if output is not None:
        output = pathlib.Path(output)
        if output.exists() and not overwrite:
            raise TableError(f"{owner}: output file {output} already exists (pass --overwrite to replace it)")
        if output.is_dir():
            raise TableError(f"{owner}: output {output} is a folder, not a file")
    info = read_model_record(model_dir, owner)
    calibrator = read_calibrator(model_dir, owner)
    table = read_table(path, owner, sep=sep)
    if not table.rows:
        raise TableError(f"{owner}: {table.path} has a header but no data rows")
    x = table.numeric(info["features"], owner)
    clash = [name for name in _prediction_columns(info["target"], mark_split) if name in table.columns]
    if clash:
        raise TableError(f"{owner}: {table.path} already has a column {clash[0]!r}")
    roles = read_split_roles(model_dir, table, info, owner) if mark_split else None
    return PredictionJob(pathlib.Path(model_dir), info, table, x, float(interval), output, calibrator, roles)


def _prediction_columns(target, mark_split=False):
    return [f"{target}_{suffix}" for suffix in ("mean", "std", "lower", "upper")] + (
        ["split"] if mark_split else []
    )


def run_prediction(job):
    """Predict a `PredictionJob`: the input table with columns appended; written to `job.output` if set.

    The interval bounds are the calibrated ones (the folder's calibrator);
    the mean and standard deviation are the recalibrated distribution's for
    "std" and "isotonic", the network's for "conformal" and "none".
    """
    import probnn

    model, info = load_model_folder(job.model_dir)
    scaling = Standardisation(
        np.asarray(info["x_mean"]), np.asarray(info["x_std"]), float(info["y_mean"]), float(info["y_std"])
    )
    x = scaling.standardise_inputs(job.x)
    dist = probnn.predict_distribution(model, x)
    calibrator = job.calibrator or CommandCalibrator("none")
    calibrated = calibrator.distribution(dist)
    summary, _ = probnn.metrics.as_predictive(dist if calibrated is None else calibrated)
    loc, scale = scaling.y_mean, scaling.y_std
    n = x.shape[0]
    mean = loc + scale * np.asarray(summary.mean(), dtype=np.float64).reshape(n)
    std = scale * np.asarray(summary.stddev(), dtype=np.float64).reshape(n)
    lower, upper = (loc + scale * b for b in calibrator.interval(dist, job.interval))
    rows = [
        row + [f"{m:.6g}", f"{s:.6g}", f"{lo:.6g}", f"{hi:.6g}"]
        for row, m, s, lo, hi in zip(job.table.rows, mean, std, lower, upper)
    ]
    if job.roles is not None:
        rows = [row + [role] for row, role in zip(rows, job.roles)]
    result = Table(
        job.output, job.table.columns + _prediction_columns(info["target"], job.roles is not None), rows
    )
    if job.output is not None:
        write_table(result, job.output)
    return result


def predict_csv(model_dir, path, *, interval=0.9, output=None, overwrite=False, sep=",", mark_split=False):
    """Predict every row of a CSV table with a model folder written by `fit_table`.

    Returns the output `Table`: the input's columns unchanged, then
    `<target>_mean`, `<target>_std`, `<target>_lower` and `<target>_upper` (the
    bounds of the calibrated central `interval`), in the target's original
    units, and with `mark_split` (on the training file only) a `split` column
    with each row's role; with `output`, also writes it there (an existing
    file only with `overwrite`).
    """
    return run_prediction(
        read_prediction_job(
            model_dir,
            path,
            interval=interval,
            output=output,
            overwrite=overwrite,
            sep=sep,
            mark_split=mark_split,
        )
    )


def write_table(table, path_or_handle):
    """Write a `Table` as CSV to a path or an open text handle."""
    if hasattr(path_or_handle, "write"):
        writer = csv.writer(path_or_handle, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        return
    path = pathlib.Path(path_or_handle)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        write_table(table, handle)
