"""The house rule of issue 20: no function in probnn/ over 60 code lines or 10 parameters."""

import importlib.util
import pathlib
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_function_size", ROOT / "tools/check_function_size.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checker_counts_code_lines_and_parameters(tmp_path):
    checker = _checker()
    body = "\n".join(f"    x{i} = {i}  # a comment" for i in range(61))
    source = f'def long(a, b, c, d, e, f, g, h, i, j, k):\n    """Doc.\n\n    More doc.\n    """\n\n    # only a comment\n{body}\n'
    source += textwrap.dedent('''
        class C:
            def short(self, a):
                """Doc."""
                return a
        ''')
    (tmp_path / "probnn").mkdir()
    (tmp_path / "probnn" / "m.py").write_text(source)
    assert checker.functions(tmp_path / "probnn" / "m.py", tmp_path) == [
        ("probnn/m.py:long", 61, 11),
        ("probnn/m.py:C.short", 1, 1),
    ]
    assert checker.violations(tmp_path) == [
        "probnn/m.py:long: 61 code lines (limit 60)",
        "probnn/m.py:long: 11 parameters (limit 10)",
    ]


def test_no_function_in_probnn_over_the_limits():
    assert _checker().violations(ROOT) == []
