"""The Bayesian example scripts run end to end (short chains) and answer --help quickly."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = [
    "bayesian_linear_regression.py",
    "bayesian_neural_network.py",
    "bayesian_logistic_regression.py",
    "multilevel_regression.py",
]


def _run(script, *args, cwd):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="Agg",
        PYTHONPATH=str(EXAMPLES.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, tmp_path):
    out = _run(script, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for option in ("--data", "--target", "--out", "--num-samples"):
        assert option in out.stdout


def test_linear_regression_script_on_a_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, size=(80, 2))
    y = 3 + 2 * x[:, 0] - x[:, 1] + rng.normal(size=80)
    np.savetxt(tmp_path / "d.csv", np.c_[x, y], delimiter=",", header="a,b,target", comments="")
    out = _run(
        "bayesian_linear_regression.py",
        "--data",
        "d.csv",
        "--target",
        "target",
        "--out",
        "figs",
        "--num-chains",
        "2",
        "--num-samples",
        "100",
        "--num-warmup",
        "100",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for expected in (
        "coef[a]",
        "coef[b]",
        "worst r-hat",
        "min bulk ESS",
        "elpd_loo",
        "test NLL",
        "test coverage of the 90% predictive interval",
    ):
        assert expected in text, expected
    assert (tmp_path / "figs" / "trace.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "posterior_predictive.png").stat().st_size > 1000
    bad = _run("bayesian_linear_regression.py", "--data", "d.csv", "--target", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "--target 'nope' is not a column" in bad.stderr


def test_neural_network_script_on_builtin_data(tmp_path):
    out = _run(
        "bayesian_neural_network.py",
        "--out",
        "figs",
        "--hidden",
        "3",
        "--num-chains",
        "2",
        "--num-samples",
        "40",
        "--num-warmup",
        "60",
        "--max-tree-depth",
        "5",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in (
        "hidden_kernel[0, 2]",
        "worst r-hat",
        "elpd_loo",
        "test NLL",
        "test coverage of the 90% predictive interval",
    ):
        assert expected in out.stdout, expected
    assert (tmp_path / "figs" / "posterior_predictive.png").stat().st_size > 1000


def test_logistic_regression_script_on_builtin_data(tmp_path):
    pytest.importorskip("sklearn")
    out = _run(
        "bayesian_logistic_regression.py",
        "--out",
        "figs",
        "--num-chains",
        "2",
        "--num-samples",
        "100",
        "--num-warmup",
        "100",
        "--vi-steps",
        "200",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in (
        "coef[mean_radius]",
        "default Normal",
        "worst r-hat",
        "elpd_loo",
        "full-rank ADVI",
        "test (NUTS): log loss",
        "test (full-rank ADVI): log loss",
    ):
        assert expected in out.stdout, expected
    assert (tmp_path / "figs" / "posterior_predictive.png").stat().st_size > 1000


def test_multilevel_script_compares_three_poolings(tmp_path):
    out = _run(
        "multilevel_regression.py",
        "--out",
        "figs",
        "--num-chains",
        "2",
        "--num-samples",
        "100",
        "--num-warmup",
        "150",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in (
        "group_sd",
        "LOO comparison",
        "partially pooled",
        "unpooled",
        "pooled",
        "small groups: mean |group effect|",
        "a new group: mean",
    ):
        assert expected in out.stdout, expected
    assert (tmp_path / "figs" / "posterior_predictive.png").stat().st_size > 1000
