"""The `probnn` command through its real entry point (`python -m probnn`), end to end.

Each process that trains imports TensorFlow (about 5 s), so the checks are
grouped: one demo run, one fit + predict (with calibration, the split and
--mark-split); every bad-input case is rejected before TensorFlow is imported
(well under a second), most of them in this process through `main([...])`.
"""

import contextlib
import csv
import io
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from scipy import stats

from probnn.apps.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TF_NOISE = ("absl::InitializeLog", "oneDNN", "cuda", "cpu_feature_guard", "XLA service", "I0000", "E0000")


def probnn(*args, cwd=None, check=False, prefix=()):
    """Run `python -m probnn ARGS` from a clean environment (no TF log settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, *prefix, "-m", "probnn", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"probnn {args} failed ({result.returncode}):\n{result.stderr}")
    return result


def write_csv(path, n, seed):
    """y = 2 x1 - x2 + 0.5 ε (homoscedastic Normal noise)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1, 1, n), rng.normal(size=n)
    y = 2 * x1 - x2 + 0.5 * rng.normal(size=n)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x1", "x2", "y"])
        writer.writerows([f"{a:.6f}", f"{b:.6f}", f"{c:.6f}"] for a, b, c in zip(x1, x2, y))
    return x1, x2, y


@pytest.mark.cli
def test_help_answers_without_importing_tensorflow():
    for args in (
        ["--help"],
        ["demo", "--help"],
        ["fit", "--help"],
        ["predict", "--help"],
        ["bench", "uci", "--help"],
    ):
        result = probnn(*args, prefix=("-X", "importtime"))
        assert result.returncode == 0, result.stderr
        assert "usage: probnn" in result.stdout
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "tensorflow" not in imported and "keras" not in imported, args
    assert "probnn-demo" in probnn("demo", "--help").stdout  # says where it writes


@pytest.mark.cli
def test_fit_then_predict_on_a_generated_csv(tmp_path):
    # 1300 rows: 715 train the network (as 700 did before the calibration split), 195 each
    # validate, calibrate and test.
    write_csv(tmp_path / "train.csv", 1300, seed=0)
    fit = probnn(
        "fit", "train.csv", "--target", "y", "--out", "model", "--epochs", "400", cwd=tmp_path, check=True
    )
    # The user sees probnn's lines only: none of TensorFlow's start-up or XLA messages.
    assert not [word for word in TF_NOISE if word in fit.stderr], fit.stderr
    assert re.search(r"test NLL \S+\s+RMSE", fit.stdout), fit.stdout
    folder = tmp_path / "model"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (folder / "calibration.png").read_bytes()[:8] == PNG
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_calibration"] + metrics["n_test"] == 1300
    assert metrics["calibration"] == "conformal" and metrics["n_calibration"] == 195
    # Before / after calibration on the 195 test rows: the network's own coverage is
    # the top-level one. One split's conformal coverage varies with its 195 test rows
    # (binomial s.e. sqrt(p(1-p)/195)) and its 195 calibration rows (about the same):
    # s.e. 0.030 at 90 %, 0.051 at 50 %; the bounds are 3 of them. The pooled coverage
    # over many splits is the benchmark's (benchmarks/cli_calibration.py), not a test's.
    before, after = metrics["before_calibration"], metrics["after_calibration"]
    assert before["coverage_90"] == metrics["coverage_90"] and before["nll"] == metrics["nll"]
    assert abs(after["coverage_90"] - 0.9) < 0.09 and abs(after["coverage_50"] - 0.5) < 0.152, after
    assert after["nll"] is None and after["width_90"] > 0  # conformal calibrates intervals, not a density
    # The split: every row once, with its role; the test rows are those metrics.json counted.
    with open(folder / "split.csv", newline="") as handle:
        split = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in split] == list(range(1300))
    assert [int(r["line"]) for r in split] == list(range(2, 1302))
    roles = [r["role"] for r in split]
    assert {role: roles.count(role) for role in set(roles)} == {
        "train": 715,
        "validation": 195,
        "calibration": 195,
        "test": 195,
    }
    # 195 test rows of a Normal(·, 0.5) target: the true model has RMSE 0.5 and NLL
    # 0.5 log(2π 0.25) + 0.5 = 0.726; a fitted one is worse by its estimation error
    # (measured with 150 test rows: RMSE 0.43, NLL 0.62, coverage 0.95). Bounds: RMSE < 0.6
    # (the sample RMSE of 195 N(0, 0.5) draws has a standard error of 0.025; 3 of them plus
    # 0.01 of fit error), NLL < 0.726 + 0.2, coverage within 0.9 ± 0.08 (3.7 binomial s.e.).
    assert metrics["rmse"] < 0.6, metrics
    assert metrics["nll"] < 0.726 + 0.2, metrics
    assert abs(metrics["coverage_90"] - 0.9) < 0.08, metrics
    assert 0.0 < metrics["crps"] < metrics["rmse"], metrics  # CRPS ≤ mean absolute error ≤ RMSE
    info = json.loads((folder / "probnn_model.json").read_text())
    assert info["features"] == ["x1", "x2"] and info["target"] == "y"

    # predict: one output row per input row, input columns kept verbatim; a file with
    # an extra text column and the target missing works too.
    rng = np.random.default_rng(1)
    rows = [
        [f"row{i}", f"{a:.4f}", f"{b:.4f}"]
        for i, (a, b) in enumerate(zip(rng.uniform(-1, 1, 50), rng.normal(size=50)))
    ]
    with open(tmp_path / "new.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["name", "x1", "x2"], *rows])
    probnn("predict", "model", "new.csv", "--output", "pred.csv", cwd=tmp_path, check=True)
    with open(tmp_path / "pred.csv", newline="") as handle:
        out = list(csv.reader(handle))
    assert out[0] == ["name", "x1", "x2", "y_mean", "y_std", "y_lower", "y_upper"]
    assert [row[:3] for row in out[1:]] == rows
    values = np.array([[float(v) for v in row[3:]] for row in out[1:]])
    mean, std, lower, upper = values.T
    x1, x2 = np.array([[float(r[1]), float(r[2])] for r in rows]).T
    # The conformal 90 % interval is mean ± q std, q the ⌈(n + 1) 0.9⌉-th smallest of the
    # n = 195 stored calibration scores |y - mean| / std (standardised units, so q is
    # unit-free); 6 printed significant digits, so 1e-4 relative.
    stored = json.loads((folder / "calibration.json").read_text())
    scores = sorted(stored["scores"])
    assert stored["method"] == "conformal" and len(scores) == 195
    q = scores[math.ceil(196 * 0.9) - 1]
    np.testing.assert_allclose(lower, mean - q * std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(upper, mean + q * std, rtol=1e-4, atol=1e-4)
    # metrics.json agrees: the conformal 90 % width is the network's (mean ± z std) times q / z.
    z = stats.norm.ppf(0.95)
    assert after["width_90"] == pytest.approx(before["width_90"] * q / z, rel=1e-5)
    # The predictive mean follows the true regression line (measured RMSE 0.065 against
    # it; bound 0.15, under a third of the noise) and the scale is the noise's 0.5
    # (measured median 0.52, 5-95 % of rows in [0.44, 0.60]; bounds 10 % and 30 %).
    assert np.sqrt(np.mean((mean - (2 * x1 - x2)) ** 2)) < 0.15
    assert abs(np.median(std) / 0.5 - 1) < 0.1, std
    assert np.all(np.abs(np.percentile(std, [5, 95]) / 0.5 - 1) < 0.3), std

    # The rest in this process through main([...]) (each `python -m probnn` run imports
    # TensorFlow again); the program's own entry is the fit and predict runs above.
    # Nothing is overwritten: the model folder and the prediction file are left alone.
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    train, new = str(tmp_path / "train.csv"), str(tmp_path / "new.csv")
    check_one_line(["fit", train, "--target", "y", "--out", str(folder)], "fit", "--overwrite")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    pred_before = (tmp_path / "pred.csv").read_bytes()
    check_one_line(
        ["predict", str(folder), new, "--output", str(tmp_path / "pred.csv")], "predict", "--overwrite"
    )
    assert (tmp_path / "pred.csv").read_bytes() == pred_before

    # --mark-split on the training file: the split column is split.csv's roles, row by row.
    marked = io.StringIO()
    with contextlib.redirect_stdout(marked):
        assert main(["predict", str(folder), train, "--mark-split", "--interval", "0.5"]) == 0
    table = list(csv.reader(marked.getvalue().splitlines()))
    assert table[0][-1] == "split" and [row[-1] for row in table[1:]] == roles
    # A truncated copy of the real model file is refused before TensorFlow, in this process.
    truncate_model_copy(folder, tmp_path / "broken")


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("x,y\n" + "".join(f"{i},{i}\n" for i in range(30)), ["--target", "z"], "has no column 'z'"),
        (
            "x,y\n" + "".join(f"{i},{i}\n" for i in range(30)) + "abc,1\n",
            ["--target", "y"],
            "column 'x' of data.csv is not numeric (line 32: 'abc')",
        ),
        (
            "x,y\n" + "".join(f"{i},{i}\n" for i in range(30)) + "3,nan\n",
            ["--target", "y"],
            "column 'y' of data.csv has a missing or infinite value (line 32",
        ),
        (
            "x,y\n" + "".join(f"{i},{i}\n" for i in range(30)) + "3,\n",
            ["--target", "y"],
            "column 'y' of data.csv has a missing value (line 32)",
        ),
        ("", ["--target", "y"], "data.csv is empty"),
        (
            "x,y\n" + "".join(f"{i},{i}\n" for i in range(5)),
            ["--target", "y"],
            "has 5 data rows; at least 20",
        ),
        (
            "x,y\n" + "".join(f"{i},1\n" for i in range(30)),
            ["--target", "y"],
            "target column 'y' is constant",
        ),
    ],
    ids=["missing-column", "non-numeric", "nan", "empty-cell", "empty-file", "too-few-rows", "constant"],
)
def test_fit_rejects_bad_input_in_one_line(tmp_path, monkeypatch, content, args, message):
    """In this process (`main`): the program's exit status and stderr line are checked for
    bad input by test_predict_rejects_a_folder_that_is_not_a_model (cli tier)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(content)
    check_one_line(["fit", "data.csv", *args, "--out", "m"], "fit", message)
    assert not (tmp_path / "m").exists()


def truncate_model_copy(folder, broken):
    """Copy a model folder with model.keras cut to half its size; check predict refuses it in one line."""
    broken.mkdir()
    for path in folder.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    data = (folder / "model.keras").read_bytes()
    (broken / "model.keras").write_bytes(data[: len(data) // 2])
    assert zipfile.is_zipfile(folder / "model.keras")
    check_one_line(
        ["predict", str(broken), str(folder.parent / "train.csv")],
        "predict",
        f"{broken / 'model.keras'} exists but is not a complete Keras model file",
    )


def check_one_line(argv, command, message, capsys=None):
    """`main(argv)` in this process: exit status 2 and one stderr line holding `message`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    text = err.getvalue()
    assert status == 2 and text.startswith(f"probnn {command}: ") and message in text, text
    assert text.count("\n") == 1, text
    return text


def test_fit_refuses_index_columns_separators_and_a_file_as_out_in_one_line(tmp_path, monkeypatch):
    """Each a one-line message from checks that run before TensorFlow is imported."""
    monkeypatch.chdir(tmp_path)
    body = "".join(f"{i},{i % 7},{2 * (i % 7)}\n" for i in range(30))
    pathlib.Path("pandas.csv").write_text(",x,y\n" + body)  # df.to_csv(path): an unnamed index first
    pathlib.Path("named.csv").write_text("index,x,y\n" + body)
    pathlib.Path("one.csv").write_text(
        "Unnamed: 0,x,y\n" + "".join(f"{i + 1},{i % 7},{i % 5}\n" for i in range(30))
    )
    pathlib.Path("semi.csv").write_text("x;y\n" + "".join(f"{i};{i % 3}\n" for i in range(30)))
    pathlib.Path("tabs.csv").write_text("x\ty\n" + "".join(f"{i}\t{i % 3}\n" for i in range(30)))
    pathlib.Path("victim.csv").write_text("keep me\n")
    hint = "looks like a saved row index, not an input; pass --drop"
    check_one_line(
        ["fit", "pandas.csv", "--target", "y"], "fit", f"column '' of pandas.csv has no name: it {hint} ''"
    )
    check_one_line(
        ["fit", "named.csv", "--target", "y"],
        "fit",
        f"column 'index' of named.csv holds the row numbers: it {hint} 'index'",
    )
    check_one_line(["fit", "one.csv", "--target", "y"], "fit", "--features to choose the inputs")
    check_one_line(
        ["fit", "semi.csv", "--target", "y"], "fit", "holds ';' characters but no ',': pass --sep ';'"
    )
    check_one_line(
        ["fit", "tabs.csv", "--target", "y"], "fit", "holds tab characters but no ',': pass --sep tab"
    )
    check_one_line(["fit", "named.csv", "--target", "y", "--drop", "nope"], "fit", "has no column 'nope'")
    check_one_line(["fit", "semi.csv", "--target", "y", "--sep", ";;"], "fit", "--sep must be one character")
    check_one_line(
        ["fit", "semi.csv", "--target", "y", "--sep", ";", "--out", "victim.csv", "--overwrite"],
        "fit",
        "output folder victim.csv is a file, not a folder",
    )
    assert pathlib.Path("victim.csv").read_text() == "keep me\n"
    check_one_line(
        [
            "fit",
            "semi.csv",
            "--target",
            "y",
            "--calibration",
            "std",
            "--head",
            "mixture",
            "--out",
            "victim.csv",
        ],
        "fit",
        "is a file, not a folder",
    )
    # The ways out the messages name: --drop (also of the unnamed column), --features, --sep.
    from probnn.apps import tabular

    assert tabular.read_training_table("pandas.csv", "y", drop=[""]).features == ["x"]
    assert tabular.read_training_table("named.csv", "y", features=["index", "x"]).features == ["index", "x"]
    assert tabular.read_training_table("tabs.csv", "y", sep=tabular.separator("tab")).features == ["x"]
    # A column named "index" that does not hold the row numbers is an ordinary input.
    pathlib.Path("ok.csv").write_text("index,y\n" + "".join(f"{3 * i},{i % 4}\n" for i in range(30)))
    assert tabular.read_training_table("ok.csv", "y").features == ["index"]


@pytest.mark.cli
def test_predict_rejects_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "data.csv").write_text("x\n1\n")
    (tmp_path / "folder").mkdir()
    for folder, message in (("folder", "folder is not a probnn model folder"), ("nowhere", "no such folder")):
        result = probnn("predict", folder, "data.csv", cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.cli
def test_demo_trains_a_calibrated_model_and_writes_the_figure(tmp_path):
    result = probnn("demo", "--out", tmp_path / "out", check=True)
    out = result.stdout
    assert not [word for word in TF_NOISE if word in result.stderr], result.stderr
    figure = tmp_path / "out" / "heteroscedastic.png"
    assert figure.read_bytes()[:8] == PNG

    def row(name):
        match = re.search(rf"^{re.escape(name)}\s+(\S+)\s+(\S+)$", out, re.MULTILINE)
        assert match, out
        return float(match.group(1)), float(match.group(2))

    nll, true_nll = row("test NLL (nats)")
    rmse, true_rmse = row("test RMSE")
    coverage, _ = row("90% interval coverage")
    # Measured: NLL 1.101 vs 1.088 for the true density, RMSE 1.012 vs 0.997,
    # coverage 0.906. Bounds: 0.1 nats of NLL, 5 % of RMSE; coverage of 2,000
    # test points has a binomial standard error of 0.0067, and +-0.03 is 4.5 of them.
    assert nll < true_nll + 0.1
    assert rmse < 1.05 * true_rmse
    assert abs(coverage - 0.9) < 0.03
    scale_error = float(re.search(r"max \|σ_model/σ_true - 1\| on \[[^]]*\]: (\S+)%", out).group(1))
    assert scale_error < 25.0  # measured 13.7 %; the grid's ends have the fewest data
    # Run again: the figure is not replaced without --overwrite (refused before TensorFlow starts).
    before = figure.read_bytes()
    again = probnn("demo", "--out", tmp_path / "out")
    assert again.returncode == 2 and "--overwrite" in again.stderr and figure.read_bytes() == before


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--epochs", "0"])
    assert "expected a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "data.csv"])  # --target is required
    assert main([]) == 2
    assert main(["--version"]) == 0


@pytest.mark.integration
def test_fit_table_with_an_ensemble_saves_and_predicts_the_mixture(tmp_path):
    """--ensemble M: a probnn.Ensemble, saved and loaded back; predictions are the members' mixture."""
    from probnn.apps import tabular

    write_csv(tmp_path / "d.csv", 200, seed=2)
    result = tabular.fit_csv(tmp_path / "d.csv", "y", tmp_path / "m", ensemble=3, epochs=3)
    assert result.metrics["ensemble"] == 3
    model, info = tabular.load_model_folder(tmp_path / "m")
    assert getattr(model, "probnn_members", None) == 3 and info["ensemble"] == 3
    table = tabular.predict_csv(tmp_path / "m", tmp_path / "d.csv", interval=0.5)
    values = np.array([[float(v) for v in row[3:]] for row in table.rows])
    mean, std, lower, upper = values.T
    assert len(table.rows) == 200 and np.all(std > 0) and np.all(lower < upper)


@pytest.mark.parametrize("method", ["conformal", "std", "isotonic", "none"])
def test_calibrator_round_trips_through_json(method):
    """What `probnn predict` reads from calibration.json gives the intervals `probnn fit` scored."""
    from probnn.apps.calibrator import CommandCalibrator

    rng = np.random.default_rng(0)
    y = 1.5 * rng.standard_t(5, size=600)  # wider and heavier-tailed than the N(0, 1) "network" says
    network = (np.zeros(300), np.ones(300))
    fitted = CommandCalibrator(method)
    if method != "none":
        fitted.fit(network, y[:300])
    stored = json.loads(json.dumps(fitted.to_json()))
    restored = CommandCalibrator.from_json(stored)
    for level in (0.5, 0.9):
        np.testing.assert_array_equal(fitted.interval(network, level), restored.interval(network, level))
    lower, upper = restored.interval(network, 0.9)
    covered = float(np.mean((lower <= y[300:]) & (y[300:] <= upper)))
    # The uncalibrated N(0, 1) covers P(|1.5 T| < 1.645) = 0.677 (T ~ t5, scipy) of these
    # targets, within 3 binomial s.e. on 300 rows (0.081); calibrated, 0.9 within 3 s.e. of
    # test (0.017) and calibration (about the same) noise together: 0.075.
    if method == "none":
        assert abs(covered - (2 * stats.t.cdf(1.645 / 1.5, 5) - 1)) < 0.081, covered
    else:
        assert abs(covered - 0.9) < 0.075, covered
    with pytest.raises(ValueError, match="no 'scores' entry"):
        CommandCalibrator.from_json({"method": "conformal"})


def test_xla_cache_honours_xdg_cache_home_and_can_be_turned_off(monkeypatch, tmp_path, capsys):
    from probnn.apps import cli

    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.delenv("PROBNN_XLA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cli._use_xla_cache()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={tmp_path}/probnn/xla"
    monkeypatch.delenv("TF_XLA_FLAGS")
    monkeypatch.setenv("PROBNN_XLA_CACHE", "0")
    cli._use_xla_cache()
    assert "TF_XLA_FLAGS" not in os.environ
    # Documented where users look: every command's --help names the folder and the switch.
    for command in ("fit", "predict"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "$XDG_CACHE_HOME/probnn/xla (default ~/.cache/probnn/xla)" in text
        assert "PROBNN_XLA_CACHE=0 turns it off" in text
