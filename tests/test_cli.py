"""The `probnn` command and its demo job, end to end."""

import os
import re
import subprocess
import sys

import pytest

from probnn.cli import main


def test_demo_trains_a_calibrated_model_and_writes_the_figure(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, "-m", "probnn.cli", "demo", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    ).stdout
    figure = tmp_path / "heteroscedastic.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

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


def test_cli_rejects_bad_arguments(capsys):
    assert main(["demo", "--epochs", "0"]) == 2
    assert "--epochs must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--verbose", "5"])
    assert main([]) == 2
    assert main(["--version"]) == 0
