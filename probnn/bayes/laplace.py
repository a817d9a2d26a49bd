"""Laplace approximations of a trained probnn model's posterior (post hoc, no retraining).

The posterior over the chosen weights (the last layer, all of them, or a
subnetwork) is the Gaussian `N(theta_map, (s H + diag(delta))^-1)` with `H` the
generalised Gauss-Newton matrix built from the Fisher information of the
HEAD's parameters (`probnn.bayes.curvature`, `probnn.bayes.fisher`): any head
works, heteroscedastic ones included. The evidence (laplace-torch's
`log_marginal_likelihood`, Immer et al. 2021) is

    log p(y | theta_map) - 1/2 [log det(s H + diag(delta)) - sum log delta]
                         - 1/2 sum delta theta_map^2,

maximised in the prior precision `delta` (and, for `NormalHead(scale="shared")`
with one output, the noise scale sigma; `s = sigma_fit^2 / sigma^2`) by
L-BFGS on exact TF gradients in log space.
"""

import json

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from probnn._validation import error, positive_int
from probnn.bayes.curvature import make_ggn
from probnn.bayes.fisher import head_fisher
from probnn.bayes.inference_data import check_finite
from probnn.heads.base import DistributionHead, find_head
from probnn.heads.discrete import BernoulliHead, CategoricalHead
from probnn.heads.normal import NormalHead
from probnn.training.compiled import cached_program

_OWNER = "laplace"
_GLM_DRAWS = 100  # moment-matched function-space draws of the linearised predictive
_MAX_FULL = 20_000  # weights for which hessian="full" is allowed (a 3 GiB matrix)
_MAX_JACOBIAN = 4_000_000  # entries of one batch of per-example Jacobians


def _noise_variable(head):
    """The shared raw scale of `NormalHead(scale="shared")`, else None."""
    if isinstance(head, NormalHead) and head.scale == "shared":
        return head.raw_scale
    return None


def _layer_variables(model, names):
    layers = {layer.name: layer for layer in model._flatten_layers(include_self=False, recursive=True)}
    missing = [n for n in names if n not in layers]
    if missing:
        raise error(
            _OWNER,
            f"weights names layers {missing} that model {model.name!r} does not have "
            f"(its layers: {sorted(layers)})",
        )
    return [v for n in names for v in layers[n].trainable_weights]


def _select(model, head, weights):
    """Indices into `model.trainable_variables` of the weights Laplace covers."""
    noise = _noise_variable(head)
    if isinstance(weights, str) and weights == "last_layer":
        chosen = [head.kernel, head.bias]
    elif isinstance(weights, str) and weights == "all":
        chosen = [v for v in model.trainable_variables if v is not noise]
    elif isinstance(weights, (list, tuple)) and weights and all(isinstance(w, str) for w in weights):
        chosen = [v for v in _layer_variables(model, weights) if v is not noise]
    else:
        raise error(_OWNER, f"weights must be 'last_layer', 'all' or a list of layer names, got {weights!r}")
    indices = [i for i, v in enumerate(model.trainable_variables) if any(v is c for c in chosen)]
    if not indices:
        raise error(_OWNER, f"weights={weights!r} selects no trainable weight of model {model.name!r}")
    return indices


def _kron_blocks(model, variables):
    """The Dense-like layers behind `variables` (kernel, bias pairs) and their `(inputs, outputs)`."""
    layers, blocks = [], []
    candidates = list(model._flatten_layers(include_self=False, recursive=True))
    for kernel, bias in zip(variables[::2], variables[1::2]):
        layer = next(
            (
                c
                for c in candidates
                if len(c.trainable_weights) >= 2
                and c.trainable_weights[0] is kernel
                and c.trainable_weights[1] is bias
            ),
            None,
        )
        if (
            layer is None
            or not isinstance(layer, (keras.layers.Dense, DistributionHead))
            or len(kernel.shape) != 2
        ):
            raise error(
                _OWNER,
                "hessian='kron' supports Dense layers and heads (kernel and bias); weight "
                f"{kernel.path} is not one; use hessian='full' or 'diag'",
            )
        layers.append(layer)
        blocks.append(tuple(kernel.shape))
    if len(variables) % 2:
        raise error(_OWNER, f"hessian='kron': weight {variables[-1].path} has no kernel/bias pair")
    return layers, blocks


def _as_data(model, head, x, y):
    """Inputs in the model's dtype and targets as `(n,) + event_shape`, checked."""
    dtype = model.trainable_variables[0].dtype
    flat = [check_finite(_OWNER, "x", a) for a in tf.nest.flatten(x)]
    if not flat or len({len(a) for a in flat}) != 1:
        raise error(_OWNER, "x must be a non-empty array (or structure of arrays with equal rows)")
    flat = [a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a for a in flat]
    n = len(flat[0])
    y = check_finite(_OWNER, "y", y)
    if len(y) != n:
        raise error(_OWNER, f"x has {n} rows but y has {len(y)}")
    head.check_targets(y)
    return tf.nest.pack_sequence_as(x, flat), y, n


def _jacobian_program(model, indices):
    """A compiled `(weights, x) -> (params, per-example Jacobian in the weights at indices)`."""

    @tf.function(reduce_retracing=True)
    def run(values, x):
        chosen = [values[i] for i in indices]
        state = [v.value for v in model.non_trainable_variables]
        with tf.GradientTape() as tape:
            tape.watch(chosen)
            full = list(values)
            for i, c in zip(indices, chosen):
                full[i] = c
            params, _ = model.stateless_call(full, state, x, training=False)
        jac = tape.jacobian(params, chosen)
        rows, size = tf.shape(params)[0], tf.shape(params)[1]
        return params, tf.concat([tf.reshape(j, [rows, size, -1]) for j in jac], axis=-1)

    return run


class _Jacobians:
    """Compiled head parameters and their per-example Jacobian in the chosen weights."""

    def __init__(self, model, indices, feature_layers=()):
        self.model, self.indices = model, list(indices)
        self.features = None
        if feature_layers:
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
            self.features = keras.Model(inputs, [layer.input for layer in feature_layers])
        self._run = cached_program(
            model,
            f"laplace/jacobian/{tuple(self.indices)}",
            lambda: _jacobian_program(model, tuple(self.indices)),
        )

    def rows_per_call(self, batch_size, dim):
        return max(1, min(batch_size, _MAX_JACOBIAN // max(dim * self.model.output_shape[-1], 1)))

    def __call__(self, values, x):
        params, jac = self._run([tf.convert_to_tensor(v) for v in values], x)
        extras = {}
        if self.features is not None:
            inputs = self.features(x)
            inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            extras["inputs"] = [np.asarray(a, np.float64) for a in inputs]
        return np.asarray(params, np.float64), np.asarray(jac, np.float64), extras

    def rows(self, values, x, where):
        """`__call__` on a padded chunk, cut to its real rows `where`."""
        params, jac, extras = self(values, x)
        real = where.stop - where.start
        extras = {k: [a[:real] for a in v] for k, v in extras.items()}
        return params[:real], jac[:real], extras


def _batches(x, n, rows):
    """`(slice, chunk)` pairs over the rows of `x`; the last chunk is padded to `rows` rows (one
    traced program for every chunk), the slice says how many rows are real."""
    rows = min(rows, n)
    for start in range(0, n, rows):
        stop = min(start + rows, n)

        def chunk(a, start=start, stop=stop):
            a = np.asarray(a)[start:stop]
            return a if len(a) == rows else np.concatenate([a, np.repeat(a[-1:], rows - len(a), 0)])

        yield slice(start, stop), tf.nest.map_structure(chunk, x)


def _curvature_pass(la, x, y, n, batch_size, feature_layers):
    """One pass over the data: the GGN, the log likelihood and, for a Gaussian last layer, sums."""
    jacobians = _Jacobians(la.model, la.indices, feature_layers)
    dim = la.theta.size
    rows = jacobians.rows_per_call(batch_size, dim)
    stats = {
        "loglik": 0.0,
        "sse": 0.0,
        "phi_phi": np.zeros((dim, dim)) if la.refit else None,
        "phi_y": np.zeros(dim),
        "yy": 0.0,
    }
    for where, xb in _batches(x, n, rows):
        params, jac, extras = jacobians.rows(la.weights, xb, where)
        fisher = np.asarray(head_fisher(la.head, params), np.float64)
        la.ggn.add(jac, fisher, extras)
        yb = y[where]
        stats["loglik"] += float(
            tf.reduce_sum(la.head.log_prob(params, yb.astype(params.dtype) if yb.dtype.kind == "f" else yb))
        )
        if la.noise is not None:
            r = yb.reshape(len(yb), -1)[:, 0] - params[:, 0]
            stats["sse"] += float(r @ r)
            if la.refit:  # loc = [features, 1] @ theta: the loc row of J is the design matrix
                stats["phi_phi"] += jac[:, 0].T @ jac[:, 0]
                stats["phi_y"] += jac[:, 0].T @ yb.reshape(len(yb), -1)[:, 0]
                stats["yy"] += float(yb.reshape(-1) @ yb.reshape(-1))
    stats["n"] = n
    return stats


def _prior_groups(model, indices, prior_precision):
    """Group index of every chosen weight, group names, and initial log prior precisions."""
    variables = [model.trainable_variables[i] for i in indices]
    sizes = [int(np.prod(v.shape)) for v in variables]
    if isinstance(prior_precision, dict):
        owners = [v.path.split("/")[-2] if "/" in v.path else v.path for v in variables]
        names = list(dict.fromkeys(owners))
        missing = [o for o in names if o not in prior_precision]
        if missing:
            raise error(_OWNER, f"prior_precision is a dict but has no value for layer(s) {missing}")
        values = [prior_precision[o] for o in names]
        groups = np.repeat([names.index(o) for o in owners], sizes)
    else:
        if isinstance(prior_precision, str) and prior_precision == "marglik":
            values = [1.0]
        elif isinstance(prior_precision, (int, float, np.number)) and not isinstance(prior_precision, bool):
            values = [prior_precision]
        else:
            raise error(
                _OWNER,
                f"prior_precision must be a positive number, a dict of them per layer, or "
                f"'marglik'; got {prior_precision!r}",
            )
        names, groups = ["all"], np.zeros(sum(sizes), int)
    if not all(isinstance(v, (int, float, np.number)) and v > 0 for v in values):
        raise error(_OWNER, f"prior_precision must be positive numbers, got {values}")
    return groups, names, np.log(np.asarray(values, np.float64))


def _check_options(head, weights, hessian, refit_last_layer, batch_size):
    if hessian not in ("full", "kron", "diag"):
        raise error(_OWNER, f"hessian must be 'full', 'kron' or 'diag', got {hessian!r}")
    positive_int(_OWNER, "batch_size", batch_size)
    if refit_last_layer:
        if weights != "last_layer" or _noise_variable(head) is None or head.event_size != 1:
            raise error(
                _OWNER,
                "refit_last_layer=True needs weights='last_layer' and a "
                "NormalHead(scale='shared') with one output (the neural-linear model)",
            )
        if hessian == "diag":
            raise error(_OWNER, "refit_last_layer=True needs hessian='full' or 'kron' (exact there)")


def laplace(
    model,
    x,
    y,
    *,
    weights="last_layer",
    hessian="kron",
    prior_precision="marglik",
    refit_last_layer=False,
    batch_size=256,
):
    """Fit a Laplace approximation to the posterior of a trained probnn model's weights.

    The posterior over the chosen weights is Gaussian around the trained
    values, with precision `GGN + prior precision`; the GGN uses the Fisher
    information of the head's parameters (closed form for Normal, Student-t,
    Poisson, Bernoulli and Categorical heads, Monte Carlo for the others:
    `probnn.bayes.fisher`). The model itself is not changed.

    Args:
        model: a built Keras model ending in a probnn head, trained.
        x: training inputs (an array or a structure the model accepts).
        y: training targets, `(n,) + head.event_shape` (or `(n,)` for scalars).
        weights: `"last_layer"` (the head's projection), `"all"` (every
            trainable weight except a shared noise scale) or a list of layer
            names (a subnetwork).
        hessian: `"full"`, `"kron"` (KFAC: Dense layers and heads) or `"diag"`.
        prior_precision: the precision of the zero-mean Gaussian prior: a
            number, a dict from layer name to number, or `"marglik"` (one
            precision maximising `log_marginal_likelihood`; with
            `NormalHead(scale="shared")` and one output the noise scale too).
        refit_last_layer: with a `NormalHead(scale="shared")`: for every
            candidate prior and noise, set the last layer to its exact
            Bayesian linear regression posterior mean on the frozen features
            (the neural-linear model); the evidence is then exact.
        batch_size: rows per Jacobian pass.

    Returns:
        A `Laplace`: `prior_precision`, `noise_scale`, `posterior_precision`,
        `log_marginal_likelihood()`, `to_inference_data(num_draws)`, and the
        predictive through `probnn.predict_distribution(model, x, posterior=la)`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 2)).astype("float32"); y = x[:, :1] + 0.1 * rng.normal(size=(64, 1))
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="tanh"),
    ...                           probnn.heads.NormalHead(scale="shared")])
    >>> la = probnn.bayes.laplace(model, x, y, hessian="full")
    >>> la.posterior_precision.shape, la.prior_precision > 0
    ((9, 9), True)
    """
    head = find_head(model)
    _check_options(head, weights, hessian, refit_last_layer, batch_size)
    data_x, data_y, n = _as_data(model, head, x, y)
    indices = _select(model, head, weights)
    groups, group_names, log_prior = _prior_groups(model, indices, prior_precision)
    if hessian == "full" and groups.size > _MAX_FULL:
        raise error(
            _OWNER,
            f"hessian='full' over {groups.size} weights needs a {groups.size}^2 matrix "
            f"({groups.size**2 * 8 / 2**30:.1f} GiB); use hessian='kron' or 'diag', or "
            "fewer weights",
        )
    variables = [model.trainable_variables[i] for i in indices]
    feature_layers, blocks = _kron_blocks(model, variables) if hessian == "kron" else ((), ())
    la = Laplace(
        model,
        indices=indices,
        ggn=make_ggn(hessian, groups.size, blocks),
        groups=groups,
        group_names=group_names,
        log_prior=log_prior,
        refit=bool(refit_last_layer),
    )
    la._stats = _curvature_pass(la, data_x, data_y, n, batch_size, feature_layers)
    if isinstance(prior_precision, str):
        la.optimize()
    elif refit_last_layer:
        la._set_hyperparameters(la._log_prior, la._log_noise)
    return la


class Laplace:
    """A Laplace approximation returned by `probnn.bayes.laplace` (see there).

    Attributes:
        prior_precision: the prior precision, a float (or a dict per layer).
        noise_scale: the Normal noise scale it uses (`NormalHead(scale="shared")`
            with one output), else None.
        posterior_precision: the posterior precision of the chosen weights: a
            `(D, D)` matrix (`"full"`, `"kron"`) or its diagonal (`"diag"`).
        hessian: `"full"`, `"kron"` or `"diag"`.
    """

    def __init__(self, model, *, indices, ggn, groups, group_names, log_prior, refit=False):
        self.model, self.head = model, find_head(model)
        self.indices, self.ggn, self.refit = list(indices), ggn, refit
        self.groups, self.group_names = np.asarray(groups), list(group_names)
        self._log_prior = np.asarray(log_prior, np.float64)
        self.weights = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
        self.theta = np.concatenate([self.weights[i].astype(np.float64).ravel() for i in indices])
        noise = _noise_variable(self.head)
        self.noise = None
        if noise is not None and self.head.event_size == 1:
            self.noise = next(i for i, v in enumerate(model.trainable_variables) if v is noise)
            raw = self.weights[self.noise].astype(np.float64)
            self._sigma_fit = float(np.logaddexp(0.0, raw[0]) + self.head.min_scale)
        self._log_noise = np.log(self._sigma_fit) if self.noise is not None else 0.0
        self._stats = None
        self._jacobians = None

    @property
    def hessian(self):
        return self.ggn.kind

    @property
    def prior_precision(self):
        values = np.exp(self._log_prior)
        if self.group_names == ["all"]:
            return float(values[0])
        return dict(zip(self.group_names, values.tolist()))

    @property
    def noise_scale(self):
        return float(np.exp(self._log_noise)) if self.noise is not None else None

    @property
    def posterior_precision(self):
        return self.ggn.precision(self._delta(self._log_prior), self._s(self._log_noise))

    def _delta(self, log_prior):
        return np.exp(np.asarray(log_prior))[self.groups]

    def _s(self, log_noise):
        return float(self._sigma_fit**2 * np.exp(-2 * log_noise)) if self.noise is not None else 1.0

    # -- evidence ------------------------------------------------------------------
    def _refit_mean(self, delta, sigma2):
        """The Bayesian linear regression posterior mean of the last layer (and its SSE)."""
        st = self._stats
        phi_phi, phi_y = tf.constant(st["phi_phi"]), tf.constant(st["phi_y"])
        chol = tf.linalg.cholesky(phi_phi / sigma2 + tf.linalg.diag(delta))
        m = tf.linalg.cholesky_solve(chol, phi_y[:, None] / sigma2)[:, 0]
        sse = st["yy"] - 2 * tf.tensordot(m, phi_y, 1) + tf.tensordot(m, tf.linalg.matvec(phi_phi, m), 1)
        return m, sse

    def _evidence(self, log_prior, log_noise):
        """The Laplace log evidence, a TF function of the log hyperparameters."""
        st = self._stats
        delta = tf.gather(tf.exp(log_prior), self.groups)
        sigma2 = tf.exp(2 * log_noise)
        theta, sse = tf.constant(self.theta), tf.constant(st["sse"], tf.float64)
        if self.refit:
            theta, sse = self._refit_mean(delta, sigma2)
        if self.noise is not None:
            loglik = -0.5 * st["n"] * tf.math.log(2 * np.pi * sigma2) - sse / (2 * sigma2)
            s = self._sigma_fit**2 / sigma2
        else:
            loglik, s = tf.constant(st["loglik"], tf.float64), tf.constant(1.0, tf.float64)
        log_det_ratio = self.ggn.logdet(delta, s) - tf.reduce_sum(tf.math.log(delta))
        scatter = tf.reduce_sum(delta * theta**2)
        return loglik - 0.5 * (log_det_ratio + scatter)

    def _log_hyper(self, prior_precision, noise_scale):
        log_prior = self._log_prior
        if prior_precision is not None:
            if isinstance(prior_precision, dict):
                prior_precision = [prior_precision[n] for n in self.group_names]
            log_prior = np.log(
                np.broadcast_to(np.asarray(prior_precision, np.float64), self._log_prior.shape)
            )
        log_noise = self._log_noise if noise_scale is None else np.log(float(noise_scale))
        return log_prior, log_noise

    def log_marginal_likelihood(self, prior_precision=None, noise_scale=None):
        """The Laplace approximation of the log evidence `log p(y)` (exact for a linear Gaussian model).

        Args:
            prior_precision: evaluate at this prior precision (number or dict)
                instead of the fitted one.
            noise_scale: evaluate at this Normal noise scale instead of the fitted one.

        Returns:
            A float.
        """
        log_prior, log_noise = self._log_hyper(prior_precision, noise_scale)
        return float(self._evidence(tf.constant(log_prior), tf.constant(log_noise, tf.float64)))

    def log_marginal_likelihood_gradient(self):
        """The gradient of `log_marginal_likelihood` in (log prior precisions, log noise scale)."""
        z = tf.constant(np.append(self._log_prior, self._log_noise))
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = self._evidence(z[:-1], z[-1])
        grad = tape.gradient(value, z).numpy()
        return grad if self.noise is not None else grad[:-1]

    def optimize(self):
        """Set the prior precision (and noise scale) to a maximum of the evidence (L-BFGS)."""
        size = self._log_prior.size
        free_noise = self.noise is not None

        def objective(z):
            z = tf.constant(z)
            with tf.GradientTape() as tape:
                tape.watch(z)
                log_noise = z[size] if free_noise else tf.constant(self._log_noise, tf.float64)
                value = -self._evidence(z[:size], log_noise)
            return float(value), tape.gradient(value, z).numpy()

        z0 = np.append(self._log_prior, [self._log_noise] if free_noise else [])
        result = scipy.optimize.minimize(
            objective, z0, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-9, "ftol": 1e-15}
        )
        if not np.all(np.isfinite(result.x)):
            raise error(_OWNER, "the evidence optimisation diverged (non-finite hyperparameters)")
        self._set_hyperparameters(result.x[:size], result.x[size] if free_noise else self._log_noise)
        return self

    def _set_hyperparameters(self, log_prior, log_noise):
        self._log_prior, self._log_noise = np.asarray(log_prior, np.float64), float(log_noise)
        if self.noise is not None:
            sigma = np.exp(self._log_noise) - self.head.min_scale
            raw = np.log(np.expm1(sigma))  # the inverse of softplus
            self.weights[self.noise] = np.full_like(self.weights[self.noise], raw)
        if self.refit:
            m, _ = self._refit_mean(
                tf.constant(self._delta(self._log_prior)), tf.constant(np.exp(2 * self._log_noise))
            )
            self.theta = m.numpy()
            self._write_theta()

    def _write_theta(self):
        start = 0
        for i in self.indices:
            size = self.weights[i].size
            self.weights[i] = (
                self.theta[start : start + size].reshape(self.weights[i].shape).astype(self.weights[i].dtype)
            )
            start += size

    # -- posterior draws and predictive --------------------------------------------
    def sample_weights(self, num_draws, seed=None):
        """Posterior draws of every trainable weight, `(num_draws,) + w.shape` each (others fixed)."""
        num_draws = positive_int("Laplace", "num_draws", num_draws)
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((int(num_draws), self.theta.size))
        theta = self.theta + self.ggn.sqrt_apply(eps, self._delta(self._log_prior), self._s(self._log_noise))
        draws = [np.repeat(w[None], num_draws, axis=0) for w in self.weights]
        start = 0
        for i in self.indices:
            size = self.weights[i].size
            draws[i] = (
                theta[:, start : start + size]
                .reshape((num_draws,) + self.weights[i].shape)
                .astype(self.weights[i].dtype)
            )
            start += size
        return draws

    def to_inference_data(self, num_draws=1000, seed=None):
        """`num_draws` posterior draws of the weights as arviz `InferenceData` (one chain).

        Variables are named as `probnn.bayes.sample` names them, so
        `probnn.predict_distribution(model, x, posterior=idata)` and
        `probnn.bayes.posterior_weights` take it.
        """
        return weights_inference_data(
            self.model, self.sample_weights(num_draws, seed), method=f"Laplace ({self.hessian} GGN)"
        )

    def _linearised_params(self, model, x, batch_size):
        """Head parameters at `x` and their linearised posterior covariance `J Sigma J^T`."""
        if self._jacobians is None or self._jacobians.model is not model:
            self._jacobians = _Jacobians(model, self.indices)
        rows = self._jacobians.rows_per_call(batch_size, self.theta.size)
        delta, s = self._delta(self._log_prior), self._s(self._log_noise)
        n = len(tf.nest.flatten(x)[0])
        means, covs = [], []
        for where, xb in _batches(x, n, rows):
            params, jac, _ = self._jacobians.rows(self.weights, xb, where)
            flat = jac.reshape(-1, jac.shape[-1])
            sj = self.ggn.cov_apply(flat, delta, s).reshape(jac.shape)
            means.append(params)
            covs.append(np.einsum("bpd,bqd->bpq", jac, sj))
        return np.concatenate(means), np.concatenate(covs)

    def predictive_distribution(self, model, x, *, head=None, num_draws=None, seed=None, batch_size=1024):
        """The posterior predictive at `x` (what `probnn.predict_distribution(posterior=la)` returns).

        - `num_draws=None`: the linearised (GLM) predictive. The head's
          parameters are Gaussian, `N(eta(x), J Sigma J^T)`; for Bernoulli and
          Categorical heads the probit approximation gives the head's own
          distribution with the logits scaled by `1 / sqrt(1 + pi/8 var)`
          (Categorical: of the centred logits `C f`, `C = I - 1 1^T / K`, whose
          softmax is the same, so the unidentified common shift adds no
          variance); for
          every other head a uniform mixture over 100 moment-matched draws of
          the parameters (their sample mean and covariance equal the Gaussian's
          exactly), so `decompose_uncertainty` gives the linearised epistemic
          variance of the location exactly.
        - `num_draws=K`: the uniform mixture over K posterior draws of the
          weights, run through `probnn.functional.stacked_call`.
        """
        _check_same_model(self.weights, model)
        head = self.head if head is None else head
        flat = [np.asarray(check_finite("predict_distribution", "x", a)) for a in tf.nest.flatten(x)]
        x = tf.nest.pack_sequence_as(
            x, [a.astype(self.weights[0].dtype) if a.dtype.kind == "f" else a for a in flat]
        )
        from probnn.prediction import mixture_distribution

        if num_draws is not None:
            from probnn.bayes.posterior import posterior_params

            idata = self.to_inference_data(num_draws, seed)
            return mixture_distribution(head, posterior_params(model, idata, x, batch_size=batch_size))
        mean, cov = self._linearised_params(model, x, batch_size)
        dtype = self.weights[0].dtype
        if isinstance(head, CategoricalHead):
            # softmax ignores a common shift of the logits, which the data leave unidentified
            # (its variance is the prior's): integrate over the centred logits C f instead.
            centre = np.eye(mean.shape[-1]) - 1 / mean.shape[-1]
            mean, cov = mean @ centre, centre @ cov @ centre
        if isinstance(head, (BernoulliHead, CategoricalHead)):
            var = np.diagonal(cov, axis1=1, axis2=2)
            return head.distribution(tf.constant((mean / np.sqrt(1 + np.pi / 8 * var)).astype(dtype)))
        eps = _moment_matched_normal(_GLM_DRAWS, mean.shape[-1], seed)
        w, v = np.linalg.eigh(cov)
        root = v * np.sqrt(np.maximum(w, 0))[:, None, :]
        draws = mean[:, None, :] + np.einsum("bpk,sk->bsp", root, eps)
        return mixture_distribution(head, draws.astype(dtype))

    # -- saving --------------------------------------------------------------------
    def save(self, path):
        """Write this approximation to `path` (`.npz`); `Laplace.load(path, model)` reads it back."""
        meta = {
            "kind": self.hessian,
            "indices": self.indices,
            "group_names": self.group_names,
            "refit": self.refit,
            "blocks": getattr(self.ggn, "blocks", []),
            "log_noise": self._log_noise,
            "n": self._stats["n"],
            "loglik": self._stats["loglik"],
            "sse": self._stats["sse"],
            "yy": self._stats["yy"],
        }
        arrays = {f"ggn_{k}": v for k, v in self.ggn.arrays().items()}
        arrays.update({f"weight_{i}": w for i, w in enumerate(self.weights)})
        if self.refit:
            arrays.update(phi_phi=self._stats["phi_phi"], phi_y=self._stats["phi_y"])
        np.savez(
            path,
            meta=json.dumps(meta),
            theta=self.theta,
            groups=self.groups,
            log_prior=self._log_prior,
            **arrays,
        )

    @classmethod
    def load(cls, path, model):
        """Read a `Laplace` written by `save`, for `model` (the same architecture)."""
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files}
        weights = [
            arrays[f"weight_{i}"] for i in range(len(model.trainable_variables)) if f"weight_{i}" in arrays
        ]
        _check_same_model(weights, model, owner="Laplace.load")
        ggn = make_ggn(meta["kind"], arrays["groups"].size, meta["blocks"])
        ggn.load({k[4:]: v for k, v in arrays.items() if k.startswith("ggn_")})
        la = cls(
            model,
            indices=meta["indices"],
            ggn=ggn,
            groups=arrays["groups"],
            group_names=meta["group_names"],
            log_prior=arrays["log_prior"],
            refit=meta["refit"],
        )
        la.weights, la.theta, la._log_noise = weights, arrays["theta"], meta["log_noise"]
        la._stats = {k: meta[k] for k in ("n", "loglik", "sse", "yy")}
        la._stats.update(phi_phi=arrays.get("phi_phi"), phi_y=arrays.get("phi_y"))
        return la


def _check_same_model(weights, model, owner="predict_distribution"):
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    if [tuple(w.shape) for w in weights] != shapes:
        raise error(
            owner,
            f"model {model.name!r} has trainable weights of shapes {shapes}, the posterior "
            f"was fitted on {[tuple(w.shape) for w in weights]}; pass the same model",
        )


def _moment_matched_normal(num, dim, seed):
    """`num` draws of `N(0, I_dim)` shifted and whitened so their mean is 0 and covariance I exactly."""
    eps = np.random.default_rng(seed).standard_normal((num, dim))
    eps -= eps.mean(axis=0)
    chol = np.linalg.cholesky(eps.T @ eps / num)
    return np.linalg.solve(chol, eps.T).T


def weights_inference_data(model, draws, *, method):
    """Weight draws `(K,) + w.shape` (one per trainable weight) as `InferenceData`, one chain.

    Named as `probnn.bayes.sample` names its variables (`<layer>_<weight>`), with
    the attribute `probnn_weights`, so `posterior_weights` and
    `predict_distribution(posterior=...)` read it.
    """
    import arviz as az

    from probnn.bayes.sample import _weight_names

    names, dims = _weight_names(model.trainable_variables)
    return az.from_dict(
        posterior={n: d[None] for n, d in zip(names, draws)},
        dims=dict(zip(names, dims)),
        attrs={"probnn_weights": ",".join(names), "inference_library": "probnn", "method": method},
    )
