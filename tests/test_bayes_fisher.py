"""The closed-form Fisher information of each head against a Monte Carlo estimate from autodiff.

`monte_carlo_fisher` averages `g g^T`, `g = grad log p(y | params)` (TF autodiff),
over targets drawn from the head's own distribution: an unbiased estimate of
the Fisher. Ten independent estimates of 4000 draws each give its mean and
standard error; every closed-form entry must lie within 5 standard errors
(plus 1e-9 for entries that are exactly zero).
"""

import numpy as np
import pytest

import probnn
from probnn.bayes.fisher import has_closed_form_fisher, head_fisher, monte_carlo_fisher

HEADS = {
    "normal": (probnn.heads.NormalHead(2), [[0.3, -1.0, 0.5, -0.2], [2.0, 1.0, -1.5, 0.7]]),
    "student_t": (probnn.heads.StudentTHead(), [[0.3, -0.5, 0.2], [-1.0, 1.0, 2.0]]),
    "poisson": (probnn.heads.PoissonHead(), [[0.5], [-1.0]]),
    "bernoulli": (probnn.heads.BernoulliHead(2), [[0.5, -2.0], [1.5, 0.0]]),
    "categorical": (probnn.heads.CategoricalHead(3), [[0.5, -1.0, 0.2], [2.0, 0.0, -1.0]]),
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_closed_form_fisher_matches_monte_carlo(name):
    head, params = HEADS[name]
    params = np.asarray(params, np.float64)
    assert has_closed_form_fisher(head)
    exact = np.asarray(head_fisher(head, params))
    estimates = np.stack(
        [np.asarray(monte_carlo_fisher(head, params, num_samples=4000, seed=s)) for s in range(10)]
    )
    mean, se = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(exact - mean) <= 5 * se + 1e-9), (exact, mean, se)
    np.testing.assert_allclose(exact, np.swapaxes(exact, -1, -2))


def test_mixture_head_uses_monte_carlo():
    head = probnn.heads.MixtureNormalHead(2)
    params = np.zeros((3, head.params_size))
    assert not has_closed_form_fisher(head)
    fisher = np.asarray(head_fisher(head, params, num_samples=500))
    assert fisher.shape == (3, 6, 6)
    assert np.all(np.linalg.eigvalsh(fisher) > -1e-8)  # a covariance: positive semi-definite
