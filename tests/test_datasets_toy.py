import numpy as np
import pytest

from probnn.datasets import cubic_noise_scale, heteroscedastic_cubic


def test_heteroscedastic_cubic_matches_its_generating_law():
    x, y = heteroscedastic_cubic(200_000, seed=0)
    z = (y[:, 0] - x[:, 0] ** 3) / cubic_noise_scale(x[:, 0])
    # Standardised residuals are N(0, 1): with n = 2e5 the standard error of the
    # mean is 0.0022 and of the standard deviation 0.0016; 5 standard errors.
    assert abs(z.mean()) < 0.011
    assert abs(z.std() - 1.0) < 0.008
    assert x.min() >= -2.0 and x.max() <= 2.0


def test_heteroscedastic_cubic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="positive integer"):
        heteroscedastic_cubic(0)
    with pytest.raises(ValueError, match="low < high"):
        heteroscedastic_cubic(10, low=1.0, high=1.0)


def test_heteroscedastic_cubic_is_reproducible():
    a = heteroscedastic_cubic(10, seed=3)
    b = heteroscedastic_cubic(10, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
