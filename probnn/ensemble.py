"""Deep ensembles as ONE Keras model: a template network under a stack of M weight sets.

`Ensemble(build_model, members=M)` calls `build_model()` M times (each member
gets its own initialisation), keeps the first model as the template and stores
every trainable weight of the members as one variable of shape `(M,) + w.shape`.
Its call runs the template under all M weight sets at once with
`probnn.functional.stacked_call` (a vectorised map over
`model.stateless_call`): one program, batched matmuls, no Python loop over
members, so training M members costs little more than one member when per-step
overhead dominates (small tabular models).

Protocol with `probnn.fit` (shared with the training loop):

- `probnn_members = M`, `probnn_bootstrap` (train each member on its own
  bootstrap resample of the rows) and `probnn_template` (the template model,
  where `probnn.heads.find_head` looks for the head).
- Inputs of shape `(batch, M, *features)` give each member its own rows
  (`x[:, m]` to member m): `probnn.fit` draws an independent shuffle order per
  member and epoch this way. Inputs of shape `(batch, *features)` go to every
  member. The output has shape `(batch, M, params_size)` either way.
- `model.losses` holds the SUM over members of each member's own losses
  (weight regularizers, KL terms of variational layers), so each member's
  gradient is that of its own objective.

Non-trainable state (BatchNorm statistics, dropout seed-generator states) is
stacked per member too, updated by training calls. Members built with a fixed
`seed` in a layer would draw the same noise; their seed states are therefore
replaced by independent ones (`probnn.functional.seed_states`, seeded by the
shared state, so still reproducible).

`probnn.predict_distribution(ensemble, x)` returns the uniform mixture of the
members (`probnn.prediction.mixture_distribution`). The ensemble saves with
`ensemble.save("e.keras")` and loads with `keras.models.load_model` (safe
mode): the config holds the template's config, not `build_model`.
"""

import keras
import numpy as np
import tensorflow as tf

from probnn.functional import _is_seed_state, seed_states, stack_weights, stacked_call

__all__ = ["Ensemble"]


def _same_in_all(models, j):
    """Whether every model holds the same value in non-trainable variable j."""
    values = [keras.ops.convert_to_numpy(m.non_trainable_variables[j]) for m in models]
    return all(np.array_equal(values[0], v) for v in values[1:])


def _variable_name(variable, prefix):
    return prefix + variable.path.replace("/", "__")


@keras.saving.register_keras_serializable(package="probnn")
class Ensemble(keras.Model):
    """M copies of one network with their own weights, run as one vectorised model.

    Args:
        build_model: a callable returning a new, BUILT Keras model (give it a
            `keras.Input`) whose output is a probnn head's parameter tensor;
            called M times, so each member gets its own initialisation.
        members: number of members M (>= 1).
        bootstrap: whether `probnn.fit` trains each member on its own bootstrap
            resample of the training rows (Lakshminarayanan et al. found plain
            random initialisation and shuffling enough; bootstrap is optional).
        **kwargs: `keras.Model` arguments (`name`).

    Example:
    >>> import keras, numpy as np, probnn
    >>> def build():
    ...     return keras.Sequential([keras.Input((3,)), keras.layers.Dense(16, activation="relu"),
    ...                              probnn.heads.NormalHead()])
    >>> ensemble = probnn.Ensemble(build, members=5)
    >>> tuple(ensemble(np.ones((4, 3), "float32")).shape)
    (4, 5, 2)
    >>> dist = probnn.predict_distribution(ensemble, np.ones((4, 3), "float32"))
    >>> type(dist).__name__, dist.batch_shape.as_list()
    ('MixtureSameFamily', [4])
    """

    def __init__(self, build_model, members=5, bootstrap=False, **kwargs):
        super().__init__(**kwargs)
        if not callable(build_model) or isinstance(build_model, keras.layers.Layer):
            raise ValueError(
                f"Ensemble: build_model must be a callable returning a new Keras "
                f"model (each call a fresh initialisation), got {build_model!r}"
            )
        if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
            raise ValueError(f"Ensemble: members must be a positive integer, got {members!r}")
        self.probnn_members = int(members)
        self.probnn_bootstrap = bool(bootstrap)
        models = [build_model() for _ in range(self.probnn_members)]
        template = models[0]
        if (
            not isinstance(template, keras.Model)
            or not template.built
            or not getattr(template, "inputs", None)
        ):
            raise ValueError(
                "Ensemble: build_model must return a built keras.Model with known "
                f"inputs (start it with keras.Input), got {template!r}"
            )
        # Not tracked as a sub-layer: its own weights are never trained nor saved.
        object.__setattr__(self, "probnn_template", template)
        self._input_ranks = [len(t.shape) for t in keras.tree.flatten(template.inputs)]
        stacked = stack_weights(models)
        self._stacked_weights = [
            self.add_weight(
                name=_variable_name(v, "members__"),
                shape=tuple(w.shape),
                dtype=v.dtype,
                initializer="zeros",
                trainable=True,
            )
            for v, w in zip(template.trainable_variables, stacked)
        ]
        for variable, value in zip(self._stacked_weights, stacked):
            variable.assign(value)
        self._stacked_state = []
        own_noise = None
        for j, v in enumerate(template.non_trainable_variables):
            value = np.stack([keras.ops.convert_to_numpy(m.non_trainable_variables[j]) for m in models])
            if v.name.endswith("seed_generator_state") and np.all(value == value[:1]):
                # Members built with one fixed seed: own noise per member, reproducibly.
                if own_noise is None:
                    own_noise = seed_states(template, len(models), seed=int(value[0].sum()))
                value = own_noise[j].numpy()
            state = self.add_weight(
                name=_variable_name(v, "members_state__"),
                shape=value.shape,
                dtype=v.dtype,
                initializer="zeros",
                trainable=False,
            )
            state.assign(value)
            self._stacked_state.append(state)
        # Indices of seed-generator states that every member holds with the same value
        # (`from_models` of members built with one seed): run as one shared state.
        self._shared_seeds = ()
        self.built = True

    @classmethod
    def from_models(cls, models, bootstrap=False, **kwargs):
        """An Ensemble of given built models, each member keeping its weights and state as they are.

        Unlike `Ensemble(build_model, ...)`, members that share seed-generator
        states keep them (a member then draws the noise it draws alone); such a
        state runs as ONE state shared by the members, so the random ops of
        dropout and variational layers stay vectorised (with a stacked state
        of distinct seeds they run in a sequential loop: MC-dropout epochs
        were 2.1x slower).

        Example:
        >>> import keras, numpy as np, probnn
        >>> models = [keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead()])
        ...           for _ in range(3)]
        >>> ensemble = probnn.Ensemble.from_models(models)
        >>> bool(np.allclose(ensemble.member(2).get_weights()[0], models[2].get_weights()[0]))
        True
        """
        models = list(models)
        if not models:
            raise ValueError("Ensemble.from_models: expected at least one model, got none")
        given = iter(models)
        ensemble = cls(lambda: next(given), members=len(models), bootstrap=bootstrap, **kwargs)
        template = ensemble.probnn_template
        ensemble._shared_seeds = tuple(
            j
            for j, v in enumerate(template.non_trainable_variables)
            if _is_seed_state(v) and len(models) > 1 and _same_in_all(models, j)
        )
        ensemble.set_members(models)
        return ensemble

    def set_members(self, models):
        """Give the members the weights and state of `models` (M models of the template's architecture).

        The ensemble keeps its variables, so its compiled programs (those of
        `probnn.fit`, `predict_distribution`) are reused: training a new set
        of members of the same architecture compiles nothing again.
        """
        models = list(models)
        if len(models) != self.probnn_members:
            raise ValueError(
                f"Ensemble.set_members: expected {self.probnn_members} models, got {len(models)}"
            )
        for variable, value in zip(self._stacked_weights, stack_weights(models)):
            if tuple(variable.shape) != tuple(value.shape):
                raise ValueError(
                    f"Ensemble.set_members: the models' weights have shape "
                    f"{tuple(value.shape)[1:]}, the members' {tuple(variable.shape)[1:]}"
                )
            variable.assign(value)
        for j in self._shared_seeds:
            if not _same_in_all(models, j):
                raise ValueError(
                    "Ensemble.set_members: this ensemble's members share one seed state "
                    f"({self.probnn_template.non_trainable_variables[j].path}: from_models of members "
                    "built with one seed); the new models' states differ: build them with one seed, "
                    "or make a new Ensemble.from_models"
                )
        for j, state in enumerate(self._stacked_state):
            state.assign(np.stack([keras.ops.convert_to_numpy(m.non_trainable_variables[j]) for m in models]))

    def _member_inputs(self, inputs):
        """Whether `inputs` carry the member axis; checks the ranks and the member count."""
        leaves = keras.tree.flatten(inputs)
        ranks = [len(leaf.shape) for leaf in leaves]
        if len(ranks) != len(self._input_ranks):
            raise ValueError(
                f"Ensemble: the template takes {len(self._input_ranks)} inputs, got {len(ranks)}"
            )
        if ranks == self._input_ranks:
            return False
        if ranks == [r + 1 for r in self._input_ranks]:
            for leaf in leaves:
                if leaf.shape[1] is not None and leaf.shape[1] != self.probnn_members:
                    raise ValueError(
                        f"Ensemble: member-wise inputs must have shape (batch, "
                        f"{self.probnn_members}, *features), got {tuple(leaf.shape)}"
                    )
            return True
        raise ValueError(
            f"Ensemble: inputs must have rank {self._input_ranks} (every member sees the same "
            f"rows) or {[r + 1 for r in self._input_ranks]} (batch, members, *features); got "
            f"shapes {[tuple(leaf.shape) for leaf in leaves]}"
        )

    def call(self, inputs, training=False):
        member_wise = self._member_inputs(inputs)
        if member_wise:
            inputs = keras.tree.map_structure(lambda t: keras.ops.moveaxis(t, 1, 0), inputs)
        weights = [v.value for v in self._stacked_weights]
        if self._stacked_state:
            # A shared seed state runs unstacked: the same noise per member, drawn vectorised.
            state = [
                v.value[0] if j in self._shared_seeds else v.value for j, v in enumerate(self._stacked_state)
            ]
            outputs, new_state, losses = stacked_call(
                self.probnn_template,
                weights,
                inputs,
                non_trainable=state,
                training=training,
                x_stacked=member_wise,
                return_losses=True,
            )
            for j, (variable, value) in enumerate(zip(self._stacked_state, new_state)):
                shared = j in self._shared_seeds
                variable.assign(tf.broadcast_to(value[None], variable.shape) if shared else value)
        else:
            outputs, losses = stacked_call(
                self.probnn_template,
                weights,
                inputs,
                training=training,
                x_stacked=member_wise,
                return_losses=True,
            )
        self.add_loss(tf.reduce_sum(losses))  # zero when the members have no losses
        return keras.ops.moveaxis(outputs, 0, 1)

    def member(self, index):
        """A new stand-alone Keras model with the weights of member `index`."""
        if not 0 <= index < self.probnn_members:
            raise ValueError(f"Ensemble.member: index must be in [0, {self.probnn_members}), got {index!r}")
        model = keras.models.clone_model(self.probnn_template)
        for target, source in zip(model.trainable_variables, self._stacked_weights):
            target.assign(source[index])
        for target, source in zip(model.non_trainable_variables, self._stacked_state):
            target.assign(source[index])
        return model

    def compute_output_shape(self, input_shape):
        out = self.probnn_template.compute_output_shape(input_shape)
        return (out[0], self.probnn_members) + tuple(out[1:])

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "template": keras.saving.serialize_keras_object(self.probnn_template),
            "members": self.probnn_members,
            "bootstrap": self.probnn_bootstrap,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        template = config.pop("template")

        def build_model():
            return keras.saving.deserialize_keras_object(template)

        return cls(build_model, **config)
