"""The luminance diagnostic: equalizing brightness per photo, and recall per group."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.diagnostics.luminance import centre_luminance, equalize_luminance
from model_export.evaluate import set_metrics


def _faces(n: int, seed: int = 0) -> np.ndarray:
    """n textured 64x64 RGB images [n, 64, 64, 3] at brightness levels from dark to light."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 1.0, 64)[None, :, None]  # a left-to-right gradient
    out = []
    for level in np.linspace(0.15, 0.9, n):
        tex = 0.8 + 0.2 * rng.random((64, 64, 3))
        out.append(np.clip(255 * level * ramp * tex, 0, 255).astype(np.uint8))
    return np.stack(out)


def test_equalize_brings_every_centre_near_the_set_mean() -> None:
    x = _faces(6)
    before = centre_luminance(x)
    assert before.max() - before.min() > 0.4  # really different brightness to start with
    y = equalize_luminance(x)
    after = centre_luminance(y)
    # A gamma maps the mean exactly only for a flat centre; textured ones land close.
    assert after == pytest.approx(np.full(6, before.mean()), abs=0.04)
    assert after.max() - after.min() < 0.06


def test_equalize_keeps_the_picture_and_honours_a_target() -> None:
    x = _faces(3)
    y = equalize_luminance(x, target=0.5)
    assert centre_luminance(y) == pytest.approx(np.full(3, 0.5), abs=0.04)
    # Monotone per pixel: the gradient still rises left to right in every image.
    cols = y[:, 32, :, 1].astype(int)  # [3, 64] one row, green channel
    smooth = np.array([np.convolve(c, np.ones(8) / 8, mode="valid") for c in cols])
    assert (np.diff(smooth[:, ::8], axis=1) > 0).all()
    assert y.dtype == np.uint8 and y.shape == x.shape


def test_recall_per_group_at_the_threshold() -> None:
    # What the diagnostic prints per group: the project's set_metrics on the finest groups.
    p = np.array([0.9, 0.2, 0.6, 0.7, 0.1])
    attrs = [{"skin_tone": "Darker", "gender": "Female"}] * 2 + [
        {"skin_tone": "Lighter", "gender": "Male"}
    ] * 3
    groups = set_metrics(p, attrs, 0.5, [("skin_tone", "gender")])["groups"]
    assert {g["label"]: g["recall"] for g in groups} == {
        "Darker women": 0.5,
        "Lighter men": pytest.approx(2 / 3, abs=1e-4),
    }
