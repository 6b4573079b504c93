import numpy as np
import pytest

from models.naive import naive_forecast, seasonal_naive_forecast


def test_naive_repeats_the_last_value():
    contexts = np.array([[1.0, 2.0, 3.0], [7.0, 5.0, -4.0]])
    np.testing.assert_array_equal(naive_forecast(contexts, 4), [[3.0] * 4, [-4.0] * 4])


def test_seasonal_naive_repeats_the_last_period_cyclically():
    contexts = np.array([[9.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(seasonal_naive_forecast(contexts, 7, 3), [[1, 2, 3, 1, 2, 3, 1]])
    np.testing.assert_array_equal(seasonal_naive_forecast(contexts, 2, 3), [[1, 2]])
    np.testing.assert_array_equal(seasonal_naive_forecast(contexts, 5, 4), [[9, 1, 2, 3, 9]])


def test_seasonal_naive_period_one_is_naive():
    contexts = np.random.default_rng(0).standard_normal((5, 8))
    np.testing.assert_array_equal(seasonal_naive_forecast(contexts, 6, 1), naive_forecast(contexts, 6))


def test_seasonal_naive_rejects_a_period_longer_than_the_context():
    with pytest.raises(ValueError, match="between 1 and the context length 4"):
        seasonal_naive_forecast(np.zeros((2, 4)), 3, 5)
    with pytest.raises(ValueError):
        seasonal_naive_forecast(np.zeros((2, 4)), 3, 0)
