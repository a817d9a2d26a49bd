"""Posterior draws of a model's weights, stacked, and the parameters they give at new inputs.

`probnn.predict_distribution(model, x, posterior=idata)` uses these to build the
posterior predictive mixture over draws (`probnn.prediction.mixture_distribution`).
"""

import numpy as np
import tensorflow as tf

from probnn._validation import error, finite_array
from probnn.functional import in_chunks, stacked_call

_DRAW_BATCH = 256


def posterior_weights(model, posterior, *, num_draws=None, owner="posterior_weights"):
    """The posterior draws of `model`'s trainable weights, stacked on a leading draw axis.

    Args:
        model: the Keras model that `probnn.bayes.sample` sampled.
        posterior: the `arviz.InferenceData` it returned.
        num_draws: None for every draw (chains x draws), or K to take K draws
            evenly spaced through the chains (thinning).

    Returns:
        A list of arrays, shape `(K,) + w.shape` for each `w` in
        `model.trainable_variables`, in that order (as `stacked_call` takes them).

    Example (what `sample` stores: one posterior variable per weight, and their
    order in the attribute `probnn_weights`):
    >>> import arviz as az, keras, numpy as np, probnn
    >>> model = keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead(name="head")])
    >>> idata = az.from_dict(posterior={"head_kernel": np.zeros((2, 20, 1, 2)),
    ...                                 "head_bias": np.zeros((2, 20, 2))},
    ...                      attrs={"probnn_weights": "head_kernel,head_bias"})
    >>> [w.shape for w in probnn.bayes.posterior_weights(model, idata, num_draws=10)]
    [(10, 1, 2), (10, 2)]
    """
    group = getattr(posterior, "posterior", None)
    attrs = {**getattr(group, "attrs", {}), **(getattr(posterior, "attrs", None) or {})}
    names = attrs.get("probnn_weights")
    if group is None or not names:
        raise error(
            owner,
            "posterior must be the InferenceData returned by probnn.bayes.sample "
            "(a posterior group with the model's weights)",
        )
    names = names.split(",")
    variables = model.trainable_variables
    if len(names) != len(variables):
        raise error(
            owner,
            f"the posterior has {len(names)} weights, model {model.name!r} has "
            f"{len(variables)} trainable weights; pass the model that was sampled",
        )
    arrays = []
    for name, v in zip(names, variables):
        values = group[name].values
        if values.shape[2:] != tuple(v.shape):
            raise error(
                owner,
                f"posterior variable {name} has draws of shape {values.shape[2:]}, "
                f"the model's weight {v.path} has shape {tuple(v.shape)}",
            )
        arrays.append(values.reshape((-1,) + tuple(v.shape)))
    total = arrays[0].shape[0]
    if num_draws is not None:
        if isinstance(num_draws, bool) or int(num_draws) != num_draws or not 1 <= num_draws <= total:
            raise error(
                owner,
                f"num_draws must be an integer in [1, {total}] (the posterior has "
                f"{total} draws), got {num_draws!r}",
            )
        index = np.round(np.linspace(0, total - 1, int(num_draws))).astype(int)
        arrays = [a[index] for a in arrays]
    return [a.astype(v.dtype) for a, v in zip(arrays, variables)]


def posterior_params(model, posterior, x, *, num_draws=None, batch_size=1024, owner="predict_distribution"):
    """Head parameters at `x` under each posterior draw, shape `(len(x), K, params_size)`.

    The draws are run through the one template model with `stacked_call`, 256
    draws and `batch_size` rows per compiled call.
    """
    weights = posterior_weights(model, posterior, num_draws=num_draws, owner=owner)
    flat_x = tf.nest.flatten(x)
    for a in flat_x:
        finite_array(owner, "x", a, dtype=None)
    run = tf.function(lambda w, xb: stacked_call(model, w, xb, gradient="vectorized"), jit_compile=True)

    def over_rows(w):  # (draws, rows, P) for one chunk of draws
        return in_chunks(lambda xb: run(w, xb), x, batch_size, axis=1)

    out = np.swapaxes(in_chunks(over_rows, weights, _DRAW_BATCH, axis=0), 0, 1)
    if not np.all(np.isfinite(out)):
        raise error(owner, "the posterior draws produced non-finite parameters at x")
    return out
