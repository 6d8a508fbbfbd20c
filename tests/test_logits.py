"""The one sigmoid of the kiosk and the exporter: right, and finite where the naive form is not."""

from __future__ import annotations

import math
import warnings

import numpy as np

from installation.logits import logit_of, sigmoid


def test_sigmoid_survives_logits_far_beyond_exps_range() -> None:
    # 1 / (1 + exp(-z)) overflows from z < -709: NumPy warns and a Python float raises.
    z = np.array([-1e308, -5000.0, -710.0, -1.0, 0.0, 1.0, 710.0, 5000.0, 1e308])
    # Underflow to 0 is the right answer far out; overflow and NaN are not.
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        p = sigmoid(z)
        scalars = [sigmoid(float(v)) for v in z]
    assert p.dtype == np.float64 and np.all(np.isfinite(p))
    assert p[0] == 0.0 and p[-1] == 1.0 and p[4] == 0.5
    assert 0.0 < p[2] < 1e-300  # still resolved, not flushed to zero
    assert scalars == p.tolist()  # one formula for a float and an array


def test_sigmoid_is_the_logistic_function() -> None:
    z = np.linspace(-30.0, 30.0, 601)
    # The textbook form, fine over this range, from the standard library's exp.
    reference = [1.0 / (1.0 + math.exp(-v)) for v in z]
    assert np.allclose(sigmoid(z), reference, rtol=1e-12, atol=0)
    assert np.allclose(sigmoid(-z), 1.0 - sigmoid(z), atol=1e-15)
    assert np.all(np.diff(sigmoid(z)) > 0)


def test_logit_of_inverts_sigmoid_and_stays_finite_at_the_ends() -> None:
    for z in (-12.0, -0.3, 0.0, 2.5, 9.0):
        assert math.isclose(logit_of(sigmoid(z)), z, abs_tol=1e-6)
    assert math.isfinite(logit_of(0.0)) and math.isfinite(logit_of(1.0))
    assert logit_of(0.0) < -15 and logit_of(1.0) > 15
