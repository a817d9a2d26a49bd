"""Adam with its own hyperparameters for every member of a stack of models.

A Keras optimizer's hyperparameters are scalars: over the stacked weights of
a `probnn.Ensemble` (leading axis M) they are shared by every member.
`MemberAdam` holds one learning rate, weight decay, `beta_1`, `beta_2` and
`epsilon` per member and applies, to slice m of every weight, exactly the
update that `keras.optimizers.Adam` (or `AdamW`) with member m's settings
applies to that member's weights trained alone: the same float32 operations
in the same order (decoupled weight decay `w -= w * wd * lr` first, as Keras's
base optimizer does, then Adam's step `lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`
on `m / (sqrt(v) + epsilon)`), so a member of the stack reproduces its solo run
to float32 rounding. It also holds which members are still training:
`freeze(members)` stops their updates (per-member early stopping).

It can also hold an L2 penalty per member, `kernel_l2`: member m's kernels
(every variable named `kernel`, as Keras's Dense and convolution layers name
theirs) get `2 * kernel_l2[m] * w` added to their gradient, which is the
gradient of `keras.regularizers.L2(kernel_l2[m])` as those layers'
`kernel_regularizer` (coupled L2, as in the 2015-2018 UCI protocols and
`torch.optim.Adam(weight_decay=)`; not Keras's decoupled `weight_decay`). A
penalty in the loss is part of the model, so members with different
penalties would need one model (and one compiled program) each; in the
optimizer they are members of one stack. The reported training loss then
leaves the penalty out.

`probnn.fit(stack, x, y, optimizer=[Adam(...), AdamW(...), ...])` builds one
for you from Keras optimizers, one per member.
"""

import keras
import numpy as np

from probnn._validation import error, finite_array

__all__ = ["MemberAdam"]

_UNSUPPORTED = (
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "ema_overwrite_frequency",
)


_OWNER = "MemberAdam"


def _per_member(name, values, members):
    """`values` (a number or a sequence of M numbers) as a float64 array of shape (M,)."""
    array = finite_array(_OWNER, name, values).reshape(-1)
    if members is not None and array.size == 1:
        array = np.repeat(array, members)
    if members is not None and array.size != members:
        raise error(_OWNER, f"{name} has {array.size} values, expected one per member ({members})")
    if np.any(array < 0):
        raise error(_OWNER, f"{name} must be >= 0, got {array.tolist()}")
    return array


def _is_kernel(variable):
    """Whether a Keras variable is a layer's `kernel` (also an Ensemble's stacked `members__...__kernel`)."""
    return variable.name.split("__")[-1] == "kernel"


@keras.saving.register_keras_serializable(package="probnn")
class MemberAdam(keras.optimizers.Optimizer):
    """Adam / AdamW with per-member hyperparameters, for stacked weights of shape `(M, ...)`.

    Member m's slice of every weight is updated exactly as
    `keras.optimizers.Adam(learning_rate[m], beta_1[m], beta_2[m], epsilon[m],
    weight_decay=weight_decay[m])` would update it alone (`AdamW` is the same
    update). Every trainable weight given to `build` must have the member axis
    first.

    Args:
        learning_rate: one learning rate per member (a sequence of M floats),
            or one float for all.
        weight_decay: decoupled weight decay per member (`w -= w * wd * lr`
            before each step, as Keras's `weight_decay`); 0 or None for none.
        beta_1, beta_2, epsilon: Adam's constants, per member or shared.
        kernel_l2: L2 penalty per member on every variable named `kernel`
            (see the module docstring); 0 or None for none.
        members: M, when every hyperparameter is a single float.
        name: the optimizer's name.

    Example:
    >>> import keras, numpy as np, probnn
    >>> opt = probnn.training.MemberAdam(learning_rate=[1e-3, 1e-2], weight_decay=[0.0, 1e-4])
    >>> w = keras.Variable(np.ones((2, 3), "float32"))
    >>> opt.apply([np.ones((2, 3), "float32")], [w])
    >>> [round(float(v), 4) for v in w.numpy()[:, 0]]  # each member moved by its own rate
    [0.999, 0.99]
    """

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        kernel_l2=None,
        members=None,
        name="member_adam",
        **kwargs,
    ):
        for key in _UNSUPPORTED + ("use_ema",):
            if kwargs.get(key):
                raise error(_OWNER, f"{key} is not supported per member")
        # The base learning rate (1.0) multiplies every member's: a schedule or
        # ReduceLROnPlateau on it scales all members alike.
        super().__init__(learning_rate=1.0, name=name, **kwargs)
        size = np.size(learning_rate) if members is None else members
        self.member_learning_rate = _per_member("learning_rate", learning_rate, size)
        members = self.member_learning_rate.size
        wd = [
            0.0 if w is None else w
            for w in np.atleast_1d(np.asarray(0.0 if weight_decay is None else weight_decay, dtype=object))
        ]
        self.member_weight_decay = _per_member("weight_decay", wd, members)
        self.member_beta_1 = _per_member("beta_1", beta_1, members)
        self.member_beta_2 = _per_member("beta_2", beta_2, members)
        self.member_epsilon = _per_member("epsilon", epsilon, members)
        self.member_kernel_l2 = _per_member("kernel_l2", 0.0 if kernel_l2 is None else kernel_l2, members)
        if np.any(self.member_beta_1 >= 1) or np.any(self.member_beta_2 >= 1):
            raise error(_OWNER, "beta_1 and beta_2 must be in [0, 1)")
        self.members = members

    @classmethod
    def from_optimizers(cls, optimizers, kernel_l2=None):
        """One `MemberAdam` from M Keras `Adam` / `AdamW` optimizers (member m gets the m-th's settings).

        `kernel_l2`: None, or one L2 penalty per member (see the class).

        Raises ValueError for anything `MemberAdam` cannot reproduce exactly:
        another optimizer class, `amsgrad`, a learning-rate schedule, clipping,
        EMA, gradient accumulation, loss scaling or `exclude_from_weight_decay`.
        """
        optimizers = list(optimizers)
        if not optimizers:
            raise error(_OWNER, "expected one optimizer per member, got none")
        values = {key: [] for key in ("learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon")}
        for i, opt in enumerate(optimizers):
            if not isinstance(opt, keras.optimizers.Adam) or isinstance(
                opt, keras.optimizers.LossScaleOptimizer
            ):
                raise error(
                    _OWNER,
                    f"optimizer {i} is a {type(opt).__name__}; per-member optimizers must "
                    "be keras.optimizers.Adam or AdamW",
                )
            config = opt.get_config()
            if config.get("amsgrad"):
                raise error(_OWNER, f"optimizer {i} uses amsgrad, which is not supported per member")
            for key in _UNSUPPORTED:
                if config.get(key):
                    raise error(_OWNER, f"optimizer {i} sets {key}, which is not supported per member")
            if config.get("use_ema"):
                raise error(_OWNER, f"optimizer {i} sets use_ema, which is not supported per member")
            if not isinstance(config["learning_rate"], (int, float)):
                raise error(
                    _OWNER,
                    f"optimizer {i} has a learning-rate schedule; per member, the "
                    "learning rate must be a float",
                )
            if getattr(opt, "_exclude_from_weight_decay", None) or getattr(
                opt, "_exclude_from_weight_decay_pattern", None
            ):
                raise error(
                    _OWNER,
                    f"optimizer {i} excludes variables from weight decay, which is not supported per member",
                )
            for key in values:
                values[key].append(config[key] if config[key] is not None else 0.0)
        return cls(**values, kernel_l2=kernel_l2, members=len(optimizers))

    def build(self, var_list):
        if self.built:
            return
        for variable in var_list:
            if len(variable.shape) == 0 or variable.shape[0] != self.members:
                raise error(
                    _OWNER,
                    f"variable {variable.path} has shape {tuple(variable.shape)}; every "
                    f"variable must have the member axis ({self.members}) first",
                )
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        self._kernels = [_is_kernel(variable) for variable in var_list]
        self._active = self.add_variable(
            (self.members,), initializer="ones", dtype="float32", name="active_members"
        )

    def freeze(self, members):
        """Stop updating the given members (indices); their weights and moments stay as they are."""
        active = np.array(self._active.numpy())
        active[np.asarray(members, dtype=int)] = 0.0
        self._active.assign(active)

    def reset(self):
        """Start afresh: step 0, zero moments, every member active (its compiled programs stay valid)."""
        self.iterations.assign(0)
        for variable in self._momentums + self._velocities:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        self._active.assign(np.ones(self.members, "float32"))

    @property
    def active_members(self):
        """A boolean array (M,): which members are still updated."""
        return self._active.numpy() > 0

    def _column(self, values, variable):
        """Per-member constants shaped to broadcast over `variable` (M, 1, ..., 1), in its dtype."""
        shape = (self.members,) + (1,) * (len(variable.shape) - 1)
        return keras.ops.convert_to_tensor(np.asarray(values).reshape(shape), variable.dtype)

    def update_step(self, gradient, variable, learning_rate):
        """Keras's weight decay then Adam's step, member by member (see the module docstring)."""
        dtype = variable.dtype
        column = lambda values: self._column(values, variable)  # noqa: E731
        # Member m's learning rate is float32(lr[m]) as in Adam; times the base (1.0): exact.
        lr = column(self.member_learning_rate) * keras.ops.cast(learning_rate, dtype)
        gradient = keras.ops.cast(gradient, dtype)
        local_step = keras.ops.cast(self.iterations + 1, dtype)
        # Python floats as Keras uses them: 1 - beta computed in float64, then cast.
        beta_1, beta_2 = column(self.member_beta_1), column(self.member_beta_2)
        one_minus_1, one_minus_2 = column(1 - self.member_beta_1), column(1 - self.member_beta_2)
        alpha = (
            lr
            * keras.ops.sqrt(1 - keras.ops.power(beta_2, local_step))
            / (1 - keras.ops.power(beta_1, local_step))
        )
        shape = (self.members,) + (1,) * (len(variable.shape) - 1)
        active = keras.ops.reshape(self._active > 0, shape)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        w = keras.ops.convert_to_tensor(variable)
        if self._kernels[index] and np.any(self.member_kernel_l2 > 0):
            gradient = gradient + w * column(2 * self.member_kernel_l2)
        decayed = w - w * column(self.member_weight_decay) * lr
        new_m = m + (gradient - m) * one_minus_1
        new_v = v + (keras.ops.square(gradient) - v) * one_minus_2
        new_w = decayed - (new_m * alpha) / (keras.ops.sqrt(new_v) + column(self.member_epsilon))
        self.assign(m, keras.ops.where(active, new_m, m))
        self.assign(v, keras.ops.where(active, new_v, v))
        self.assign(variable, keras.ops.where(active, new_w, w))

    def get_config(self):
        config = super().get_config()
        config.pop("learning_rate", None)
        config.update(
            {
                "learning_rate": self.member_learning_rate.tolist(),
                "weight_decay": self.member_weight_decay.tolist(),
                "beta_1": self.member_beta_1.tolist(),
                "beta_2": self.member_beta_2.tolist(),
                "epsilon": self.member_epsilon.tolist(),
                "kernel_l2": self.member_kernel_l2.tolist(),
            }
        )
        return config
