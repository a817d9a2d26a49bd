"""`tf.function` with XLA, falling back to plain graphs when XLA rejects the model."""

import collections
import logging
import re

import tensorflow as tf

logger = logging.getLogger("probnn.training")


_XLA_ERROR = re.compile(
    r"XLA|xla|jit_compile|Detected unsupported operations|No registered .* OpKernel|"
    r"must be a compile-time constant|not supported on XLA",
)


def _is_xla_failure(exc):
    return isinstance(
        exc,
        (
            tf.errors.InvalidArgumentError,
            tf.errors.UnimplementedError,
            tf.errors.NotFoundError,
            tf.errors.InternalError,
        ),
    ) and bool(_XLA_ERROR.search(str(exc)))


def _warn_xla_fallback(what, exc):
    text = str(exc).strip()
    first_line = text.splitlines()[0][:300] if text else ""
    logger.warning(
        "probnn.fit: XLA could not compile the %s (%s: %s); falling back to tf.function "
        "without jit_compile, which is slower. Pass jit_compile=False to silence this.",
        what,
        type(exc).__name__,
        first_line,
    )


def needs_autograph(exc):
    """Whether tracing failed because the code branches in Python on tensor values."""
    return isinstance(exc, tf.errors.OperatorNotAllowedInGraphError) or (
        "autograph" in str(exc).lower() and isinstance(exc, (TypeError, ValueError))
    )


def _next_attempt(exc, autograph, jit, mode, what):
    """After a first call failed with `exc`: `(autograph, jit)` for the next attempt.

    Tracing and XLA compilation fail before any step runs, so the caller can
    simply build and call again: with AutoGraph when the code branches in
    Python on tensor values, without XLA when `mode` is "auto" and XLA
    rejected the program (logged). Anything else is re-raised.
    """
    if not autograph and needs_autograph(exc):
        return True, jit
    if jit and mode == "auto" and _is_xla_failure(exc):
        _warn_xla_fallback(what, exc)
        return autograph, False
    raise exc


class Fallback:
    """A callable built by `build(jit, autograph)`, built again per `_next_attempt` until a call succeeds.

    Built first without AutoGraph and, unless `jit_compile` is False, with
    XLA. While no call has succeeded yet, a failing call is retried with the
    next attempt's build (AutoGraph for code that branches in Python on
    tensor values, then, with `jit_compile="auto"`, no XLA); after the first
    success the callable is used as it is. `what` names the program in the
    logged XLA warning.

    Example:
    >>> import tensorflow as tf
    >>> square = Fallback(lambda jit, autograph: tf.function(lambda t: t * t, jit_compile=jit), "auto", "square")
    >>> float(square(tf.constant(3.0)))
    9.0
    """

    def __init__(self, build, jit_compile, what):
        self._build = build
        self._mode = jit_compile
        self._what = what
        self._autograph = False
        self._jit = jit_compile is not False
        self._fn = build(self._jit, self._autograph)
        self._checked = False

    def __call__(self, *args):
        if self._checked:
            return self._fn(*args)
        while True:
            try:
                out = self._fn(*args)
                break
            except Exception as exc:
                self._autograph, self._jit = _next_attempt(
                    exc, self._autograph, self._jit, self._mode, self._what
                )
                self._fn = self._build(self._jit, self._autograph)
        self._checked = True
        return out


class Compiled(Fallback):
    """`fn` as a tf.function built with XLA when possible, falling back per `jit_compile`.

    Traced without AutoGraph first: probnn's loops use `tf.while_loop` and
    `tf.cond` explicitly and Keras 3 layers need no AutoGraph (they also run
    on JAX), while AutoGraph's source transformation was most of the tracing
    time (measured: 5.0 of 5.9 s for the benchmark MLP's training loop). Code
    that branches in Python on tensor values (raising
    `OperatorNotAllowedInGraphError`) is traced again with AutoGraph.
    `options` are further `tf.function` arguments.

    Example:
    >>> import tensorflow as tf
    >>> double = Compiled(lambda t: 2 * t, "auto", "doubling")
    >>> float(double(tf.constant(1.5)))
    3.0
    """

    def __init__(self, fn, jit_compile, what, **options):
        def build(jit, autograph):
            return tf.function(fn, jit_compile=jit, autograph=autograph, **options)

        super().__init__(build, jit_compile, what)

    @property
    def tracing_count(self):
        return self._fn.experimental_get_tracing_count()


def last_batch_jit(jit_compile):
    """`jit_compile` for the one-step program of an epoch's smaller last batch.

    With "auto" it is a plain graph: one step per epoch gains nothing from XLA,
    whose compilation of it cost as much as that of the whole loop (1.0-1.7 s
    of a cold 5-epoch fit of the benchmark MLP, docs/design.md). An explicit
    True or False is kept.
    """
    return False if jit_compile == "auto" else jit_compile


_PROGRAMS_PER_MODEL = 8


def cached_program(model, key, make):
    """The compiled program `make()` for `key`, cached on the model (least recently used out).

    The cache lives in the model's `__dict__` (set with `object.__setattr__`,
    outside Keras's and TensorFlow's attribute tracking), so it goes away with
    the model.
    """
    cache = model.__dict__.get("_probnn_programs")
    if cache is None:
        cache = collections.OrderedDict()
        object.__setattr__(model, "_probnn_programs", cache)
    try:
        program = cache[key]
    except KeyError:
        program = cache[key] = make()
        while len(cache) > _PROGRAMS_PER_MODEL:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return program
