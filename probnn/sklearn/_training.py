"""Training an estimator's network with `probnn.fit`, on a pooled twin of the model.

`probnn.fit` caches its compiled programs on the model, so a NEW model traces
and compiles XLA again (about 1.5 s for a small MLP on 2 CPU cores) while the
training itself of a small tabular data set takes a fraction of that.
scikit-learn fits many new models of one architecture: clones in
cross-validation and grid search, refits, estimator checks. So every
architecture (a `key`) gets one twin model with its own Adam optimizer, kept
in a small pool: a fit copies its freshly initialised weights into the twin,
zeroes the optimizer's state (step count and moments), trains the twin with
`probnn.fit` (reusing its compiled programs) and copies the trained weights
back. The result is the fit of the estimator's own model with a new Adam
optimizer, without recompiling. A twin in use by another thread is not
shared: that fit trains its own model.
"""

import collections
import contextlib
import random
import threading

import keras

from probnn.training import fit

_POOL_SIZE = 8
_pool = collections.OrderedDict()
_pool_lock = threading.Lock()


@contextlib.contextmanager
def seeded(seed):
    """Seed Keras's unseeded initialisers and seed generators within the block.

    They draw their seeds from Python's `random` module
    (`keras.random.make_default_seed`); its state is restored afterwards, so
    nothing global changes.
    """
    state = random.getstate()
    random.seed(int(seed))
    try:
        yield
    finally:
        random.setstate(state)


class _Twin:
    """A model of one architecture and its optimizer, reused across fits."""

    def __init__(self, model):
        self.model = model
        self.optimizer = keras.optimizers.Adam()
        self.lock = threading.Lock()


def _twin(key, build):
    with _pool_lock:
        twin = _pool.get(key)
        if twin is not None:
            _pool.move_to_end(key)
            return twin
    twin = _Twin(build())
    with _pool_lock:
        twin = _pool.setdefault(key, twin)
        while len(_pool) > _POOL_SIZE:
            _pool.popitem(last=False)
    return twin


def _reset(optimizer, learning_rate):
    """The optimizer as new: zero step count and moments, the given learning rate."""
    for variable in optimizer.variables:
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    optimizer.learning_rate = learning_rate


def train(model, data, options, *, key=None, build=None):
    """Train `model` in place on `data` with `options`; return the `keras.callbacks.History`.

    Args:
        model: the estimator's new, initialised model.
        data: `(x, y, sample_weight, validation)`, validation `(x, y)` or None.
        options: dict with `learning_rate`, `epochs`, `batch_size`, `patience` and `seed`.
        key: a hashable description of the architecture (everything that
            makes two models interchangeable), or None: train `model` itself.
        build: builds a new model of that architecture (for the pool).
    """
    twin = _twin(key, build) if key is not None else None
    if twin is None or not twin.lock.acquire(blocking=False):
        return _fit(model, keras.optimizers.Adam(options["learning_rate"]), data, options)
    try:
        twin.model.set_weights(model.get_weights())
        _reset(twin.optimizer, options["learning_rate"])
        history = _fit(twin.model, twin.optimizer, data, options)
        model.set_weights(twin.model.get_weights())
    finally:
        twin.lock.release()
    return history


def _fit(model, optimizer, data, options):
    x, y, sample_weight, validation = data
    callbacks = []
    if validation is not None and options["patience"] is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=options["patience"], restore_best_weights=True
            )
        )
    return fit(
        model,
        x,
        y,
        optimizer=optimizer,
        epochs=options["epochs"],
        initial_epoch=0,
        batch_size=options["batch_size"],
        sample_weight=sample_weight,
        validation_data=validation,
        callbacks=callbacks,
        verbose=0,
        seed=options["seed"],
        jit_compile=options["jit_compile"],
    )
