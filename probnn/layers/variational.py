"""Variational (Bayes-by-backprop) dense and convolution layers for Keras 3.

Each layer keeps a mean-field Gaussian posterior `q(w) = N(loc, softplus(raw_scale)^2)`
over every kernel and bias entry and draws fresh weights on EVERY call, in
training and at prediction: the spread of the outputs over calls is the
model's epistemic uncertainty (`probnn.predict_distribution(model, x,
num_samples=K)` runs K such calls in one compiled program and returns their
mixture). The scales start small (`posterior_scale`, default 0.01), so
training starts close to a deterministic network.

Two estimators of the layer's output under weight noise:

- **Reparameterisation** (`DenseReparameterization`, `Conv1DReparameterization`,
  `Conv2DReparameterization`): one weight sample `w = loc + scale * eps` per
  call, shared by every example of the batch.
- **Flipout** (`DenseFlipout`, `Conv1DFlipout`, `Conv2DFlipout`; Wen et al.
  2018): `x @ loc + ((x * s_in) @ (scale * eps)) * s_out` with random signs
  `s_in`, `s_out` per example (and per channel, shared over the spatial
  positions of a convolution): each example sees its own, decorrelated weight
  perturbation for the price of two matmuls, which lowers the variance of the
  gradient. The bias is sampled once per call in both.

The KL term. Each call adds `kl_weight * KL(q || prior)` (summed over all
kernel and bias entries) to the layer's losses with `add_loss`; `model.fit` and
`probnn.fit` add `model.losses` to the data loss. With the Normal prior the KL is
the closed form; with the scale-mixture prior it is the one-sample Monte Carlo
estimate `log q(w) - log p(w)` at the weights drawn in that call.

**Set `kl_weight = 1 / n_train`** (the number of training examples). The data
loss probnn and Keras minimise is the MEAN negative log likelihood over a
batch, i.e. the evidence lower bound divided by `n_train`; the KL belongs to
the whole data set, so it must be divided by `n_train` too. Left at the default
`kl_weight=1.0`, the KL is weighed as if the data set had ONE example: the
posterior is pulled onto the prior, the weights barely fit the data and the
predictive spread is that of the prior (underfitting, too-wide intervals).
With `kl_weight=0` there is no KL at all: the scales are free to shrink to
zero, the layer becomes a noisy deterministic layer, and the epistemic
uncertainty it reports collapses (overconfident far from the data).

Randomness comes from the layer's own `keras.random.SeedGenerator`
(`seed=` fixes it; its state is a non-trainable variable), drawn as
`keras.random` draws (ThreeFry inside XLA: see `probnn.layers._stochastic`),
so the layers run under XLA, in `probnn.functional.stacked_call`, and in
`model.stateless_call`; the seed state is saved with the model. Like every layer
that draws noise at prediction time they carry the class attribute
`probnn_stochastic = True` (see `probnn.layers._stochastic`).
Convolutions take `channels_last` inputs.
"""

import math

import keras
from keras import ops

from probnn._validation import positive_int, positive_number
from probnn.layers._stochastic import StochasticLayer
from probnn.layers.priors import get_prior


def _inverse_softplus(value):
    return value + math.log(-math.expm1(-value))


def _tuple(owner, name, value, rank):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    value = tuple(value)
    if len(value) != rank or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(
            f"{owner}: {name} must be a positive integer or a tuple of {rank} "
            f"positive integers, got {value!r}"
        )
    return value


class _Variational(StochasticLayer):
    """Shared machinery: posterior variables, weight noise, KL term and configuration."""

    _flipout = False

    def __init__(
        self,
        *,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        posterior_scale=0.01,
        prior="normal",
        kl_weight=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        owner = type(self).__name__
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.posterior_scale = positive_number(owner, "posterior_scale", posterior_scale)
        self.prior = get_prior(prior, owner)
        if isinstance(kl_weight, bool) or not kl_weight >= 0:
            raise ValueError(
                f"{owner}: kl_weight must be a number >= 0 (normally 1 / n_train), got {kl_weight!r}"
            )
        self.kl_weight = float(kl_weight)

    # -- what a subclass provides -------------------------------------------------
    def _kernel_shape(self, in_channels):
        raise NotImplementedError

    def _apply(self, inputs, kernel):
        """The layer's linear operation (matmul or convolution) without bias."""
        raise NotImplementedError

    @property
    def _out_channels(self):
        raise NotImplementedError

    # -- Keras layer ----------------------------------------------------------------
    def _posterior(self, name, shape, initializer):
        loc = self.add_weight(name=f"{name}_loc", shape=shape, initializer=initializer)
        raw = self.add_weight(
            name=f"{name}_raw_scale",
            shape=shape,
            initializer=keras.initializers.Constant(_inverse_softplus(self.posterior_scale)),
        )
        return loc, raw

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"{type(self).__name__}: the last input axis (channels/features) "
                f"must be known, got input shape {tuple(input_shape)}"
            )
        self.kernel_loc, self.kernel_raw_scale = self._posterior(
            "kernel", self._kernel_shape(int(channels)), self.kernel_initializer
        )
        if self.use_bias:
            self.bias_loc, self.bias_raw_scale = self._posterior(
                "bias", (self._out_channels,), self.bias_initializer
            )

    def _sample(self, loc, raw):
        """Posterior scale, a standard-normal draw and the perturbation `scale * eps`."""
        scale = ops.softplus(raw)
        eps = self._normal(ops.shape(loc), loc.dtype)
        return scale, scale * eps

    def _kl(self, loc, scale, delta):
        closed = self.prior.kl(loc, scale)
        if closed is None:  # Monte Carlo: log q(w) - log p(w) at the drawn w = loc + delta
            z = delta / scale
            log_q = -0.5 * z * z - ops.log(scale) - 0.5 * math.log(2.0 * math.pi)
            closed = log_q - self.prior.log_prob(loc + delta)
        return ops.sum(closed)

    def _signs(self, like, channels):
        """Random +-1 per example and channel, broadcast over any axes in between."""
        shape = (ops.shape(like)[0],) + (1,) * (len(like.shape) - 2) + (channels,)
        bits = self._randint(shape, 0, 2)
        return ops.cast(2 * bits - 1, like.dtype)

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        loc = ops.cast(self.kernel_loc, self.compute_dtype)
        scale, delta = self._sample(loc, ops.cast(self.kernel_raw_scale, self.compute_dtype))
        if self._flipout:
            outputs = self._apply(inputs, loc)
            noise = self._apply(inputs * self._signs(inputs, inputs.shape[-1]), delta)
            outputs = outputs + noise * self._signs(outputs, self._out_channels)
        else:
            outputs = self._apply(inputs, loc + delta)
        kl = self._kl(loc, scale, delta)
        if self.use_bias:
            b_loc = ops.cast(self.bias_loc, self.compute_dtype)
            b_scale, b_delta = self._sample(b_loc, ops.cast(self.bias_raw_scale, self.compute_dtype))
            outputs = outputs + b_loc + b_delta
            kl = kl + self._kl(b_loc, b_scale, b_delta)
        self.add_loss(self.kl_weight * kl)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def kl_divergence(self):
        """KL(q || prior) of the current posterior, summed over kernel and bias, unweighted.

        Closed form for a prior that has one; for the scale-mixture prior a
        one-sample Monte Carlo estimate (it advances the layer's seed generator).
        """
        total = 0.0
        pairs = [(self.kernel_loc, self.kernel_raw_scale)]
        if self.use_bias:
            pairs.append((self.bias_loc, self.bias_raw_scale))
        for loc, raw in pairs:
            loc = ops.convert_to_tensor(loc)
            scale, delta = self._sample(loc, ops.convert_to_tensor(raw))
            total = total + self._kl(loc, scale, delta)
        return total

    def get_config(self):
        config = super().get_config()
        config.update(
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            posterior_scale=self.posterior_scale,
            prior=keras.saving.serialize_keras_object(self.prior),
            kl_weight=self.kl_weight,
        )
        return config


class _VariationalDense(_Variational):
    """A dense layer `activation(x @ kernel + bias)` with a variational posterior."""

    def __init__(self, units, **kwargs):
        positive_int(type(self).__name__, "units", units)
        super().__init__(**kwargs)
        self.units = units

    def _kernel_shape(self, in_channels):
        return (in_channels, self.units)

    @property
    def _out_channels(self):
        return self.units

    def _apply(self, inputs, kernel):
        return ops.matmul(inputs, kernel)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


class _VariationalConv(_Variational):
    """An N-D convolution (channels_last) with a variational posterior over kernel and bias."""

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, **kwargs):
        owner = type(self).__name__
        positive_int(owner, "filters", filters)
        if str(padding).lower() not in ("valid", "same"):
            raise ValueError(f"{owner}: padding must be 'valid' or 'same', got {padding!r}")
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = _tuple(owner, "kernel_size", kernel_size, self.rank)
        self.strides = _tuple(owner, "strides", strides, self.rank)
        self.dilation_rate = _tuple(owner, "dilation_rate", dilation_rate, self.rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{owner}: strides > 1 cannot be combined with dilation_rate > 1")
        self.padding = str(padding).lower()

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__}: expected inputs of rank {self.rank + 2} "
                f"(batch, {'spatial, ' * self.rank}channels), got shape "
                f"{tuple(input_shape)}"
            )
        super().build(input_shape)

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels, self.filters)

    @property
    def _out_channels(self):
        return self.filters

    def _apply(self, inputs, kernel):
        return ops.conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )

    def compute_output_shape(self, input_shape):
        spatial = []
        for n, k, s, d in zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate):
            if n is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-n // s))
            else:
                spatial.append((n - d * (k - 1) - 1) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )
        return config


_ARGS = """
    Args:{first}
        activation: activation applied to the output (name or callable).
        use_bias: whether the layer has a (variational) bias.
        kernel_initializer: initializer of the kernel's posterior MEAN.
        bias_initializer: initializer of the bias's posterior mean.
        posterior_scale: starting posterior standard deviation of every weight (> 0).
        prior: `"normal"` (N(0, 1)), `"scale_mixture"` (two Normals, Blundell et al.),
            a `probnn.layers.NormalPrior(scale)` / `ScaleMixturePrior(...)` object or
            its serialized dict.
        kl_weight: factor of the KL term added with `add_loss`: set it to
            1 / (number of training examples); see the module docstring for
            what happens at 1.0 (the default) or 0.
        seed: integer seed of the layer's `keras.random.SeedGenerator`, or None.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).
"""
_DENSE_ARGS = _ARGS.format(first="\n        units: number of outputs (>= 1).")
_CONV_ARGS = _ARGS.format(
    first="""
        filters: number of output channels (>= 1).
        kernel_size: an integer or a tuple of `rank` integers.
        strides: an integer or a tuple of `rank` integers.
        padding: `"valid"` or `"same"`.
        dilation_rate: an integer or a tuple of `rank` integers."""
)


@keras.saving.register_keras_serializable(package="probnn")
class DenseReparameterization(_VariationalDense):
    __doc__ = (
        """Dense layer with a Gaussian weight posterior; one weight sample per call.
"""
        + _DENSE_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.DenseReparameterization(3, kl_weight=1 / 100, seed=1)
    >>> a, b = layer(np.ones((2, 4), "float32")), layer(np.ones((2, 4), "float32"))
    >>> tuple(a.shape), bool(np.allclose(a, b)), len(layer.losses)
    ((2, 3), False, 1)
    """
    )


@keras.saving.register_keras_serializable(package="probnn")
class DenseFlipout(_VariationalDense):
    __doc__ = (
        """Dense layer with a Gaussian weight posterior and Flipout perturbations.
"""
        + _DENSE_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.DenseFlipout(3, kl_weight=1 / 100, seed=1)
    >>> out = layer(np.ones((2, 4), "float32"))  # two identical rows, two weight draws
    >>> tuple(out.shape), bool(np.allclose(out[0], out[1]))
    ((2, 3), False)
    """
    )

    _flipout = True


@keras.saving.register_keras_serializable(package="probnn")
class Conv1DReparameterization(_VariationalConv):
    __doc__ = (
        """1-D convolution with a Gaussian weight posterior; one weight sample per call.
"""
        + _CONV_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.Conv1DReparameterization(4, 3, seed=1)
    >>> tuple(layer(np.ones((2, 10, 3), "float32")).shape)
    (2, 8, 4)
    """
    )

    rank = 1


@keras.saving.register_keras_serializable(package="probnn")
class Conv1DFlipout(_VariationalConv):
    __doc__ = (
        """1-D convolution with a Gaussian weight posterior and Flipout perturbations.
"""
        + _CONV_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.Conv1DFlipout(4, 3, padding="same", seed=1)
    >>> tuple(layer(np.ones((2, 10, 3), "float32")).shape)
    (2, 10, 4)
    """
    )

    rank = 1
    _flipout = True


@keras.saving.register_keras_serializable(package="probnn")
class Conv2DReparameterization(_VariationalConv):
    __doc__ = (
        """2-D convolution with a Gaussian weight posterior; one weight sample per call.
"""
        + _CONV_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.Conv2DReparameterization(4, 3, strides=2, seed=1)
    >>> tuple(layer(np.ones((2, 9, 9, 1), "float32")).shape)
    (2, 4, 4, 4)
    """
    )

    rank = 2


@keras.saving.register_keras_serializable(package="probnn")
class Conv2DFlipout(_VariationalConv):
    __doc__ = (
        """2-D convolution with a Gaussian weight posterior and Flipout perturbations.
"""
        + _CONV_ARGS
        + """
    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.Conv2DFlipout(4, (3, 3), seed=1)
    >>> tuple(layer(np.ones((2, 8, 8, 1), "float32")).shape)
    (2, 6, 6, 4)
    """
    )

    rank = 2
    _flipout = True
