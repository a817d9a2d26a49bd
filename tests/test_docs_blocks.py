"""Every ```python block of README.md and docs/*.md runs alone, as if pasted into a fresh interpreter.

The blocks run in a few Python processes (tests/docs_blocks_runner.py), whole
documents to a process, one block after another, each in a new `__main__`
namespace that holds only the builtins, in its own empty temporary folder, with
the process state a block can change (environment, Keras session and settings,
seeds, figures) put back in between: a
block that leans on an import or a variable of an earlier block fails with the
NameError a reader who pastes it on its own would see. A block that fails there is
run once more alone, with `python block.py` in a new process (`PYTHONPATH` = this
checkout), and that run is the one reported. Sharing the process saves TensorFlow's
start-up (5-10 s) for all but the first block of each process: the 12 documents'
48 blocks took 181 s as one process per document, 111 s in one process (2 cores).
One test per block, named `<file>:<index>:<first line>`, so a failure names the block.

Convention (docs/design.md, "Conventions"): a fence tagged `python` (or `py`,
`python3`) is a runnable block. Anything deliberately not runnable carries
another tag: `text` for signatures, formulas, diagrams and output,
`python-signature` for a call signature, `bash`/`console` for shell sessions.
Every fence must carry a tag, so an untagged block cannot slip through unrun.

The documents are shared out among processes run in parallel (one per core not
taken by another pytest-xdist worker, so one in the full suite on 2 cores;
`PROBNN_DOCS_WORKERS` overrides it); each test waits for its own block. Each
block gets `BLOCK_TIMEOUT` seconds.
"""

import concurrent.futures
import json
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
RUNNER = pathlib.Path(__file__).with_name("docs_blocks_runner.py")
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


def _block_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["MPLBACKEND"] = "Agg"
    return env


def run_block(code, timeout=BLOCK_TIMEOUT):
    """Run `code` alone with a fresh interpreter in an empty temporary folder; a CompletedProcess."""
    with tempfile.TemporaryDirectory(prefix="probnn-docs-") as cwd:
        script = pathlib.Path(cwd) / "block.py"
        script.write_text(code, encoding="utf-8")
        try:
            return subprocess.run(
                [sys.executable, str(script)],
                cwd=cwd,
                env=_block_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, -1, exc.stdout or "", f"timed out after {timeout} s")


def run_in_one_process(codes, timeout=BLOCK_TIMEOUT):
    """Run blocks (whole documents') in one process (docs_blocks_runner.py); a CompletedProcess per block.

    Each block runs in a fresh namespace and folder; the process gets `timeout` seconds per
    block. A block the process did not reach (a timeout or a crash) gets returncode -1.
    """
    env = _block_env()
    with tempfile.TemporaryDirectory(prefix="probnn-docs-") as cwd:
        blocks, results = pathlib.Path(cwd) / "blocks.json", pathlib.Path(cwd) / "results.jsonl"
        blocks.write_text(json.dumps(codes), encoding="utf-8")
        command = [sys.executable, str(RUNNER), str(blocks), str(results)]
        try:
            process = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout * len(codes)
            )
            ending = f"the document's process ended ({process.returncode}):\n{process.stderr[-3000:]}"
        except subprocess.TimeoutExpired:
            ending = f"the document's process timed out after {timeout * len(codes)} s"
        done = {}
        if results.exists():
            for line in results.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                done[record["index"]] = subprocess.CompletedProcess(
                    command, record["returncode"], "", record["stderr"]
                )
    return [done.get(i, subprocess.CompletedProcess(command, -1, "", ending)) for i in range(len(codes))]


@pytest.fixture(scope="session")
def block_results(request):
    """Start every selected document at once on a few processes; `{(file, index): result}`.

    A result is a callable that waits for the block's CompletedProcess.
    """
    documents = {}
    for item in request.session.items:
        if getattr(item, "originalname", None) == "test_block_runs_alone" and hasattr(item, "callspec"):
            params = item.callspec.params
            documents.setdefault(params["doc"], {})[params["index"]] = params["code"]
    # One process per core not taken by another pytest-xdist worker (the suite runs `-n auto`),
    # each running whole documents (TensorFlow starts once per process, not once per document):
    # the longest documents first, each to the shortest queue.
    share = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    workers = int(os.environ.get("PROBNN_DOCS_WORKERS", max(1, (os.cpu_count() or 1) // share)))
    queues = [[] for _ in range(max(1, workers))]
    for doc, blocks in sorted(documents.items(), key=lambda item: -len(item[1])):
        min(queues, key=len).extend((doc, index, blocks[index]) for index in sorted(blocks))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(queues))
    futures = {}
    for queue in filter(None, queues):
        future = pool.submit(run_in_one_process, [code for _, _, code in queue])
        for position, (doc, index, _) in enumerate(queue):
            futures[(doc, index)] = lambda future=future, position=position: future.result()[position]
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


def test_document_runner_runs_each_block_as_if_pasted_alone():
    # The same failure when the blocks share a process: each starts in a fresh namespace and
    # folder, with the process state an earlier block changed put back.
    first = (
        "import os, keras, numpy as np, probnn\n"
        "value = 1\n"
        "os.environ['PROBNN_DOCS_TEST'] = '1'\n"
        "keras.config.set_floatx('float64')\n"
        "keras.utils.set_random_seed(0)\n"
        "open('left.txt', 'w').close()\n"
    )
    second = (
        "import os, random, keras\n"
        "assert 'value' not in globals() and 'np' not in globals() and __name__ == '__main__'\n"
        "assert 'PROBNN_DOCS_TEST' not in os.environ and keras.config.floatx() == 'float32'\n"
        "assert os.listdir('.') == ['block.py'] and os.path.basename(__file__) == 'block.py'\n"
        "keras.utils.set_random_seed(0)\n"
        "seeded = random.random()\n"
    )
    third = "import random\nassert random.random() != SEEDED\nprint(value)\n"
    results = run_in_one_process(
        [first, second, third.replace("SEEDED", repr(__import__("random").Random(0).random()))]
    )
    assert [r.returncode for r in results[:2]] == [0, 0], results[1].stderr
    assert results[2].returncode != 0 and "NameError: name 'value' is not defined" in results[2].stderr


def test_every_fence_is_tagged():
    # A block with no tag is neither run nor plainly marked as not runnable.
    assert not UNTAGGED, f"untagged code fences (tag them `python` to run, `text` otherwise): {UNTAGGED}"


def test_docs_have_runnable_blocks():
    files = {p.values[0] for p in BLOCKS}
    assert "README.md" in files and "docs/layers.md" in files


_LOG_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d)")


@pytest.mark.parametrize("doc, index, line, code", BLOCKS)
def test_block_runs_alone(doc, index, line, code, block_results):
    result = block_results[(doc, index)]()
    if result.returncode != 0:  # the authoritative run: the block alone in a new interpreter
        result = run_block(code)
    stderr = "\n".join(s for s in result.stderr.splitlines() if not _LOG_NOISE.match(s))  # TF start-up logs
    assert result.returncode == 0, (
        f"{doc} block {index} (line {line}) failed when run alone:\n{stderr[-3000:]}"
    )
