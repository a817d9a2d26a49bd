"""Split conformal prediction sets for classifiers: LAC, APS, RAPS and top-k scores."""

import math

import numpy as np
import tensorflow_probability as tfp

from probnn.metrics.classification import class_probabilities

tfd = tfp.distributions

SET_SCORES = ("lac", "aps", "raps", "top_k")


def _probabilities(dist, owner):
    """Class probabilities `(n, K)` as a float64 NumPy array, from a distribution or an array."""
    if isinstance(dist, tfd.Distribution):
        found = class_probabilities(dist)
        if found is None:
            raise ValueError(
                f"{owner}: dist must be a Categorical, a mixture of Categoricals, a Bernoulli or an "
                f"(n, K) array of class probabilities, got {type(dist).__name__}"
            )
        kind, probs = found
        probs = np.asarray(probs, dtype=np.float64)
        if kind == "binary" and probs.shape[-1] == 1:
            probs = np.concatenate([1 - probs, probs], axis=-1)
    else:
        probs = np.asarray(dist, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"{owner}: expected class probabilities of shape (n, K) with K >= 2, got {probs.shape}"
        )
    if not np.all((probs >= 0) & (probs <= 1)):
        raise ValueError(f"{owner}: class probabilities must lie in [0, 1]")
    return probs


def _rng(seed):
    """A NumPy generator: the given `Generator` or `RandomState` itself, else one seeded by `seed`."""
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.default_rng(seed)


class ConformalClassifier:
    """Split conformal prediction sets: every class whose score is within the calibration quantile.

    Fitted on a calibration split the model did not train on. Each candidate
    class k of an input x gets a nonconformity score s(x, k) from the
    predicted probabilities p (larger = less plausible); `fit` takes
    `quantile_`, the ⌈(n + 1)(1 - alpha)⌉-th smallest score of the true
    classes of the n calibration examples (infinite when that exceeds n), and
    `predict_set(dist)` returns the boolean `(n, K)` mask of the classes with
    `s(x, k) <= quantile_`.

    Guarantee (Vovk et al. 2005; Angelopoulos and Bates 2023): if the
    calibration and test pairs are exchangeable, then for a new pair
    `P(y ∈ set) >= 1 - alpha`, however wrong the model, marginally over the
    calibration set and the test pair. If the scores have no ties (LAC on
    continuous probabilities; the randomised APS, RAPS and top-k), also
    `P(y ∈ set) < 1 - alpha + 1/(n + 1)`. With `class_conditional=True`
    (Mondrian conformal prediction, Vovk et al. 2005) each class has its own
    quantile from its own n_c calibration examples, and the bounds hold for
    each class separately: `P(y ∈ set | y = c) >= 1 - alpha`.

    Scores, with `o(x, k)` the 1-based rank of class k when the
    probabilities are sorted in decreasing order and `u` uniform on [0, 1)
    (one draw per input, only with `randomized=True`):
        "lac": `1 - p_k` (Sadinle et al. 2019), the smallest sets on average;
            already continuous, so `randomized` changes nothing.
        "aps": the probability of all classes ranked up to and including k,
            minus `u p_k` (Romano et al. 2020): sets adapt to how spread the
            prediction is.
        "raps": APS plus `penalty * max(0, o(x, k) - penalty_rank)`
            (Angelopoulos et al. 2021): fewer unlikely classes in the sets.
        "top_k": `o(x, k)`, minus `u` (a set of the same size for all inputs).
    Without randomisation APS, RAPS and top-k cover at least 1 - alpha, with
    tied (top-k) or larger sets; randomised sets can be empty.

    The scores and `predict_set` equal MAPIE's `SplitConformalClassifier`
    (`conformity_score="lac"`, and "aps" with `include_last_label="randomized"`)
    on the same probabilities and uniform draws; see tests/test_conformal_sets.py.

    Args:
        score: "lac" (default), "aps", "raps" or "top_k".
        alpha: miscoverage level in (0, 1).
        randomized: draw `u` (needed for exact `1 - alpha` coverage of APS,
            RAPS and top-k).
        class_conditional: one quantile per class (Mondrian).
        penalty, penalty_rank: RAPS's lambda >= 0 and k_reg >= 0.
        seed: an integer, None, or a NumPy `Generator` / `RandomState` for `u`.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp, probnn
    >>> rng = np.random.default_rng(0)
    >>> logits = 2 * rng.normal(size=(4000, 5))
    >>> probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    >>> y = (rng.uniform(size=(4000, 1)) > probs.cumsum(1)).sum(1)  # the model is right
    >>> cp = probnn.calibration.ConformalClassifier("aps", alpha=0.1, randomized=True, seed=0)
    >>> sets = cp.fit(probs[:2000], y[:2000]).predict_set(tfp.distributions.Categorical(probs=probs[2000:]))
    >>> covered = float(sets[np.arange(2000), y[2000:]].mean())
    >>> 0.87 < covered < 0.93, sets.shape  # binomial noise at n = 2000: sd 0.007
    (True, (2000, 5))
    """

    def __init__(
        self,
        score="lac",
        alpha=0.1,
        *,
        randomized=False,
        class_conditional=False,
        penalty=0.01,
        penalty_rank=1,
        seed=None,
    ):
        if score not in SET_SCORES:
            raise ValueError(f"ConformalClassifier: score must be one of {SET_SCORES}, got {score!r}")
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"ConformalClassifier: alpha must be in (0, 1), got {alpha!r}")
        if not float(penalty) >= 0.0 or not (float(penalty_rank).is_integer() and penalty_rank >= 0):
            raise ValueError(
                f"ConformalClassifier: penalty must be >= 0 and penalty_rank an integer >= 0, got "
                f"{penalty!r} and {penalty_rank!r}"
            )
        self.score = score
        self.alpha = float(alpha)
        self.randomized = bool(randomized)
        self.class_conditional = bool(class_conditional)
        self.penalty = float(penalty)
        self.penalty_rank = int(penalty_rank)
        self._rng = _rng(seed)

    def scores(self, probs):
        """The score `s(x, k)` of every class of every input, shape `(n, K)` (draws `u` if randomised)."""
        probs = _probabilities(probs, "ConformalClassifier.scores")
        if self.score == "lac":
            return 1.0 - probs
        u = self._rng.uniform(size=probs.shape[0])[:, None] if self.randomized else 0.0
        order = np.argsort(-probs, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(1, probs.shape[1] + 1)[None], axis=1)
        if self.score == "top_k":
            return rank - u
        cumulative = np.take_along_axis(np.cumsum(np.take_along_axis(probs, order, 1), axis=1), rank - 1, 1)
        scores = cumulative - u * probs
        if self.score == "raps":
            scores = scores + self.penalty * np.maximum(rank - self.penalty_rank, 0)
        return scores

    def fit(self, dist, y):
        """Compute the calibration scores of the true classes and their conformal quantile; returns self."""
        probs = _probabilities(dist, "ConformalClassifier.fit")
        y = np.asarray(y).ravel()
        num_classes = probs.shape[1]
        if y.shape[0] != probs.shape[0] or not np.all((y == np.round(y)) & (y >= 0) & (y < num_classes)):
            raise ValueError(
                f"ConformalClassifier.fit: y must hold {probs.shape[0]} class indices in "
                f"[0, {num_classes}), got shape {y.shape}"
            )
        y = y.astype(int)
        true_scores = self.scores(probs)[np.arange(y.size), y]
        if self.class_conditional:
            self.quantile_ = np.array([self._quantile(true_scores[y == c]) for c in range(num_classes)])
        else:
            self.quantile_ = self._quantile(true_scores)
        self.num_calibration_ = y.size
        return self

    def _quantile(self, scores):
        """The ⌈(n + 1)(1 - alpha)⌉-th smallest score (infinite when that exceeds n)."""
        rank = math.ceil((scores.size + 1) * (1 - self.alpha))
        return float(np.sort(scores)[rank - 1]) if rank <= scores.size else math.inf

    def predict_set(self, dist):
        """The prediction sets of new inputs: a boolean `(n, K)` mask, True for the classes in the set."""
        if not hasattr(self, "quantile_"):
            raise ValueError("ConformalClassifier: call fit(dist_cal, y_cal) before predict_set()")
        probs = _probabilities(dist, "ConformalClassifier.predict_set")
        quantile = np.asarray(self.quantile_)
        if quantile.ndim and quantile.size != probs.shape[1]:
            raise ValueError(
                f"ConformalClassifier.predict_set: fitted on {quantile.size} classes, got {probs.shape[1]}"
            )
        return self.scores(probs) <= quantile
