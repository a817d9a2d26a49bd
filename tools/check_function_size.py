"""Report functions in probnn/ over 60 code lines or over 10 parameters.

Code lines are the lines of a function's body that hold code: its docstring,
blank lines and comment-only lines are not counted (a nested function's lines
count for it and for the function around it). Parameters are all named
parameters, `self` and `cls` excluded, `*args` and `**kwargs` included.

Public entry points that mirror Keras's own signatures may take more
parameters: they are listed in `PARAMETER_EXCEPTIONS`.

Usage: `python tools/check_function_size.py [root]`; exit status 1 when a
function is over a limit, 0 otherwise.
"""

import ast
import io
import pathlib
import sys
import tokenize

MAX_CODE_LINES = 60
MAX_PARAMETERS = 10
# Public entry points that mirror a host library's own signatures:
PARAMETER_EXCEPTIONS = {
    # keras.Model.fit's (x, y, batch_size, epochs, callbacks, validation_data, ...)
    "probnn/training/fit.py:fit",
    # a Keras layer's constructor, as keras.layers.Dense's (units, activation, initializers, regularizers)
    "probnn/layers/rbf.py:RBF.__init__",
    # a scikit-learn estimator: every hyperparameter a named constructor argument (sklearn's convention)
    "probnn/sklearn/regressor.py:ProbabilisticRegressor.__init__",
}


def code_lines(source):
    """Line numbers holding code: not blank, not only a comment, not inside a docstring."""
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        if token.type == tokenize.ENDMARKER:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def _docstring_lines(node):
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):
            return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def _parameters(node):
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return [n for n in names if n not in ("self", "cls")]


def functions(path, root):
    """(qualified name, code lines, parameter count) of every function in the file at `path`."""
    source = path.read_text()
    tree = ast.parse(source)
    code = code_lines(source)
    relative = path.relative_to(root).as_posix()
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                body = set(range(child.body[0].lineno, child.end_lineno + 1)) - _docstring_lines(child)
                found.append((f"{relative}:{name}", len(body & code), len(_parameters(child))))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def violations(root):
    """Lines describing every function of root/probnn over a limit."""
    root = pathlib.Path(root)
    found = []
    for path in sorted((root / "probnn").rglob("*.py")):
        for name, lines, params in functions(path, root):
            if lines > MAX_CODE_LINES:
                found.append(f"{name}: {lines} code lines (limit {MAX_CODE_LINES})")
            if params > MAX_PARAMETERS and name not in PARAMETER_EXCEPTIONS:
                found.append(f"{name}: {params} parameters (limit {MAX_PARAMETERS})")
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = pathlib.Path(argv[0] if argv else pathlib.Path(__file__).resolve().parents[1])
    found = violations(root)
    for line in found:
        print(line)
    print(f"{len(found)} function(s) over a limit in {root / 'probnn'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
