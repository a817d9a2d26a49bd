"""The generalised Gauss-Newton matrix of a probnn model, full, Kronecker-factored or diagonal.

`H = sum_n J_n^T F_n J_n` over the training rows, with `J_n` the Jacobian
of the head's parameters in the chosen weights (flattened in
`model.trainable_variables` order, each row-major) and `F_n` the Fisher
information of the head's distribution (`probnn.bayes.fisher.head_fisher`).
Each structure also holds the posterior precision `s * H + diag(delta)`
(`s` rescales the GGN for a new noise scale, `delta` is the prior precision
per weight) and what Laplace needs from it: its log determinant (as a
differentiable TF function of `delta` and `s`), products with the posterior
covariance, and posterior draws.

- `FullGGN`: the D x D matrix.
- `DiagGGN`: its diagonal.
- `KronGGN`: one Kronecker product per Dense-like layer, `A (x) G` with
  `A = sum_n a_n a_n^T` over the layer's inputs (plus a 1 for the bias) and
  `G = mean_n B_n^T F_n B_n`, `B_n` the Jacobian of the head's parameters in
  the layer's pre-activations (KFAC, Martens and Grosse 2015; the GGN
  version of laplace-torch). Exact when `B_n^T F_n B_n` is the same for
  every row (a last layer under a homoscedastic Normal head).
"""

import numpy as np
import tensorflow as tf


class FullGGN:
    """The full GGN over D weights (D x D)."""

    kind = "full"

    def __init__(self, dim):
        self.h = np.zeros((dim, dim))

    def add(self, jac, fisher, extras):
        self.h += np.einsum("npd,npq,nqe->de", jac, fisher, jac)

    def arrays(self):
        return {"h": self.h}

    def load(self, arrays):
        self.h = arrays["h"]

    def precision(self, delta, s):
        """The posterior precision as a dense matrix."""
        return s * self.h + np.diag(delta)

    def logdet(self, delta, s):
        """`log det(s H + diag(delta))`, differentiable in TF tensors `delta` and `s`."""
        chol = tf.linalg.cholesky(s * tf.constant(self.h) + tf.linalg.diag(delta))
        return 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)))

    def cov_apply(self, rows, delta, s):
        """`rows @ Sigma` for rows of shape (m, D) (Sigma is symmetric)."""
        chol = np.linalg.cholesky(self.precision(delta, s))
        z = np.linalg.solve(chol, rows.T)
        return np.linalg.solve(chol.T, z).T

    def sqrt_apply(self, eps, delta, s):
        """Offsets `Sigma^(1/2) eps` for standard-normal rows `eps` (m, D): posterior draws minus mean."""
        chol = np.linalg.cholesky(self.precision(delta, s))
        return np.linalg.solve(chol.T, eps.T).T


class DiagGGN(FullGGN):
    """The diagonal of the GGN (D values)."""

    kind = "diag"

    def __init__(self, dim):
        self.h = np.zeros(dim)

    def add(self, jac, fisher, extras):
        self.h += np.einsum("npd,npq,nqd->d", jac, fisher, jac)

    def precision(self, delta, s):
        return s * self.h + delta

    def logdet(self, delta, s):
        return tf.reduce_sum(tf.math.log(s * tf.constant(self.h) + delta))

    def cov_apply(self, rows, delta, s):
        return rows / self.precision(delta, s)

    def sqrt_apply(self, eps, delta, s):
        return eps / np.sqrt(self.precision(delta, s))


class KronGGN:
    """One Kronecker-factored block `A (x) G` per Dense-like layer (block diagonal across layers).

    Args:
        blocks: `(inputs, outputs)` of each layer, in weight order; a block
            covers `(inputs + 1) * outputs` weights: the kernel then the bias.
    """

    kind = "kron"

    def __init__(self, blocks):
        self.blocks = [(int(i), int(o)) for i, o in blocks]
        self.a = [np.zeros((i + 1, i + 1)) for i, _ in self.blocks]
        self.g = [np.zeros((o, o)) for _, o in self.blocks]
        self.rows = 0
        self._eig = None

    def add(self, jac, fisher, extras):
        """`extras["inputs"][l]`: layer l's inputs (n, in); its bias Jacobian is the block's tail."""
        self.rows += len(jac)
        start = 0
        for l, (i, o) in enumerate(self.blocks):
            inputs = extras["inputs"][l]
            a = np.concatenate([inputs, np.ones((len(inputs), 1))], axis=1)
            self.a[l] += a.T @ a
            b = jac[:, :, start + i * o : start + (i + 1) * o]  # d params / d bias = d / d pre-activation
            self.g[l] += np.einsum("npj,npq,nqk->jk", b, fisher, b)
            start += (i + 1) * o
        self._eig = None

    def arrays(self):
        out = {"rows": np.array(self.rows)}
        for l in range(len(self.blocks)):
            out[f"a{l}"], out[f"g{l}"] = self.a[l], self.g[l]
        return out

    def load(self, arrays):
        self.rows = int(arrays["rows"])
        self.a = [arrays[f"a{l}"] for l in range(len(self.blocks))]
        self.g = [arrays[f"g{l}"] for l in range(len(self.blocks))]
        self._eig = None

    def _eigen(self):
        """Per block: eigenvalues `lam[i, j] = a_i g_j` of `A (x) G / rows` (rows-scaled G) and vectors."""
        if self._eig is None:
            self._eig = []
            for a, g in zip(self.a, self.g):
                wa, ua = np.linalg.eigh(a)
                wg, ug = np.linalg.eigh(g / max(self.rows, 1))
                self._eig.append((np.outer(np.maximum(wa, 0), np.maximum(wg, 0)), ua, ug))
        return self._eig

    def _slices(self):
        start = 0
        for i, o in self.blocks:
            yield start, (i + 1) * o, i + 1, o
            start += (i + 1) * o

    def precision(self, delta, s):
        dim = sum((i + 1) * o for i, o in self.blocks)
        out = np.zeros((dim, dim))
        for (start, size, _, _), a, g in zip(self._slices(), self.a, self.g):
            out[start : start + size, start : start + size] = s * np.kron(a, g / max(self.rows, 1))
        return out + np.diag(delta)

    def logdet(self, delta, s):
        total = tf.constant(0.0, tf.float64)
        for (start, _size, _, _), (lam, _, _) in zip(self._slices(), self._eigen()):
            d = delta[start]  # one prior precision per layer
            total += tf.reduce_sum(tf.math.log(s * tf.constant(lam.ravel()) + d))
        return total

    def _apply(self, rows, delta, s, power):
        out = np.empty_like(rows)
        for (start, size, i1, o), (lam, ua, ug) in zip(self._slices(), self._eigen()):
            v = rows[:, start : start + size].reshape(-1, i1, o)
            scale = (s * lam + delta[start]) ** power
            if power == -1:
                v = ua @ ((ua.T @ v @ ug) * scale) @ ug.T
            else:  # Sigma^(1/2) in the eigenbasis, then back
                v = ua @ (v * scale) @ ug.T
            out[:, start : start + size] = v.reshape(-1, size)
        return out

    def cov_apply(self, rows, delta, s):
        return self._apply(rows, delta, s, -1)

    def sqrt_apply(self, eps, delta, s):
        return self._apply(eps, delta, s, -0.5)


def make_ggn(kind, dim, blocks):
    """A `FullGGN`, `DiagGGN` or `KronGGN` for `dim` weights (`blocks`: the layers, for kron)."""
    if kind == "kron":
        return KronGGN(blocks)
    return (FullGGN if kind == "full" else DiagGGN)(dim)
