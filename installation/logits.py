"""Logits and probabilities: the one sigmoid (and its inverse) of the kiosk and the exporter.

The naive 1 / (1 + exp(-z)) overflows for z below about -709 (a float64 `exp` of 710 is inf, and
NumPy warns); a model's logit can sit there on a blank or saturated crop. Both forms below only
ever take exp of a non-positive number.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import numpy.typing as npt


@overload
def sigmoid(z: float) -> float: ...


@overload
def sigmoid(z: npt.NDArray[Any]) -> npt.NDArray[np.float64]: ...


def sigmoid(z: float | npt.NDArray[Any]) -> float | npt.NDArray[np.float64]:
    """1 / (1 + exp(-z)), without overflow for any finite z (a float in, a float out)."""
    if isinstance(z, np.ndarray):
        x = z.astype(np.float64)
        e = np.exp(-np.abs(x))  # in (0, 1]
        out: npt.NDArray[np.float64] = np.where(x >= 0, 1.0, e) / (1.0 + e)
        return out
    e1 = math.exp(-abs(z))
    return (1.0 if z >= 0 else e1) / (1.0 + e1)


def logit_of(p: float) -> float:
    """The logit of a probability, finite for thresholds of exactly 0 or 1."""
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))
