import subprocess
import sys


def test_import_is_light():
    """`import probnn` adds nothing heavy beyond what Keras and TFP import themselves.

    (Keras 3 itself imports matplotlib and scikit-learn when they are
    installed, so the check compares against `import keras, tensorflow_probability`.)
    probnn's own data, plotting and demo modules must not be loaded.
    """
    code = (
        "import sys, keras, tensorflow, tensorflow_probability; "
        "before = set(sys.modules); import probnn; "
        "extra = sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] != 'probnn'); "
        "lazy = [m for m in ('probnn.datasets', 'probnn.plotting', 'probnn.demo', 'probnn.cli') "
        "if m in sys.modules]; "
        "print(repr(extra)); print(repr(lazy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    extra, lazy = eval(out[-2]), eval(out[-1])
    assert lazy == []
    # scipy.stats / scipy.spatial are not needed at import either.
    assert not [m for m in extra if m.startswith(("scipy", "matplotlib", "sklearn", "arviz"))], extra


def test_version():
    import probnn

    assert isinstance(probnn.__version__, str) and probnn.__version__.count(".") == 2


def test_lazy_modules_load_on_first_use():
    import probnn

    assert callable(probnn.datasets.heteroscedastic_cubic)
    assert callable(probnn.plotting.plot_predictive_intervals)
