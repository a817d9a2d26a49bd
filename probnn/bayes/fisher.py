"""Fisher information of a head's distribution with respect to its unconstrained parameters.

The generalised Gauss-Newton matrix of a network ending in a probnn head is
`sum_n J_n^T F(eta_n) J_n`, where `eta_n` is the head's parameter vector for
example n, `J_n` its Jacobian in the weights and `F(eta)` the Fisher
information of `head.distribution(eta)` in `eta`. `head_fisher` gives `F`:

- closed form for `NormalHead` (`[loc, raw_scale]`), `StudentTHead`
  (`[loc, raw_scale, raw_df]`, Lange, Little and Taylor 1989), `PoissonHead`
  (log rates), `BernoulliHead` (logits) and `CategoricalHead` (logits),
  carried from the natural parameters to the unconstrained ones by the chain
  rule (`F_eta = D^T F_psi D` with `D = d psi / d eta`);
- Monte Carlo otherwise (mixtures, multivariate Normal, RBF mixtures, your own
  heads): `F = E_y[g g^T]` with `g = grad_eta log p(y | eta)`, averaged over
  `num_samples` targets drawn from the head's own distribution.
"""

import tensorflow as tf

from probnn.heads.discrete import BernoulliHead, CategoricalHead, PoissonHead
from probnn.heads.normal import NormalHead, StudentTHead


def _normal(head, params):
    loc, raw = tf.split(params, 2, axis=-1)
    del loc
    scale = tf.math.softplus(raw) + head.min_scale
    # In (loc, scale): diag(1 / s^2, 2 / s^2); d scale / d raw = sigmoid(raw).
    diag = tf.concat([1.0 / scale**2, 2.0 * tf.sigmoid(raw) ** 2 / scale**2], axis=-1)
    return tf.linalg.diag(diag)


def _student_t(head, params):
    e = head.event_size
    _, raw_s, raw_df = tf.split(params, 3, axis=-1)
    s = tf.math.softplus(raw_s) + head.min_scale
    df = 2.0 + tf.math.softplus(raw_df) + head.min_df_excess
    ds, ddf = tf.sigmoid(raw_s), tf.sigmoid(raw_df)
    # Fisher of (mu, sigma, nu) for t_nu(mu, sigma) (Lange, Little and Taylor 1989).
    i_mm = (df + 1) / ((df + 3) * s**2)
    i_ss = 2 * df / ((df + 3) * s**2)
    i_sv = -2 / ((df + 1) * (df + 3) * s)
    i_vv = 0.25 * (
        tf.math.polygamma(tf.ones_like(df), df / 2) - tf.math.polygamma(tf.ones_like(df), (df + 1) / 2)
    ) - (df + 5) / (2 * df * (df + 1) * (df + 3))
    zero = tf.zeros_like(s)
    rows = [[i_mm, zero, zero], [zero, i_ss * ds**2, i_sv * ds * ddf], [zero, i_sv * ds * ddf, i_vv * ddf**2]]
    # (batch, e, 3, 3) per output, then placed at [block * e + j] in the parameter vector.
    block = tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)
    eye = tf.eye(e, dtype=params.dtype)
    full = tf.einsum("...jab,jk->...ajbk", block, eye)
    return tf.reshape(full, tf.concat([tf.shape(params)[:-1], [3 * e, 3 * e]], 0))


def _categorical(head, params):
    p = tf.nn.softmax(params, axis=-1)
    return tf.linalg.diag(p) - p[..., :, None] * p[..., None, :]


_CLOSED_FORM = {
    NormalHead: _normal,
    StudentTHead: _student_t,
    PoissonHead: lambda head, params: tf.linalg.diag(tf.exp(params)),
    BernoulliHead: lambda head, params: tf.linalg.diag(tf.sigmoid(params) * tf.sigmoid(-params)),
    CategoricalHead: _categorical,
}


def has_closed_form_fisher(head):
    """Whether `head_fisher` has a closed form for `head` (else it is estimated by Monte Carlo)."""
    return type(head) in _CLOSED_FORM


def monte_carlo_fisher(head, params, *, num_samples=200, seed=0):
    """`E_y[g g^T]`, `g = grad_params log p(y | params)`, over `num_samples` draws of y per row."""
    params = tf.convert_to_tensor(params)
    dist = head.distribution(params)
    y = tf.stop_gradient(dist.sample(num_samples, seed=tf.constant([int(seed), 0])))
    with tf.GradientTape() as tape:
        tape.watch(params)
        tiled = tf.broadcast_to(params, tf.concat([[num_samples], tf.shape(params)], 0))
        tape.watch(tiled)
        log_p = tf.reduce_sum(head.distribution(tiled).log_prob(y))
    g = tape.gradient(log_p, tiled)  # (S, batch, P): rows are independent
    return tf.einsum("s...p,s...q->...pq", g, g) / num_samples


def head_fisher(head, params, *, num_samples=200, seed=0):
    """The Fisher information of `head.distribution(params)` in `params`, row by row.

    Closed form for Normal, Student-t, Poisson, Bernoulli and Categorical
    heads; a Monte Carlo estimate with `num_samples` targets per row for
    every other head (see the module docstring).

    Args:
        head: a probnn `DistributionHead`.
        params: head parameters, shape `(batch, params_size)`.
        num_samples: targets drawn per row for the Monte Carlo estimate.
        seed: integer seed of those draws.

    Returns:
        A tensor of shape `(batch, params_size, params_size)`.

    Example:
    >>> import numpy as np, probnn
    >>> from probnn.bayes.fisher import head_fisher
    >>> f = head_fisher(probnn.heads.BernoulliHead(), np.zeros((1, 1)))
    >>> float(f[0, 0, 0])  # p (1 - p) at p = 1/2
    0.25
    """
    params = tf.convert_to_tensor(params)
    if not params.dtype.is_floating:
        params = tf.cast(params, "float32")
    closed = _CLOSED_FORM.get(type(head))
    if closed is not None:
        return closed(head, params)
    return monte_carlo_fisher(head, params, num_samples=num_samples, seed=seed)
