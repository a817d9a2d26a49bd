import subprocess
import sys


def test_import_is_light():
    """`import probnn` must not pull in matplotlib or load data sets."""
    code = (
        "import sys, probnn; "
        "heavy = [m for m in ('matplotlib', 'sklearn', 'probnn.datasets', 'probnn.plotting') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_version():
    import probnn

    assert isinstance(probnn.__version__, str) and probnn.__version__.count(".") == 2
