"""`import probnn` before TensorFlow keeps TensorFlow's C++ start-up lines off stderr (probnn._quiet)."""

import os
import pathlib
import subprocess
import sys

import pytest

from probnn._quiet import is_start_up_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = "import sys, probnn, tensorflow as tf; print('after import', file=sys.stderr); print(float(tf.constant(2.0)))"


def run(**env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.e2e
def test_importing_probnn_first_hides_tensorflow_start_up_lines_unless_asked():
    quiet = run()
    assert quiet.returncode == 0 and quiet.stdout.strip() == "2.0", quiet.stderr
    assert quiet.stderr.splitlines() == ["after import"], (
        quiet.stderr
    )  # nothing else, in particular no cuInit
    # The way back, as documented: TF_CPP_MIN_LOG_LEVEL=0 set by the user shows TensorFlow's lines
    # (this also shows that the check above can fail: these lines exist on this machine).
    loud = run(TF_CPP_MIN_LOG_LEVEL="0")
    assert loud.returncode == 0
    assert any(is_start_up_line(line) for line in loud.stderr.splitlines()), loud.stderr


def test_start_up_line_pattern():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796370199.571496   17450 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796370222.548540   17450 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
    ]
    assert all(is_start_up_line(line) for line in lines)
    assert not any(
        is_start_up_line(line)
        for line in (
            "Traceback (most recent call last):",
            "UserWarning: something",
            "I0000 is not a log line",
        )
    )
