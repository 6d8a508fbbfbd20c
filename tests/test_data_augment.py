"""Camera-like training augmentation (model_export.augment) on generated images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model_export.augment import (
    BLUR,
    DEFAULT,
    FLIP,
    GAIN,
    GAMMA,
    JPEG,
    N_CONDITIONS,
    SCALE,
    AugmentConfig,
    apply_conditions,
    augment,
    draw_conditions,
)

NONE = AugmentConfig(
    flip=0.0,
    p_scale=0.0,
    shift=0.0,
    gain=(1.0, 1.0),
    gamma=(1.0, 1.0),
    p_blur=0.0,
    noise=(0.0, 0.0),
    p_jpeg=0.0,
)


def _batch(n: int = 8, seed: int = 0) -> np.ndarray:
    """uint8 [n, 64, 64, 3]: a bright square in the middle of a textured mid-grey field."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 64, 64, 3)) * 60 + 90).astype(np.uint8)
    x[:, 16:48, 16:48] = 240
    return x


def test_range_shape_and_determinism() -> None:
    b = _batch()
    a1 = augment(b, np.random.default_rng(5))
    a2 = augment(b, np.random.default_rng(5))
    assert a1.shape == b.shape and a1.dtype == np.float32
    assert a1.min() >= 0.0 and a1.max() <= 1.0
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, augment(b, np.random.default_rng(6)))


def test_identity_settings_only_rescale() -> None:
    b = _batch()
    out = augment(b, np.random.default_rng(0), NONE)
    np.testing.assert_allclose(out, b / 255.0, atol=1e-6)


def test_shrink_makes_the_content_smaller_without_a_black_frame() -> None:
    b = _batch()
    cfg = dataclasses.replace(NONE, p_scale=1.0, scale=(0.6, 0.6))
    out = augment(b, np.random.default_rng(0), cfg)
    bright_before = (b[..., 0] > 200).sum()
    # Content at 60 % of the side covers 0.36 of its old area; count inside the shrunk image
    # (pixels 12.8..51.2), where the reflected copies at the border cannot reach.
    bright_after = (out[:, 12:52, 12:52, 0] > 200 / 255).sum()
    assert bright_after == pytest.approx(bright_before * 0.36, rel=0.1)
    assert out[:, 0].min() > 80 / 255  # borders reflect the scene: no black frame


def test_each_change_acts() -> None:
    b = _batch()
    rng = np.random.default_rng(0)
    dim = augment(b, rng, dataclasses.replace(NONE, gain=(0.5, 0.5)))
    assert dim.mean() == pytest.approx(b.mean() / 255 * 0.5, rel=0.02)
    blurred = augment(b, rng, dataclasses.replace(NONE, p_blur=1.0, blur_sigma=(1.2, 1.2)))
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.8 * np.abs(np.diff(b / 255, axis=2)).mean()
    noisy = augment(b, rng, dataclasses.replace(NONE, noise=(0.05, 0.05)))
    assert (noisy - b / 255).std() == pytest.approx(0.05, rel=0.2)
    jpeg = augment(b, rng, dataclasses.replace(NONE, p_jpeg=1.0, jpeg_quality=(20, 20)))
    assert 0 < np.abs(jpeg - b / 255).mean() < 0.1
    flipped = augment(b, rng, dataclasses.replace(NONE, flip=1.0))
    np.testing.assert_allclose(flipped, b[:, :, ::-1] / 255.0, atol=1e-6)


def test_default_is_milder_than_the_camera_shift_set() -> None:
    # The evaluation set shrinks faces to 55-90 %; training must not cover all of it.
    assert DEFAULT.scale[0] > 0.55 and DEFAULT.p_scale < 1.0


def _identity(n: int) -> np.ndarray:
    """Conditions [n, 9] that change nothing: full size, no offset, gain and gamma 1."""
    c = np.zeros((n, N_CONDITIONS))
    c[:, SCALE] = c[:, GAIN] = c[:, GAMMA] = 1.0
    return c


def test_fixed_conditions_act_like_the_random_ones() -> None:
    b = _batch(4)
    rng = np.random.default_rng(0)
    ident = _identity(4)
    np.testing.assert_allclose(apply_conditions(b, ident, rng), b / 255.0, atol=1e-6)
    dim = ident.copy()
    dim[:, GAIN] = 0.5
    assert apply_conditions(b, dim, rng).mean() == pytest.approx(b.mean() / 255 * 0.5, rel=0.02)
    mirrored = ident.copy()
    mirrored[:2, FLIP] = 1
    out = apply_conditions(b, mirrored, rng)
    np.testing.assert_allclose(out[:2], b[:2, :, ::-1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(out[2:], b[2:] / 255.0, atol=1e-6)
    soft = ident.copy()
    soft[:, BLUR], soft[:, JPEG] = 1.2, 20
    changed = apply_conditions(b, soft, rng)
    assert np.abs(np.diff(changed, axis=2)).mean() < 0.8 * np.abs(np.diff(b / 255, axis=2)).mean()
    with pytest.raises(ValueError, match=r"shape \(4, 9\)"):
        apply_conditions(b, ident[:3], rng)


def test_drawn_conditions_follow_the_config() -> None:
    c = draw_conditions(2000, np.random.default_rng(1))
    np.testing.assert_array_equal(c, draw_conditions(2000, np.random.default_rng(1)))
    assert c.shape == (2000, N_CONDITIONS)
    assert c[:, FLIP].mean() == pytest.approx(DEFAULT.flip, abs=0.04)
    assert DEFAULT.gain[0] <= c[:, GAIN].min() and c[:, GAIN].max() <= DEFAULT.gain[1]
    assert (c[:, BLUR] > 0).mean() == pytest.approx(DEFAULT.p_blur, abs=0.04)
    q = c[c[:, JPEG] > 0, JPEG]
    assert (c[:, JPEG] > 0).mean() == pytest.approx(DEFAULT.p_jpeg, abs=0.04)
    assert DEFAULT.jpeg_quality[0] <= q.min() and q.max() <= DEFAULT.jpeg_quality[1]
    shrunk = c[:, SCALE] < 1
    assert shrunk.mean() == pytest.approx(DEFAULT.p_scale, abs=0.04)
    assert c[shrunk, SCALE].min() >= DEFAULT.scale[0]
