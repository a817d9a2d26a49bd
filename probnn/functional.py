"""One Keras model run under many sets of weights at once.

Ensemble members, MCMC chains and posterior draws are all the same network
with different weights. Instead of M copies of the model (M programs, M
dispatches per step), probnn keeps ONE template model and a stack of weights
with a leading axis of size S, and runs the template under every slice of the
stack in one vectorised call: `tf.vectorized_map` over Keras 3's
`model.stateless_call`, which turns the per-slice matmuls into batched ones.
It traces and compiles (also under XLA) as one program, and it is
differentiable with respect to the stacked weights.

This module is the one place in probnn that does so: `probnn.Ensemble`,
`probnn.fit` on an ensemble or a `probnn.GridSearch` stack,
`probnn.predict_distribution(num_samples=)` (K noise draws), and
`probnn.bayes` (chains, posterior draws) all call `stacked_call`. It also
holds the helpers they share: `seed_states` (a stack of non-trainable state
with independent seed-generator states per slice), `pad_rows` and
`in_chunks` (fixed-size, padded chunks: one traced program for every chunk).
"""

import random

import keras
import numpy as np
import tensorflow as tf


def _model_name(model):
    return getattr(model, "name", type(model).__name__)


def stack_weights(models):
    """Stack the trainable weights of structurally identical models.

    Args:
        models: a non-empty sequence of built Keras models with the same
            architecture (same trainable-variable shapes, in the same order).

    Returns:
        A list of tensors, one per trainable variable of `models[0]`, each of
        shape `(len(models),) + variable.shape`.

    Example:
    >>> import keras, probnn
    >>> build = lambda: keras.Sequential([keras.Input((3,)), probnn.heads.NormalHead()])
    >>> stacked = probnn.functional.stack_weights([build() for _ in range(4)])
    >>> [tuple(w.shape) for w in stacked]
    [(4, 3, 2), (4, 2)]
    """
    models = list(models)
    if not models:
        raise ValueError("stack_weights: expected at least one model, got none")
    reference = [tuple(v.shape) for v in models[0].trainable_variables]
    for i, model in enumerate(models[1:], start=1):
        shapes = [tuple(v.shape) for v in model.trainable_variables]
        if shapes != reference:
            raise ValueError(
                f"stack_weights: model {i} ({_model_name(model)}) has trainable weights of "
                f"shapes {shapes}, model 0 has {reference}; the models must share one architecture"
            )
    return [
        tf.stack([tf.convert_to_tensor(m.trainable_variables[j]) for m in models])
        for j in range(len(reference))
    ]


def unstack_weights(stacked, index):
    """The weights of slice `index` of a stack, in the order `stack_weights` gives."""
    return [w[index] for w in stacked]


def check_stacked(model, stacked, owner="stacked_call"):
    """Check `stacked` against `model.trainable_variables`; return the stack size S."""
    variables = model.trainable_variables
    if len(stacked) != len(variables):
        raise ValueError(
            f"{owner}: model {_model_name(model)} has {len(variables)} trainable weights, "
            f"got {len(stacked)} stacked tensors"
        )
    size = None
    for variable, weight in zip(variables, stacked):
        shape = tuple(weight.shape)
        if len(shape) != len(variable.shape) + 1 or shape[1:] != tuple(variable.shape):
            raise ValueError(
                f"{owner}: weight {variable.path} has shape {tuple(variable.shape)}, so its stack "
                f"must have shape (S,) + {tuple(variable.shape)}; got {shape}"
            )
        if size is None:
            size = shape[0]
        elif shape[0] is not None and size is not None and shape[0] != size:
            raise ValueError(
                f"{owner}: stacked weights disagree on the stack size: {size} and {shape[0]} "
                f"(weight {variable.path})"
            )
    return size


def stacked_call(
    model,
    stacked_weights,
    x,
    *,
    non_trainable=None,
    training=False,
    x_stacked=False,
    return_losses=False,
    gradient="per_slice",
):
    """Run `model` under every slice of a stack of trainable weights, vectorised.

    Two choices trade compile time and step time against each other
    (measured on 6 slots of the UCI network on a 5,000-row data set, with
    the same validation NLL to 4 digits either way):

    - the seed state: `non_trainable=None` shares the model's state (one
      seed state) among the slices, so pfor keeps the stateless random ops
      of dropout or Flipout vectorised; a stacked `non_trainable` (see
      `seed_states`) gives each slice its own noise, for which pfor runs
      those ops in a sequential loop (MC-dropout epochs 2.1x slower).
    - the gradient: `gradient="per_slice"` (default) takes each slice's
      gradient inside a vectorised map (`_vectorized_with_slice_gradients`);
      it recomputes the forward pass, which doubled the first call's
      compile time (Normal head 2.7 s -> 5.3 s), but a reduction inside the
      model (a variational layer's KL sum, an RBF layer's distances) keeps
      static axes, so an XLA training step compiles once.
      `gradient="vectorized"` differentiates the vectorised graph itself
      (cheaper to compile), where such a reduction takes TF's dynamic
      gradient path and a jit-compiled step recompiled on every call
      (Flipout: 3-25 s per epoch instead of milliseconds): use it only for
      models without such reductions, or outside XLA.

    Args:
        model: a built Keras 3 model (the template; its own weights are not used
            except its non-trainable ones when `non_trainable` is None).
        stacked_weights: tensors of shape `(S,) + w.shape`, one for each `w` in
            `model.trainable_variables`, in that order.
        x: the model's inputs. With `x_stacked=False` every slice sees the same
            `x`; with `x_stacked=True` each tensor in `x` has a leading axis S
            and slice s sees `x[s]`.
        non_trainable: None, to run every slice with the model's current
            non-trainable state (BatchNorm statistics, seed-generator states;
            updates made in the call are dropped), or one tensor for each `v`
            in `model.non_trainable_variables`: a stack of shape
            `(S,) + v.shape` (each slice its own state, e.g. its own dropout
            seeds), or `v.shape` itself (one state shared by every slice: a
            seed state shared so keeps the random ops vectorised, and every
            slice draws the noise it would draw alone with that state).
        training: passed to the model's layers (dropout, batch statistics).
        x_stacked: whether `x` carries the stack axis.
        return_losses: also return each slice's `model.losses` (weight
            regularizers, `add_loss` terms such as a variational layer's KL),
            summed: a tensor of shape `(S,)`.
        gradient: `"per_slice"` or `"vectorized"`, how gradients with respect
            to the stacked weights (and state, inputs) are taken (see above).

    Returns:
        The outputs, with a leading axis S: shape `(S,) + model_output.shape`.
        With a `non_trainable`, the pair `(outputs, updated_non_trainable)`
        (each entry stacked or shared, as given).
        With `return_losses=True`, the per-slice losses are appended to that:
        `(outputs, losses)` or `(outputs, updated_non_trainable, losses)`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> build = lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(8),
    ...                                   probnn.heads.NormalHead()])
    >>> members = [build() for _ in range(5)]
    >>> stacked = probnn.functional.stack_weights(members)
    >>> x = np.ones((7, 3), "float32")
    >>> out = probnn.functional.stacked_call(members[0], stacked, x)
    >>> tuple(out.shape)
    (5, 7, 2)
    >>> bool(np.allclose(out[3], members[3](x), atol=1e-6))
    True
    """
    check_stacked(model, stacked_weights)
    if gradient not in ("per_slice", "vectorized"):
        raise ValueError(f"stacked_call: gradient must be 'per_slice' or 'vectorized', got {gradient!r}")
    stacked_weights = [tf.convert_to_tensor(w) for w in stacked_weights]
    with_state = non_trainable is not None
    if with_state:
        state_variables = model.non_trainable_variables
        if len(non_trainable) != len(state_variables):
            raise ValueError(
                f"stacked_call: model {_model_name(model)} has {len(state_variables)} "
                f"non-trainable variables, got {len(non_trainable)} stacked tensors"
            )
        non_trainable = [tf.convert_to_tensor(v) for v in non_trainable]
        shared_state = {
            j: t for j, (t, v) in enumerate(zip(non_trainable, state_variables)) if _unstacked(t, v)
        }
        stacked_state = [t for j, t in enumerate(non_trainable) if j not in shared_state]
    else:
        shared_state = dict(enumerate(tf.convert_to_tensor(v) for v in model.non_trainable_variables))
        stacked_state = []
    count = len(model.non_trainable_variables)

    def one(args):
        weights = args[0]
        own = iter(args[1] if with_state else ())
        state = [shared_state[j] if j in shared_state else next(own) for j in range(count)]
        inputs = args[-1]
        result = model.stateless_call(
            list(weights), list(state), inputs, training=training, return_losses=return_losses
        )
        outputs, new_state = result[0], list(result[1])
        out = (outputs, new_state) if with_state else (outputs,)
        if return_losses:
            losses = [tf.reduce_sum(loss) for loss in result[2]]
            out += (tf.add_n(losses) if losses else tf.zeros((), outputs.dtype),)
        return out if len(out) > 1 else out[0]

    if not x_stacked:
        # Give every slice its own copy of x: with a loop-invariant x, pfor's MatMul
        # conversion (and its gradient) computes transpose permutations that XLA must
        # treat as compile-time constants, and a jit-compiled training step then
        # recompiles on every call (about 1 s per call on a CPU instead of ms).
        size = tf.shape(stacked_weights[0])[0]
        x = tf.nest.map_structure(lambda t: tf.broadcast_to(t[None], tf.concat([[size], tf.shape(t)], 0)), x)
        x_stacked = True
    args = (stacked_weights,) + ((stacked_state,) if with_state else ()) + (x,)
    if stacked_weights and stacked_weights[0].shape[0] == 1:
        # One slice: a plain call. (pfor over a single iteration also made XLA
        # recompile a jitted training step on every call.)
        out = one(tf.nest.map_structure(lambda t: t[0], args))
        out = tf.nest.map_structure(lambda t: tf.expand_dims(t, 0), out)
    elif gradient == "vectorized":
        out = tf.vectorized_map(one, args)
    else:
        out = _vectorized_with_slice_gradients(one, args)
    if with_state and shared_state:  # a shared state's update is the same in every slice
        new_state = [t[0] if j in shared_state else t for j, t in enumerate(out[1])]
        out = (out[0], new_state) + tuple(out[2:])
    return out


def _unstacked(tensor, variable):
    """Whether a state tensor given for `variable` is shared (its shape) rather than stacked."""
    if len(tensor.shape) == len(variable.shape):
        return True
    if len(tensor.shape) == len(variable.shape) + 1:
        return False
    raise ValueError(
        f"stacked_call: state {variable.path} has shape {tuple(variable.shape)}; give it with that "
        f"shape (shared) or (S,) + that shape (stacked), got {tuple(tensor.shape)}"
    )


def _is_seed_state(variable):
    return variable.name.endswith("seed_generator_state") and "int" in str(variable.dtype)


def seed_states(model, count, seed=None):
    """The non-trainable state of `model` stacked `count` times, with independent noise per slice.

    Every variable is repeated `count` times except the seed-generator states
    of Keras's `SeedGenerator`s (dropout, `probnn.layers` stochastic layers):
    slice k of state j gets its own state, drawn from `SeedSequence([seed, j,
    k])`, so each slice of `stacked_call(..., non_trainable=states)` draws its
    own noise, reproducibly for an integer `seed`.

    Args:
        model: a built Keras model.
        count: the stack size S.
        seed: integer, or None for fresh states (these follow
            `keras.utils.set_random_seed`).

    Returns:
        A list of tensors of shape `(S,) + v.shape`, one per `v` in
        `model.non_trainable_variables`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> model = keras.Sequential([keras.Input((2,)), probnn.layers.MCDropout(0.5),
    ...                           probnn.heads.NormalHead()])
    >>> (state,) = probnn.functional.seed_states(model, 3, seed=0)
    >>> tuple(state.shape), len(np.unique(state.numpy()[:, 0]))
    ((3, 2), 3)
    """
    if seed is None:
        seed = random.randint(0, 2**31 - 2)  # follows keras.utils.set_random_seed
    state = []
    for j, v in enumerate(model.non_trainable_variables):
        value = np.asarray(keras.ops.convert_to_numpy(v))
        stacked = np.repeat(value[None], count, axis=0)
        if _is_seed_state(v):
            for k in range(count):
                entropy = np.random.SeedSequence([int(seed), j, k]).generate_state(value.size)
                stacked[k] = (entropy % (2**31 - 2)).reshape(value.shape).astype(value.dtype)
        state.append(tf.constant(stacked, dtype=v.dtype))
    return state


def pad_rows(array, rows):
    """`array` with its last row repeated up to `rows` rows (unchanged if it has them).

    Example:
    >>> import numpy as np, probnn
    >>> probnn.functional.pad_rows(np.array([[1], [2]]), 4)[:, 0].tolist()
    [1, 2, 2, 2]
    """
    array = np.asarray(array)
    missing = rows - array.shape[0]
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)], axis=0)


def in_chunks(fn, inputs, size, axis=0):
    """`fn` over chunks of `size` leading rows of `inputs`, its outputs joined along `axis`.

    Every chunk has exactly `size` rows (the last one is padded by
    `pad_rows`, and its padding is cut from the output), so a compiled `fn`
    is traced once for every chunk.

    Args:
        fn: a function of a nest shaped like `inputs`, returning one array
            (or tensor) with the chunk's rows along `axis`.
        inputs: an array or a nest of arrays with the same number of rows.
        size: rows per chunk (positive; more than the rows: one chunk of
            the rows, unpadded).
        axis: the axis of `fn`'s output that holds the rows.

    Returns:
        A NumPy array: the outputs of every chunk concatenated along `axis`.

    Example:
    >>> import numpy as np, probnn
    >>> probnn.functional.in_chunks(lambda a: a * 10, np.arange(5), 2).tolist()
    [0, 10, 20, 30, 40]
    """
    leaves = tf.nest.flatten(inputs)
    n = int(np.shape(leaves[0])[0])
    size = min(size, n)
    parts = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        chunk = tf.nest.map_structure(
            lambda a, start=start, stop=stop: pad_rows(np.asarray(a)[start:stop], size), inputs
        )
        out = np.asarray(fn(chunk))
        parts.append(np.take(out, np.arange(stop - start), axis=axis))
    return np.concatenate(parts, axis=axis)


def _differentiable(t):
    return t.dtype.is_floating or t.dtype.is_complex


def _vectorized_with_slice_gradients(fn, args):
    """`tf.vectorized_map(fn, args)`, whose gradient is taken slice by slice INSIDE a vectorised map.

    The plain gradient of `tf.vectorized_map` differentiates the vectorised
    (pfor-converted) graph. There, a reduction inside the model (the KL sum of
    a variational layer, the distances of an RBF layer) has its axes shifted
    by a computed tensor, so its gradient takes TF's dynamic path
    (DynamicStitch), whose indices XLA needs as compile-time constants: a
    jit-compiled training step then recompiled on every call (seconds per
    call instead of milliseconds, measured on an Ensemble of DenseFlipout
    members). Here the backward pass maps, over the slices, the gradient of
    ONE slice's forward pass (built with static axes, then vectorised), at the
    cost of running the forward pass again in the backward pass. The forward
    pass of a slice is a pure function of its arguments (its noise comes from
    the seed states in `args`), so the recomputed pass is the same one.
    """
    flat = tf.nest.flatten(args)
    diff = [i for i, t in enumerate(flat) if _differentiable(t)]
    structure = []

    @tf.custom_gradient
    def run(*flat_in):
        out = tf.vectorized_map(fn, tf.nest.pack_sequence_as(args, list(flat_in)))
        structure.append(out)
        flat_out = tf.nest.flatten(out)
        out_diff = [i for i, t in enumerate(flat_out) if _differentiable(t)]

        def grad(*upstream, variables=None):
            if variables:
                raise ValueError(
                    "stacked_call: the model read variables that are not among its trainable "
                    f"or non-trainable variables ({[v.name for v in variables][:3]}); their "
                    "gradients cannot be taken per slice"
                )
            seeds = [tf.zeros_like(flat_out[i]) if upstream[i] is None else upstream[i] for i in out_diff]

            def slice_gradient(slice_args):
                inputs, seeds_s = slice_args
                inputs = list(inputs)
                with tf.GradientTape() as tape:
                    watched = [inputs[i] for i in diff]
                    tape.watch(watched)
                    outputs = tf.nest.flatten(fn(tf.nest.pack_sequence_as(args, inputs)))
                return tape.gradient(
                    [outputs[i] for i in out_diff],
                    watched,
                    output_gradients=seeds_s,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )

            grads = tf.vectorized_map(slice_gradient, (list(flat_in), seeds))
            result = [None] * len(flat_in)
            for i, g in zip(diff, grads):
                result[i] = g
            return result

        return flat_out, grad

    flat_out = run(*flat)
    return tf.nest.pack_sequence_as(structure[0], flat_out)
