"""In-the-wild augmentation: framing on scene patches, light, optics; same for both labels."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.augment_wild import WILD, WildConfig, augment_wild

# Geometry only: no light, optics or flip, so pixels can be traced to content or scene.
PLAIN = WildConfig(
    flip=0.0,
    gain=(1.0, 1.0),
    gamma=(1.0, 1.0),
    cast=0.0,
    p_gradient=0.0,
    p_gray=0.0,
    p_lowres=0.0,
    p_blur=0.0,
    p_motion=0.0,
    noise=(0.0, 0.0),
    p_jpeg=0.0,
)


def test_small_content_lies_on_a_scene_not_a_mirror() -> None:
    content = np.full((1, 64, 64, 3), 250, np.uint8)
    scenes = np.full((3, 64, 64, 3), 10, np.uint8)
    cfg = WildConfig(**{**PLAIN.__dict__, "scale": (0.4, 0.4), "shift": 0.0})
    out = augment_wild(content, np.random.default_rng(0), scenes, cfg)[0]
    assert out[32, 32].min() > 0.95  # the content, in the centre
    assert out[2, 2].max() < 0.1 and out[61, 61].max() < 0.1  # the scene, in the corners


def test_content_that_covers_the_crop_hides_the_scene() -> None:
    content = np.full((1, 64, 64, 3), 250, np.uint8)
    scenes = np.zeros((1, 64, 64, 3), np.uint8)
    cfg = WildConfig(**{**PLAIN.__dict__, "scale": (1.2, 1.2), "shift": 0.0})
    out = augment_wild(content, np.random.default_rng(0), scenes, cfg)[0]
    assert out.min() > 0.95


def test_deterministic_range_and_variety() -> None:
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    a = augment_wild(batch, np.random.default_rng(7), batch)
    b = augment_wild(batch, np.random.default_rng(7), batch)
    assert a.dtype == np.float32 and a.shape == batch.shape
    assert np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0
    c = augment_wild(batch, np.random.default_rng(8), batch)
    assert not np.array_equal(a, c)
    # Light varies: mean brightness spreads well beyond the input's.
    assert np.std(a.mean(axis=(1, 2, 3))) > np.std(batch.mean(axis=(1, 2, 3)) / 255)


def test_needs_scenes() -> None:
    batch = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="non-face"):
        augment_wild(batch, np.random.default_rng(0), batch[:0])


def test_framing_covers_the_kiosk_range() -> None:
    # UTKFace faces fill ~0.85-1.0 of the crop; 0.35-1.25 of it is a face fraction ~0.3-1.1.
    assert WILD.scale[0] * 0.85 <= 0.3 and WILD.scale[1] >= 1.0
