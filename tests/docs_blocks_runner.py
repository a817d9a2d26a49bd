"""Run one document's code blocks one after another in this process, each as if pasted alone.

Used by test_docs_blocks.py: `python docs_blocks_runner.py BLOCKS.json RESULTS.jsonl`.
BLOCKS.json is a list of code strings. For each block this writes one JSON line
`{"index": i, "returncode": 0 or 1, "stderr": traceback}` to RESULTS.jsonl as soon as the
block ends, so a document that times out still reports the blocks it finished.

Each block runs as `python block.py` would run it, except that the interpreter (and the
modules the previous blocks imported) is shared:

* a new `__main__` module (so `__name__ == "__main__"`, pickling a class the block
  defines works) whose namespace holds nothing but the builtins: a name the block uses
  but only an earlier block defined raises NameError;
* its own empty temporary folder as working directory and `sys.path[0]`, holding the
  block as `block.py` (`__file__`, so `inspect.getsource` and AutoGraph see the code);
* the process state a block can change put back afterwards: environment variables,
  `sys.argv`, Keras's session, float type, epsilon and image layout, TensorFlow's eager
  switch, matplotlib's figures and rc settings, NumPy's, `random`'s and TensorFlow's global
  seeds (re-seeded from the OS, as a new interpreter would).

test_docs_blocks.py runs a block that fails here once more in a fresh interpreter, and
reports that run: a failure is never an artefact of sharing the process.
"""

import builtins
import contextlib
import io
import json
import os
import pathlib
import random
import sys
import tempfile
import traceback
import types


def _reset_state(environ, argv):
    os.environ.clear()
    os.environ.update(environ)
    sys.argv[:] = argv
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        keras.backend.clear_session()  # the layer-name counters and Keras's global seed too
        keras.config.set_floatx("float32")
        keras.config.set_epsilon(1e-7)
        keras.config.set_image_data_format("channels_last")
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        tf.config.run_functions_eagerly(False)
        tf.random.set_seed(None)
        tf.random.set_global_generator(tf.random.Generator.from_non_deterministic_state())
    if "matplotlib.pyplot" in sys.modules:
        plt = sys.modules["matplotlib.pyplot"]
        plt.close("all")
        plt.rcdefaults()


def run_block(code, folder):
    """Run `code` as `folder/block.py` in a new `__main__`; `(returncode, stderr)`."""
    script = pathlib.Path(folder) / "block.py"
    script.write_text(code, encoding="utf-8")
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=str(script), __builtins__=builtins)
    saved_main, saved_path0 = sys.modules["__main__"], sys.path[0]
    sys.modules["__main__"], sys.path[0] = main, str(folder)
    stderr = io.StringIO()
    try:
        os.chdir(folder)
        with contextlib.redirect_stderr(stderr):
            exec(compile(code, str(script), "exec"), main.__dict__)
        return 0, stderr.getvalue()
    except SystemExit as exc:  # sys.exit() in a script: its status
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, stderr.getvalue()
    except BaseException:
        return 1, stderr.getvalue() + traceback.format_exc()
    finally:
        sys.modules["__main__"], sys.path[0] = saved_main, saved_path0


def main(blocks_file, results_file):
    blocks = json.loads(pathlib.Path(blocks_file).read_text(encoding="utf-8"))
    environ, argv, cwd = dict(os.environ), list(sys.argv), os.getcwd()
    with open(results_file, "w", encoding="utf-8") as results:
        for index, code in enumerate(blocks):
            with tempfile.TemporaryDirectory(prefix="probnn-docs-") as folder:
                returncode, stderr = run_block(code, folder)
                os.chdir(cwd)
            _reset_state(environ, argv)
            results.write(json.dumps({"index": index, "returncode": returncode, "stderr": stderr}) + "\n")
            results.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
