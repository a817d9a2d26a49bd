import subprocess
import sys

import pytest


@pytest.mark.e2e
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
        "lazy = [m for m in ('probnn.datasets', 'probnn.plotting', 'probnn.apps.demo', 'probnn.apps.cli') "
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


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.mark.e2e
def test_namespace_is_lazy():
    """`import probnn` imports no TensorFlow and no Keras; the first attribute use does."""
    out = _run(
        "import sys, probnn; print('tensorflow' in sys.modules, 'keras' in sys.modules); "
        "probnn.heads.NormalHead; print('tensorflow' in sys.modules)"
    ).split()
    assert out == ["False", "False", "True"]


@pytest.mark.e2e
def test_load_model_after_plain_import(tmp_path):
    """A saved probnn model loads with only `import probnn, keras`, whichever comes first."""
    import keras
    import numpy as np

    import probnn

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), probnn.heads.StudentTHead()])
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.ones((4, 2), "float32")
    expected = model.predict(x, verbose=0)
    load = (
        f"m = keras.models.load_model({str(path)!r}); "
        "import numpy as np; print(repr(m.predict(np.ones((4, 2), 'float32'), verbose=0).tolist()))"
    )
    for imports in ("import probnn, keras", "import keras, probnn"):
        got = eval(_run(f"{imports}; {load}").splitlines()[-1])
        np.testing.assert_array_equal(np.asarray(got, "float32"), expected)


def test_unknown_attribute_is_an_attribute_error():
    import probnn

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = probnn.nonexistent
