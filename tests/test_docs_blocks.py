"""Every ```python block of README.md and docs/*.md runs alone, in a fresh interpreter.

Each block is written to a file in its own temporary folder and run with
`python block.py` in a new process (`PYTHONPATH` = this checkout), so a block
that leans on an import or a variable of an earlier block fails here as it
would for a reader who pastes it on its own. One test per block, named
`<file>:<index>:<first line>`, so a failure names the block.

Convention (docs/design.md, "Conventions"): a fence tagged `python` (or `py`,
`python3`) is a runnable block. Anything deliberately not runnable carries
another tag: `text` for signatures, formulas, diagrams and output,
`python-signature` for a call signature, `bash`/`console` for shell sessions.
Every fence must carry a tag, so an untagged block cannot slip through unrun.

The blocks run in parallel (one process per core not taken by another
pytest-xdist worker; `PROBNN_DOCS_WORKERS` overrides it); each test waits for
its own block. Each block gets
`BLOCK_TIMEOUT` seconds.
"""

import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.docs

REPO = pathlib.Path(__file__).resolve().parents[1]
RUNNABLE = {"python", "py", "python3"}
BLOCK_TIMEOUT = 300  # seconds; a block takes a few seconds plus ~5-10 s of imports (more under load)
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def doc_files():
    """README.md and every docs/*.md, in a stable order."""
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def fenced_blocks(text):
    """`(tag, first_line_number, code)` for each fenced code block of a Markdown text.

    Follows CommonMark fences: three or more backticks or tildes, possibly
    indented (inside a list item; the indentation is removed from the code),
    closed by a fence of the same character at least as long. An unclosed
    fence runs to the end of the text.
    """
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        tag = (m["info"].split() or [""])[0].lower()
        start, body = i + 1, []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if (
                close
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            line = lines[i]
            strip = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, strip) :])
            i += 1
        blocks.append((tag, start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _collect():
    runnable, untagged = [], []
    for path in doc_files():
        rel = path.relative_to(REPO).as_posix()
        index = 0
        for tag, line, code in fenced_blocks(path.read_text(encoding="utf-8")):
            if not tag:
                untagged.append(f"{rel}:{line - 1}")
            elif tag in RUNNABLE:
                first = next((s.strip() for s in code.splitlines() if s.strip()), "")[:40]
                runnable.append(pytest.param(rel, index, line, code, id=f"{rel}:{index}:{first}"))
                index += 1
    return runnable, untagged


BLOCKS, UNTAGGED = _collect()


def run_block(code, timeout=BLOCK_TIMEOUT):
    """Run `code` alone with a fresh interpreter in an empty temporary folder; a CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["MPLBACKEND"] = "Agg"
    with tempfile.TemporaryDirectory(prefix="probnn-docs-") as cwd:
        script = pathlib.Path(cwd) / "block.py"
        script.write_text(code, encoding="utf-8")
        try:
            return subprocess.run(
                [sys.executable, str(script)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, -1, exc.stdout or "", f"timed out after {timeout} s")


@pytest.fixture(scope="session")
def block_results(request):
    """Start every selected block at once on a pool of processes; `{(file, index): Future}`."""
    selected = [
        item.callspec.params
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_block_runs_alone" and hasattr(item, "callspec")
    ]
    # One process per core, shared with the other pytest-xdist workers (the suite runs `-n auto`).
    share = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    workers = int(os.environ.get("PROBNN_DOCS_WORKERS", max(1, (os.cpu_count() or 1) // share)))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    futures = {(p["doc"], p["index"]): pool.submit(run_block, p["code"]) for p in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_fence_parser_finds_tags_lines_and_indented_blocks():
    text = "intro\n```python\nx = 1\n```\n- item\n\n  ```text\n  f(a, b)\n  ```\n~~~py\ny = 2\n~~~\n```\nraw\n```\n"
    assert fenced_blocks(text) == [
        ("python", 3, "x = 1\n"),
        ("text", 8, "f(a, b)\n"),
        ("py", 11, "y = 2\n"),
        ("", 14, "raw\n"),
    ]


def test_runner_reports_a_block_that_needs_an_earlier_one():
    # The failure this file exists for: a name defined only by a previous block.
    result = run_block("print(np.pi)\n", timeout=60)
    assert result.returncode != 0 and "NameError: name 'np' is not defined" in result.stderr
    assert run_block("import math\nprint(math.pi)\n", timeout=60).stdout.strip() == "3.141592653589793"


def test_every_fence_is_tagged():
    # A block with no tag is neither run nor plainly marked as not runnable.
    assert not UNTAGGED, f"untagged code fences (tag them `python` to run, `text` otherwise): {UNTAGGED}"


def test_docs_have_runnable_blocks():
    files = {p.values[0] for p in BLOCKS}
    assert "README.md" in files and "docs/layers.md" in files


_LOG_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d)")


@pytest.mark.parametrize("doc, index, line, code", BLOCKS)
def test_block_runs_alone(doc, index, line, code, block_results):
    result = block_results[(doc, index)].result()
    stderr = "\n".join(s for s in result.stderr.splitlines() if not _LOG_NOISE.match(s))  # TF start-up logs
    assert result.returncode == 0, (
        f"{doc} block {index} (line {line}) failed when run alone:\n{stderr[-3000:]}"
    )
