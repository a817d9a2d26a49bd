"""`tf.function` with XLA, falling back to plain graphs when XLA rejects the model."""

import logging
import re

import tensorflow as tf

logger = logging.getLogger("probnn.training")


_XLA_ERROR = re.compile(
    r"XLA|xla|jit_compile|Detected unsupported operations|No registered .* OpKernel|"
    r"must be a compile-time constant|not supported on XLA",
)


def _is_xla_failure(exc):
    return isinstance(exc, (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                            tf.errors.NotFoundError, tf.errors.InternalError)) and bool(
        _XLA_ERROR.search(str(exc)))


def _warn_xla_fallback(what, exc):
    text = str(exc).strip()
    first_line = text.splitlines()[0][:300] if text else ""
    logger.warning(
        "probnn.fit: XLA could not compile the %s (%s: %s); falling back to tf.function "
        "without jit_compile, which is slower. Pass jit_compile=False to silence this.",
        what, type(exc).__name__, first_line)


class _Compiled:
    """A tf.function built with XLA when possible, falling back per `jit_compile`."""

    def __init__(self, make, jit_compile, what):
        self._make = make
        self._mode = jit_compile
        self._what = what
        self._fn = make(jit_compile is not False)
        self._checked = jit_compile is False

    def __call__(self, *args):
        if self._checked:
            return self._fn(*args)
        try:
            out = self._fn(*args)
        except Exception as exc:
            if self._mode != "auto" or not _is_xla_failure(exc):
                raise
            _warn_xla_fallback(self._what, exc)
            self._fn = self._make(False)
            out = self._fn(*args)
        self._checked = True
        return out
