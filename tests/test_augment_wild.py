"""In-the-wild augmentation: framing on scene patches, light, optics; same for both labels."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.augment_wild import WILD, WildConfig, augment_wild, draw_scale

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


def test_images_without_a_context_take_the_same_draws() -> None:
    """`--augment wild-context` changes only the faces that have a wider crop: every other image
    comes out bit for bit as under "wild", so the two recipes differ in that alone."""
    rng = np.random.default_rng(4)
    batch = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    contexts = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    plain = augment_wild(batch, np.random.default_rng(9), batch)
    none = augment_wild(
        batch, np.random.default_rng(9), batch, contexts=contexts, which=-np.ones(12)
    )
    assert np.array_equal(plain, none)
    which = np.full(12, -1)
    which[[2, 7]] = [0, 2]
    some = augment_wild(batch, np.random.default_rng(9), batch, contexts=contexts, which=which)
    changed = [i for i in range(12) if not np.array_equal(some[i], plain[i])]
    assert changed == [2, 7]


def test_a_face_in_context_keeps_its_own_surroundings() -> None:
    """A 128x128 crop (face at half the side, here a bright square on a mid-grey photo) framed at
    face fraction 0.5: the face fills the centre half, its own photo the rest, no scene; at 0.35
    the photo ends inside the crop and the scene shows only beyond it."""
    context = np.full((1, 128, 128, 3), 120, np.uint8)
    context[0, 32:96, 32:96] = 250  # the face: the centre half of the side
    scenes = np.full((1, 64, 64, 3), 10, np.uint8)
    tight = np.zeros((1, 64, 64, 3), np.uint8)  # what the batch holds: never used here
    at = {}
    for s in (0.5, 0.35):
        cfg = WildConfig(**{**PLAIN.__dict__, "scale": (s, s), "shift": 0.0})
        at[s] = augment_wild(
            tight, np.random.default_rng(0), scenes, cfg, contexts=context, which=np.zeros(1)
        )[0]
    face, photo, scene = 250 / 255, 120 / 255, 10 / 255
    out = at[0.5]
    assert np.allclose(out[20:44, 20:44], face, atol=0.02)  # the face: 32 pixels wide
    assert np.allclose(out[:14, :], photo, atol=0.02) and np.allclose(out[50:, :], photo, atol=0.02)
    assert (
        np.allclose(out[32, 32], face, atol=0.02)
        and not np.isclose(out[2, 2], scene, atol=0.1).all()
    )
    out = at[0.35]  # the photo spans 0.7 of the side, 9.6 pixels short on each side
    assert np.allclose(out[32, 32], face, atol=0.02) and np.allclose(out[18, 32], photo, atol=0.02)
    assert np.allclose(out[1, 1], scene, atol=0.02) and np.allclose(out[62, 62], scene, atol=0.02)


def test_contexts_and_which_go_together() -> None:
    batch = np.zeros((2, 64, 64, 3), np.uint8)
    contexts = np.zeros((1, 128, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="together"):
        augment_wild(batch, np.random.default_rng(0), batch, contexts=contexts)
    with pytest.raises(ValueError, match="one entry of which per image"):
        augment_wild(batch, np.random.default_rng(0), batch, contexts=contexts, which=np.zeros(1))


def test_people_surroundings_replace_the_scene_around_any_image() -> None:
    """`--augment wild-people`: an image without its own wider crop (here a non-face, a flat
    dark square) laid at face fraction 0.5 on a random in-the-wild crop: the content covers that
    crop's face (the centre half), the crop's photo shows around it, the scene nowhere."""
    context = np.full((1, 128, 128, 3), 120, np.uint8)
    context[0, 32:96, 32:96] = 250  # its face: the centre half, covered by the content
    scenes = np.full((1, 64, 64, 3), 10, np.uint8)
    content = np.full((1, 64, 64, 3), 60, np.uint8)
    cfg = WildConfig(**{**PLAIN.__dict__, "scale": (0.5, 0.5), "shift": 0.0})
    out = augment_wild(
        content,
        np.random.default_rng(0),
        scenes,
        cfg,
        contexts=context,
        which=-np.ones(1),
        people=1.0,
    )[0]
    photo, inside = 120 / 255, 60 / 255
    assert np.allclose(out[20:44, 20:44], inside, atol=0.02)  # the content, not the face below
    assert np.allclose(out[:12, :], photo, atol=0.02) and np.allclose(out[52:, :], photo, atol=0.02)
    plain = augment_wild(
        content, np.random.default_rng(0), scenes, cfg, contexts=context, which=-np.ones(1)
    )[0]
    assert np.allclose(plain[:12, :], 10 / 255, atol=0.02)  # without people: the scene


def test_people_zero_draws_nothing_and_needs_contexts() -> None:
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    contexts = rng.integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    which = np.array([-1, 0, -1, -1, 1, -1])
    before = augment_wild(batch, np.random.default_rng(2), batch, contexts=contexts, which=which)
    zero = augment_wild(
        batch, np.random.default_rng(2), batch, contexts=contexts, which=which, people=0.0
    )
    assert np.array_equal(before, zero)
    half = augment_wild(
        batch, np.random.default_rng(2), batch, contexts=contexts, which=which, people=0.5
    )
    assert not np.array_equal(before, half)
    with pytest.raises(ValueError, match="contexts"):
        augment_wild(batch, np.random.default_rng(2), batch, people=0.5)


def test_log_scale_draw_puts_more_framings_where_the_kiosk_sees_faces() -> None:
    """Log-uniform over 0.35-1.25: P(s < 0.75) = ln(0.75 / 0.35) / ln(1.25 / 0.35) = 0.60;
    uniform: 0.40 / 0.90 = 0.44. Either way one draw from the generator, so every later draw
    of the image lines up."""
    log = WildConfig(scale_draw="log")
    draws = {}
    for cfg in (WILD, log):
        rng = np.random.default_rng(5)
        draws[cfg.scale_draw] = np.array([draw_scale(cfg, rng) for _ in range(20_000)])
    for name, want in (
        ("uniform", 0.40 / 0.90),
        ("log", np.log(0.75 / 0.35) / np.log(1.25 / 0.35)),
    ):
        s = draws[name]
        assert s.min() >= 0.35 and s.max() <= 1.25, name
        assert np.mean(s < 0.75) == pytest.approx(want, abs=0.015), name
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    draw_scale(WILD, a), draw_scale(log, b)
    assert a.random() == b.random()
    batch = np.random.default_rng(1).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    scenes = np.random.default_rng(2).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    same = augment_wild(batch, np.random.default_rng(3), scenes, WILD)
    assert np.array_equal(same, augment_wild(batch, np.random.default_rng(3), scenes))
    assert not np.array_equal(same, augment_wild(batch, np.random.default_rng(3), scenes, log))
