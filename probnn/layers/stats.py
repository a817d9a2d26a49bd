"""Statistics layers: each sample's features summarised by `probnn.stats` ops.

Every layer treats the last axis of its input as one sample of values (the
features of one example) and replaces it by a few statistics, so an input
`(batch, ..., features)` becomes `(batch, ..., k)`. They are differentiable
(p-values included), run under XLA, serialize with `model.save`, and have no
weights.

A row whose features are all equal gives nan skewness / kurtosis (Moments)
and a nan or inf t statistic (TTest), as scipy does; their gradients are then
nan too, so keep such rows out of training (or add a little noise).
"""

import keras
import tensorflow as tf

from probnn import stats
from probnn._validation import positive_int


def _last_axis_shape(fname, input_shape, size):
    if len(input_shape) < 1:
        raise ValueError(f"{fname}: expected an input of rank >= 1; got shape {input_shape}.")
    return tuple(input_shape[:-1]) + (size,)


@keras.saving.register_keras_serializable(package="probnn")
class Moments(keras.layers.Layer):
    """Mean, variance, skewness and kurtosis of each sample's features.

    Args:
        ddof: delta degrees of freedom of the variance (0: the biased,
            maximum-likelihood variance).
        bias: passed to `probnn.stats.skew` / `kurtosis`; False applies the
            small-sample corrections.
        fisher: True for excess kurtosis (normal -> 0), False for Pearson's.
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns (from `call`):
        `(..., 4)`: `[mean, variance, skewness, kurtosis]` along the last axis.

    Example:
    >>> Moments()(tf.constant([[1.0, 2.0, 3.0, 10.0]])).shape
    TensorShape([1, 4])
    """

    def __init__(self, ddof=0, bias=True, fisher=True, **kwargs):
        super().__init__(**kwargs)
        self.ddof = int(ddof)
        self.bias = bool(bias)
        self.fisher = bool(fisher)

    def call(self, inputs):
        summary = stats.describe(inputs, axis=-1, ddof=self.ddof, bias=self.bias)
        kurt = summary.kurtosis if self.fisher else summary.kurtosis + 3.0  # describe's is Fisher's
        return tf.stack([summary.mean, summary.variance, summary.skewness, kurt], axis=-1)

    def compute_output_shape(self, input_shape):
        return _last_axis_shape("Moments", input_shape, 4)

    def get_config(self):
        config = super().get_config()
        config.update(ddof=self.ddof, bias=self.bias, fisher=self.fisher)
        return config


@keras.saving.register_keras_serializable(package="probnn")
class TTest(keras.layers.Layer):
    """Two-sample t statistic (and optionally p-value) between two groups of features.

    The first `group_size` features of each sample are group a, the rest
    group b; the test is `probnn.stats.ttest_ind(a, b)` along the last axis.

    Args:
        group_size: number of features in the first group (>= 1; the second
            group gets the remaining features, at least 1).
        equal_var: True for Student's test, False for Welch's (which needs
            at least 2 features in each group).
        return_pvalue: also return the p-value (differentiable).
        alternative: "two-sided", "less" or "greater".
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns (from `call`):
        `(..., 1)` `[t]`, or `(..., 2)` `[t, p]` if `return_pvalue`.

    Example:
    >>> TTest(2, return_pvalue=True)(tf.constant([[1.0, 2.0, 4.0, 5.0, 6.0]])).shape
    TensorShape([1, 2])
    """

    def __init__(self, group_size, equal_var=True, return_pvalue=False, alternative="two-sided", **kwargs):
        super().__init__(**kwargs)
        positive_int("TTest", "group_size", group_size)
        if alternative not in ("two-sided", "less", "greater"):
            raise ValueError(
                f"TTest: alternative must be 'two-sided', 'less' or 'greater'; got {alternative!r}."
            )
        self.group_size = group_size
        self.equal_var = bool(equal_var)
        self.return_pvalue = bool(return_pvalue)
        self.alternative = alternative

    def build(self, input_shape):
        features = input_shape[-1]
        minimum = 1 if self.equal_var else 2
        if features is not None and (self.group_size < minimum or features - self.group_size < minimum):
            raise ValueError(
                f"TTest: with group_size={self.group_size} and {features} features the groups "
                f"have {self.group_size} and {features - self.group_size} features; "
                f"{'Welch' if not self.equal_var else 'Student'}'s test needs at least "
                f"{minimum} in each."
            )
        super().build(input_shape)

    def call(self, inputs):
        a = inputs[..., : self.group_size]
        b = inputs[..., self.group_size :]
        result = stats.ttest_ind(a, b, axis=-1, equal_var=self.equal_var, alternative=self.alternative)
        outputs = [result.statistic, result.pvalue] if self.return_pvalue else [result.statistic]
        return tf.stack(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return _last_axis_shape("TTest", input_shape, 2 if self.return_pvalue else 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            group_size=self.group_size,
            equal_var=self.equal_var,
            return_pvalue=self.return_pvalue,
            alternative=self.alternative,
        )
        return config


@keras.saving.register_keras_serializable(package="probnn")
class GaussianFit(keras.layers.Layer):
    """Maximum-likelihood normal fit (mean and standard deviation) of each sample's features.

    The standard deviation is the biased (ddof=0) one, as `scipy.stats.norm.fit`.

    Args:
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns (from `call`):
        `(..., 2)`: `[loc, scale]` along the last axis.

    Example:
    >>> loc, scale = GaussianFit()(tf.constant([[1.0, 2.0, 3.0]]))[0].numpy()
    >>> float(loc), round(float(scale), 4)
    (2.0, 0.8165)
    """

    def call(self, inputs):
        loc, scale = stats.norm_fit(inputs, axis=-1)
        return tf.stack([loc, scale], axis=-1)

    def compute_output_shape(self, input_shape):
        return _last_axis_shape("GaussianFit", input_shape, 2)
