"""Data preparation and argument checks for `probnn.fit`.

Arrays are converted to NumPy (1-D becomes a column), checked for matching
rows and NaN/inf, then cast to the model's dtypes (`_cast_to_model`): float
inputs to the model's declared input dtype, float targets to the loss's dtype
(float64 for a float64 model, float32 otherwise, also under mixed precision),
never simply to floatx. Datasets are checked to yield `(x, y)` batches.
"""

import collections
import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

from probnn.training.batching import member_targets
from probnn.training.compiled import cached_program, needs_autograph
from probnn.training.errors import _err


def _is_dataset(obj):
    return isinstance(obj, tf.data.Dataset)


def _as_array(name, value):
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise _err(f"{name} must be a NumPy array or tensor, got {type(value).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise _err(f"{name} must be a numeric array (float, int or bool), got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise _err(f"{name} must have a leading batch dimension, got a scalar")
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr


def _check_finite(name, arr):
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise _err(
            f"{name} contains NaN or inf (first offending row index {row}, "
            f"{int(bad.sum())} offending rows); remove or impute them before training"
        )


def _as_inputs(name, x):
    """`x` as an array, a tuple of arrays or a dict of arrays (multi-input models)."""
    if isinstance(x, dict):
        if not x:
            raise _err(f"{name} is an empty dict")
        return {key: _as_array(f"{name}[{key!r}]", value) for key, value in x.items()}
    if (
        isinstance(x, (tuple, list))
        and not np.isscalar(x[0] if len(x) else 0)
        and all(np.ndim(v) >= 1 and not isinstance(v, (tuple, list)) for v in x)
    ):
        return tuple(_as_array(f"{name}[{i}]", value) for i, value in enumerate(x))
    return _as_array(name, x)


def _leaves(name, nest):
    """`(label, array)` pairs of a nest from `_as_inputs`."""
    if isinstance(nest, dict):
        return [(f"{name}[{key!r}]", value) for key, value in nest.items()]
    if isinstance(nest, tuple):
        return [(f"{name}[{i}]", value) for i, value in enumerate(nest)]
    return [(name, nest)]


class _Arrays:
    """In-memory training or validation data: `x` (a nest), `y`, `weights`, `n` rows.

    `member_wise`: the arrays of a stack of M members carry a member axis,
    `x` leaves `(n, M, *features)`, `y` `(n, M, *target)`, `weights` `(n, M)`
    (member m's data is slice `[:, m]`).
    """

    def __init__(self, x, y, weights=None, member_wise=False):
        self.x, self.y, self.weights = x, y, weights
        self.member_wise = member_wise
        self.n = int(y.shape[0])


def _template_ranks(model):
    """The ranks (batch axis included) of the inputs of a stack's template, or None (not a stack)."""
    template = getattr(model, "probnn_template", None)
    if not getattr(model, "probnn_members", None) or template is None:
        return None
    try:
        return [len(t.shape) for t in keras.tree.flatten(template.inputs)]
    except (AttributeError, ValueError):
        return None


def _is_member_wise(model, x, x_name):
    """Whether the arrays `x` carry a stack's member axis: the template's input ranks + 1.

    Example:
    >>> import numpy as np, probnn
    >>> stack = probnn.Ensemble(lambda: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), 3)
    >>> _is_member_wise(stack, np.zeros((5, 3, 2)), "x"), _is_member_wise(stack, np.zeros((5, 2)), "x")
    (True, False)
    """
    ranks = _template_ranks(model)
    leaves = _leaves(x_name, x)
    if ranks is None or sorted(a.ndim for _, a in leaves) != sorted(r + 1 for r in ranks):
        return False
    members = model.probnn_members
    for label, array in leaves:
        if array.shape[1] != members:
            raise _err(
                f"{label} has shape {array.shape}: member-wise data for a stack of {members} "
                f"members must have shape (rows, {members}, *features)"
            )
    return True


def _member_wise_targets(y, members, y_name):
    """Member-wise targets `(n, M, *target)`; `(n, M)` scalar targets become `(n, M, 1)`."""
    if y.ndim < 2 or y.shape[1] != members:
        raise _err(
            f"{y_name} has shape {y.shape}, but member-wise inputs need member-wise targets of "
            f"shape (rows, {members}, *target)"
        )
    return y[:, :, None] if y.ndim == 2 else y


def _check_weights(sample_weight, y, y_name, member_wise):
    """Per-row weights `(n,)`, or `(n, M)` (a shared `(n,)` broadcast) for member-wise data."""
    weights = np.asarray(sample_weight, dtype=np.float32)
    if member_wise:
        members = y.shape[1]
        if weights.shape == (y.shape[0],):
            weights = np.repeat(weights[:, None], members, axis=1)
        if weights.shape != (y.shape[0], members):
            raise _err(
                f"sample_weight must have shape ({y.shape[0]},) or ({y.shape[0]}, {members}) "
                f"(one weight per row, or per row and member, of {y_name}), got {np.shape(sample_weight)}"
            )
    else:
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.shape != (y.shape[0],):
            raise _err(
                f"sample_weight must have shape ({y.shape[0]},) (one weight per row of "
                f"{y_name}), got {np.shape(sample_weight)}"
            )
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise _err("sample_weight must be finite and >= 0")
    if not (weights.sum(axis=0) > 0).all():
        raise _err(
            "sample_weight is zero for every row"
            + (" of a member" if member_wise else "")
            + "; nothing to train on"
        )
    return weights


def _check_xy(x, y, sample_weight=None, x_name="x", y_name="y", model=None):
    if y is None:
        raise _err(
            f"{y_name} is required when {x_name} is an array (pass targets, or a "
            "tf.data.Dataset yielding (x, y) batches as x)"
        )
    x = _as_inputs(x_name, x)
    y = _as_array(y_name, y)
    member_wise = _is_member_wise(model, x, x_name)
    if member_wise:
        y = _member_wise_targets(y, model.probnn_members, y_name)
    for label, array in _leaves(x_name, x):
        if array.shape[0] != y.shape[0]:
            raise _err(
                f"{label} and {y_name} must have the same number of rows, got "
                f"{array.shape[0]} and {y.shape[0]}"
            )
        _check_finite(label, array)
    if y.shape[0] == 0:
        raise _err(f"{x_name} and {y_name} are empty; need at least one row")
    _check_finite(y_name, y)
    weights = None if sample_weight is None else _check_weights(sample_weight, y, y_name, member_wise)
    return _Arrays(x, y, weights, member_wise)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _err(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_dataset(name, ds):
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        raise _err(
            f"{name} must be a tf.data.Dataset yielding (x, y) or (x, y, sample_weight) "
            f"batches; its element spec is {spec!r}"
        )
    if int(ds.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise _err(
            f"{name} is an infinite tf.data.Dataset (e.g. .repeat() without a count); "
            "an epoch is one pass over the dataset, so pass a finite one (.take(n))"
        )
    return ds


Arguments = collections.namedtuple(
    "Arguments",
    [
        "epochs",
        "batch_size",
        "checkpoint_every",
        "validation_batch_size",
        "chunk",
        "jit_compile",
        "verbose",
        "callbacks",
        "initial_epoch",
        "strategy",
    ],
)
Arguments.__doc__ = "`fit`'s checked scalar arguments; `chunk` is `steps_per_execution` in steps."


def check_model(model):
    """`model` must be a Keras 3 model."""
    if not isinstance(model, keras.Model):
        raise _err(f"model must be a keras.Model (Keras 3), got {type(model).__name__}")


def check_arguments(
    epochs,
    batch_size,
    checkpoint_every,
    validation_batch_size,
    steps_per_execution,
    jit_compile,
    verbose,
    callbacks,
    initial_epoch,
    strategy,
):
    """Checks `fit`'s scalar arguments (those of its signature); returns them normalised as `Arguments`.

    Example:
    >>> args = check_arguments(3, 64, 1, None, "epoch", "auto", 0, None, None, None)
    >>> args.validation_batch_size, args.chunk, args.callbacks
    (1024, 2147483647, [])
    """
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    checkpoint_every = _positive_int("checkpoint_every", checkpoint_every)
    if validation_batch_size is None:
        validation_batch_size = max(batch_size, 1024)
    validation_batch_size = _positive_int("validation_batch_size", validation_batch_size)
    if steps_per_execution == "epoch":
        chunk = 2**31 - 1
    else:
        chunk = _positive_int("steps_per_execution (or 'epoch')", steps_per_execution)
    if jit_compile not in ("auto", True, False):
        raise _err(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
    if verbose not in (0, 1, 2):
        raise _err(f"verbose must be 0, 1 or 2, got {verbose!r}")
    callbacks = _check_callbacks(callbacks)
    if initial_epoch is not None and (
        isinstance(initial_epoch, bool)
        or not isinstance(initial_epoch, numbers.Integral)
        or initial_epoch < 0
    ):
        raise _err(f"initial_epoch must be a non-negative integer or None, got {initial_epoch!r}")
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise _err(f"strategy must be a tf.distribute.Strategy, got {type(strategy).__name__}")
    return Arguments(
        epochs,
        batch_size,
        checkpoint_every,
        validation_batch_size,
        chunk,
        jit_compile,
        verbose,
        callbacks,
        initial_epoch,
        strategy,
    )


def _check_callbacks(callbacks):
    """`callbacks` as a list of Keras 3 callbacks."""
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise _err(
                "callbacks must be keras.callbacks.Callback objects (Keras 3), got "
                f"{type(callback).__module__}.{type(callback).__name__}"
            )
    return callbacks


def check_seed(seed, model, strategy):
    """`fit`'s seed: an int, None, or (a stack of M members) a tuple of M ints (one plain-model seed each).

    Example:
    >>> import keras
    >>> check_seed(3, keras.Sequential([keras.Input((1,))]), None)
    3
    """
    seed = _check_seed(seed, model, strategy)
    if seed is None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise _err(
            "seed=None with a MultiWorkerMirroredStrategy: every worker must shuffle "
            "the same way, pass the same integer seed to every worker"
        )
    return seed


def _is_seed(value):
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 0


def _check_seed(seed, model, strategy):
    """An int, None, or (a stack of M members) a tuple of M ints: one plain-model seed each."""
    if seed is None or _is_seed(seed):
        return seed
    members = getattr(model, "probnn_members", None)
    if isinstance(seed, (list, tuple, np.ndarray)) and members:
        seed = tuple(seed)
        if len(seed) != members or not all(_is_seed(s) for s in seed):
            raise _err(
                f"seed must be a non-negative integer, None, or one such integer per "
                f"member ({members}), got {list(seed)!r}"
            )
        if strategy is not None:
            raise _err("one seed per member is not supported with strategy=")
        return tuple(int(s) for s in seed)
    raise _err(
        f"seed must be a non-negative integer or None (or, for a stack of members, "
        f"one per member), got {seed!r}"
    )


FitData = collections.namedtuple("FitData", ["arrays", "dataset", "validation"])
FitData.__doc__ = """The data of one `fit`: in-memory `arrays` or a `dataset` (the other is None), `validation`.

`arrays` and in-memory `validation` have `x` (an array or a tuple or dict of
arrays), `y`, `weights` (or None) and `n` rows; a validation dataset stays a
`tf.data.Dataset`.
"""


def prepare_data(x, y, sample_weight, validation_data, model=None):
    """Checks `fit`'s data arguments; returns them as `FitData`.

    For a stack of members (`model.probnn_members`), arrays whose inputs have
    the template's input ranks + 1 are member-wise (`_Arrays.member_wise`):
    `(rows, M, *features)`, member m's data is slice `[:, m]`.

    Example:
    >>> import numpy as np
    >>> data = prepare_data(np.zeros(5), np.ones(5), None, None)
    >>> data.arrays.x.shape, data.arrays.n, data.dataset, data.validation
    ((5, 1), 5, None, None)
    """
    if x is None:
        raise _err("x is required (an array with y, or a tf.data.Dataset of (x, y) batches)")
    if _is_dataset(x):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise _err(
                    f"{name} must be None when x is a tf.data.Dataset (it must yield "
                    "(x, y) or (x, y, sample_weight) batches)"
                )
        dataset = _check_member_wise_dataset("x", _check_dataset("x", x), model)
        arrays = None
    else:
        arrays = _check_xy(x, y, sample_weight, model=model)
        dataset = None
    if validation_data is not None:
        if _is_dataset(validation_data):
            _check_member_wise_dataset(
                "validation_data", _check_dataset("validation_data", validation_data), model
            )
        else:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise _err(
                    "validation_data must be (x_val, y_val) or a tf.data.Dataset of "
                    f"(x, y) batches, got {type(validation_data).__name__}"
                )
            validation_data = _check_xy(
                *validation_data, x_name="validation x", y_name="validation y", model=model
            )
            if arrays is not None:
                _check_validation_rows(arrays, validation_data)
    return FitData(arrays, dataset, validation_data)


def _check_validation_rows(arrays, validation):
    """Validation inputs must have the training inputs' row shapes (either may be member-wise)."""
    for (label, a), (_, v) in zip(_leaves("x", arrays.x), _leaves("x", validation.x)):
        a_row, v_row = a.shape[1 + arrays.member_wise :], v.shape[1 + validation.member_wise :]
        if v_row != a_row:
            raise _err(f"validation {label} has row shape {v_row}, but {label} has {a_row}")


def _check_member_wise_dataset(name, dataset, model):
    """A `tf.data.Dataset` with member-wise inputs (a stack's template ranks + 1) is refused."""
    ranks = _template_ranks(model)
    if ranks is not None:
        given = sorted(len(s.shape) for s in tf.nest.flatten(dataset.element_spec[0]))
        if given == sorted(r + 1 for r in ranks):
            raise _err(
                f"{name} yields member-wise inputs (batch, members, *features); member-wise data "
                "is supported for in-memory arrays only, pass x and y as arrays"
            )
    return dataset


def sample_batch(arrays, dataset, members):
    """A batch of up to three rows, shaped as training feeds them to the model."""
    if arrays is not None:
        x = tf.nest.map_structure(lambda a: a[:3], arrays.x)
        y = arrays.y[:3]
        if members and not arrays.member_wise:
            x = tf.nest.map_structure(lambda a: np.repeat(a[:, None], members, axis=1), x)
            y = np.repeat(y[:, None], members, axis=1)
        return x, y
    batch = next(iter(dataset.take(1)))
    return batch[0], batch[1]


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _declared_inputs(model):
    """The model's declared input shapes per row (functional/Sequential), or None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return [tuple(t.shape[1:]) for t in inputs], [getattr(t, "name", None) for t in inputs]


def check_inputs(model, arrays, members):
    """Wrong number of input features: a one-line ValueError before any tracing."""
    declared = _declared_inputs(model)
    if arrays is None or declared is None or members:
        return
    shapes, names = declared
    leaves = _leaves("x", arrays.x)
    if isinstance(arrays.x, dict) and all(n in arrays.x for n in names):
        leaves = [(f"x[{n!r}]", arrays.x[n]) for n in names]
    if len(leaves) != len(shapes):
        raise _err(
            f"x has {len(leaves)} input array(s), but the model has {len(shapes)} "
            f"inputs with row shapes {shapes}"
        )
    for (label, array), expected in zip(leaves, shapes):
        given = array.shape[1:]
        if len(given) != len(expected) or any(e is not None and g != e for g, e in zip(given, expected)):
            raise _err(
                f"{label} has shape {array.shape} (rows of shape {given}), but the "
                f"model expects rows of shape {expected}"
            )


def _check_head_targets(model, objective, arrays, y, label):
    """Targets whose rows are not the head's event shape: a one-line ValueError."""
    from probnn.heads.base import find_head

    head = find_head(model)
    event = tuple(head.event_shape)
    accepted = [event] + ([(1,)] if event == () else [])
    given = tuple(arrays.y.shape[1:]) if arrays is not None else tuple(y.shape[1:])
    # Member-wise arrays carry the member axis; otherwise (arrays or a dataset) a stack's
    # targets are per row, and the step broadcasts them to the members.
    member_wise = arrays is not None and arrays.member_wise and objective.members
    if member_wise:
        given = given[1:]
    if given not in accepted and not (event == () and given == ()):
        shape = arrays.y.shape if arrays is not None else tuple(y.shape)
        rows = "(rows, members)" if member_wise else "(rows,)"
        raise _err(
            f"{label} has shape {tuple(shape)}, but {type(head).__name__} expects "
            f"targets of shape {rows} + {accepted[-1]}"
            + (f" or {rows} + {event}" if len(accepted) > 1 else "")
        )


def _check_targets(model, objective, arrays, dataset):
    """Targets of the wrong shape: a one-line ValueError before any tracing."""
    x, y = sample_batch(arrays, dataset, objective.members)
    label = "y" if arrays is not None else "the dataset's targets"
    if objective.report_nll:
        _check_head_targets(model, objective, arrays, y, label)
    # Traced, not run: shape errors surface, and the loss's side effects (if any) do not happen.
    shapes = {}

    def probe(x, y):
        y_pred = model(x, training=False)
        shapes["y_pred"] = tuple(y_pred.shape[1:])
        if arrays is None and objective.members:
            y = member_targets(y, objective.members)
        values = objective.per_example(y, y_pred)
        shapes["values"] = tuple(values.shape)
        return values

    spec = lambda a: tf.TensorSpec(np.shape(a), tf.as_dtype(a.dtype))  # noqa: E731
    if objective.report_nll and _declared_inputs(model) is not None:
        return  # the head's own loss on a model with declared inputs: checked above
    key = ("probe", objective.key, str(tf.nest.map_structure(spec, x)), str(spec(y)))
    if key in model.__dict__.get("_probnn_programs", {}):
        return
    try:
        try:
            tf.function(probe, autograph=False).get_concrete_function(tf.nest.map_structure(spec, x), spec(y))
        except Exception as exc:
            if not needs_autograph(exc):
                raise
            tf.function(probe).get_concrete_function(tf.nest.map_structure(spec, x), spec(y))
    except Exception as exc:
        if "y_pred" not in shapes:
            rows = [tuple(np.shape(a))[1:] for a in tf.nest.flatten(x)]
            raise _err(
                f"the model cannot be called on x (rows of shape "
                f"{rows[0] if len(rows) == 1 else rows}): {_first_line(exc)}"
            ) from None
        raise _err(
            f"the loss cannot be computed on {label} (rows of shape "
            f"{tuple(np.shape(y))[1:]}) and the model's output (rows of shape "
            f"{shapes['y_pred']}): {_first_line(exc)}"
        ) from None
    expected = (int(np.shape(y)[0]),) + ((objective.members,) if objective.members else ())
    if shapes["values"] != expected:
        raise _err(
            f"the loss gives per-example values of shape {shapes['values']} for a "
            f"batch of {expected[0]} rows (expected {expected}): {label} (rows of shape "
            f"{tuple(np.shape(y))[1:]}) and the model's output (rows of shape "
            f"{shapes['y_pred']}) broadcast against each other"
        )
    cached_program(model, key, lambda: True)


def prepare_for_model(model, objective, data):
    """`data` (`FitData`) checked against the model's head and loss, its arrays cast to the model's dtypes.

    In-memory targets must be in the head's support, a real-valued head not
    adapted to far-from-unit-scale targets gets a warning, arrays are cast
    (`_cast_to_model`) and the targets' shape is checked by tracing the loss.
    """
    arrays, validation = data.arrays, data.validation
    _check_target_support(objective, arrays, "y")
    _warn_target_scale(model, objective, arrays)
    arrays = _cast_to_model(model, objective, arrays)
    if validation is not None and not _is_dataset(validation):
        _check_target_support(objective, validation, "validation y")
        validation = _cast_to_model(model, objective, validation)
    _check_targets(model, objective, arrays, data.dataset)
    return FitData(arrays, data.dataset, validation)


def _input_dtype(model, fallback):
    """The float dtype the model declares for its inputs (all the same), else `fallback`."""
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):
        inputs = []
    dtypes = {np.dtype(t.dtype) for t in inputs if np.dtype(t.dtype).kind == "f"}
    return dtypes.pop() if len(dtypes) == 1 else np.dtype(fallback)


def _cast_to_model(model, objective, data):
    """`data` with float inputs in the model's input dtypes and float targets in the loss's."""
    if data is None:
        return None
    fallback = objective.dtype.name
    dtype = _input_dtype(model, fallback)
    x = tf.nest.map_structure(lambda a: a.astype(dtype, copy=False) if a.dtype.kind == "f" else a, data.x)
    y = data.y.astype(fallback, copy=False) if data.y.dtype.kind == "f" else data.y
    return _Arrays(x, y, data.weights, data.member_wise)


def _check_target_support(objective, data, name):
    """The head's own check of in-memory targets (class labels in range, counts, 0/1)."""
    if data is None or objective.head is None:
        return
    try:
        objective.head.check_targets(data.y)
    except ValueError as exc:
        raise _err(f"{name} does not fit the model's head: {exc}") from None


TARGET_SCALE_RANGE = (0.1, 10.0)


def _warn_target_scale(model, objective, data):
    """Warn once per head when a real-valued head, not adapted, gets targets far from unit scale.

    Far: a standard deviation outside `TARGET_SCALE_RANGE`, or a mean more
    than 10 standard deviations from 0. The network then has to learn the
    targets' offset and scale through its weights (slow, often to a worse
    fit); `head.adapt(y)` before training removes that.
    """
    from probnn.heads.base import RealEventHead, find_head

    if data is None or objective.head is None:
        return
    head = find_head(model)  # the model's own head (objective.head is the loss's copy)
    if (
        not isinstance(head, RealEventHead)
        or not head.supports_target_scaling
        or head.adapted
        or getattr(head, "_probnn_scale_warned", False)
        or data.y.dtype.kind != "f"
    ):
        return
    y = np.asarray(data.y, dtype=np.float64).reshape(data.y.shape[0], -1)
    std, mean = y.std(axis=0), y.mean(axis=0)
    low, high = TARGET_SCALE_RANGE
    if np.all((std >= low) & (std <= high) & (np.abs(mean) <= 10 * std)):
        return
    object.__setattr__(head, "_probnn_scale_warned", True)
    warnings.warn(
        f"probnn.fit: the targets have mean {mean.ravel()[0]:.4g} and standard deviation "
        f"{std.ravel()[0]:.4g}, far from unit scale, and {type(head).__name__} {head.name!r} is not "
        "adapted to them; call head.adapt(y_train) before training so that the network learns in "
        "standard units (distribution() stays in the targets' units)",
        UserWarning,
        stacklevel=4,
    )
