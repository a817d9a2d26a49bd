"""Execute every notebook in notebooks/ from top to bottom (outputs are not kept)."""

import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell; the notebooks are meant to run in well under a minute


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_python3_kernel_runs_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # jupyter_client replaces a bare "python"/"python3" by sys.executable when it starts the kernel.
    assert argv[0] in {
        "python",
        "python3",
        f"python{sys.version_info[0]}.{sys.version_info[1]}",
        sys.executable,
    }


def test_notebooks_import_probnn_before_tensorflow():
    # probnn's quiet import (probnn._quiet) only works if TensorFlow is not imported yet.
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        source = next(c.source for c in nb.cells if c.cell_type == "code")
        imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert imports[0].startswith("import probnn"), f"{path.name}: first import is {imports[0]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    from probnn._quiet import is_start_up_line

    # The kernel imports probnn from this checkout even when it is not installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    # As a user's notebook: no TF_CPP_MIN_LOG_LEVEL, so importing probnn must keep TensorFlow quiet.
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},  # run from notebooks/
    )
    client.execute()  # raises CellExecutionError with the traceback if a cell fails
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    stderr = [
        line
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
        for line in o.text.splitlines()
    ]
    start_up = [line for line in stderr if is_start_up_line(line)]
    assert not start_up, f"TensorFlow start-up lines in the outputs: {start_up[:3]}"
