"""Counting XLA compilations: the way to test that a jit-compiled program is not recompiled.

XLA's persistent compilation cache (`--tf_xla_persistent_cache_directory`)
writes one file per compiled program, so the number of files after each call
of a training program says whether the call compiled a new program. The flag
is read once per process, so the code runs in a fresh Python process; it is
given a `compilations()` function and must print one JSON line last.
"""

import json
import os
import subprocess
import sys
import textwrap

PRELUDE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

def compilations():
    return len(os.listdir(os.environ["PROBNN_TEST_XLA_CACHE"]))
"""


def run_counting_compilations(code, tmp_path, timeout=300):
    """Run `code` in a fresh Python process with XLA's cache in `tmp_path`; its last stdout line, parsed."""
    cache = tmp_path / "xla_cache"
    cache.mkdir()
    env = dict(
        os.environ,
        PROBNN_TEST_XLA_CACHE=str(cache),
        TF_XLA_FLAGS=f"--tf_xla_persistent_cache_directory={cache}",
    )
    script = tmp_path / "count_compilations.py"
    script.write_text(PRELUDE + textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
