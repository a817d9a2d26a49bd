"""Heads whose parameters are a few blocks of `event_size` values, one block per distribution parameter."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.heads.base import RealEventHead

tfd = tfp.distributions


class ParameterBlocksHead(RealEventHead):
    """Base of heads over `event_size` independent outputs with `num_blocks` parameters each.

    The parameter vector is `num_blocks` blocks of length `event_size`
    (`[first parameter (E), second parameter (E), ...]`); a subclass sets
    `num_blocks`, maps the blocks to a scalar TFP distribution in `_base`
    and describes its support in `_support` (for `check_targets`). The
    distribution is `Independent(_base(*blocks), reinterpreted_batch_ndims=1)`.
    `min_scale` floors every positive parameter.
    """

    num_blocks = 2

    @property
    def params_size(self):
        return self.num_blocks * self.event_size

    def blocks(self, params):
        """The parameter blocks, each of shape `batch + (event_size,)`."""
        return tf.split(self._params(params), self.num_blocks, axis=-1)

    def distribution(self, params):
        return tfd.Independent(self._base(*self.blocks(params)), reinterpreted_batch_ndims=1)

    def _base(self, *blocks):
        raise NotImplementedError

    def _support(self, y):
        """`(description, boolean array: True where y is in the support)`."""
        raise NotImplementedError

    def _invalid_targets(self, y):
        accepted, valid = self._support(y)
        return accepted, ~(valid & np.isfinite(y))
