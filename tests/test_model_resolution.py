"""The input-detail diagnostic (model_export.diagnostics.resolution): its views are the report's
crops, and the reduced ones keep the framing while losing the detail; and the covered-face one
(model_export.diagnostics.covered): its covers hide the face and keep the surroundings."""

from __future__ import annotations

import numpy as np

from model_export.diagnostics.resolution import VIEWS, view64
from model_export.wider import crop64


def _crop128(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (128, 128, 3), dtype=np.uint8)


def test_plain_views_are_the_reports_crops() -> None:
    img = _crop128(0)
    for f in (0.5, 0.7, 1.0):
        assert np.array_equal(view64(img, f, None), crop64(img, f))
    assert VIEWS["f=0.5"] == (0.5, None) and VIEWS["f=1.0"] == (1.0, None)


def test_reduced_views_keep_the_framing_and_lose_the_detail() -> None:
    """A studio-tight face at 32 px of detail: the same picture at 64x64 (its coarse layout, a
    bright left half here, stays), but fine texture (pixel noise) is averaged away, and less so
    at 45 px than at 32."""
    img = _crop128(1)
    img[:, :64] //= 4  # the left half of the crop (of the face square) darker
    full = view64(img, 1.0, None).astype(np.float32)
    at = {px: view64(img, 1.0, px).astype(np.float32) for px in (32, 45)}
    for v in at.values():
        assert v.shape == (64, 64, 3)
        assert v[:, 8:24].mean() < v[:, 40:56].mean()  # the layout: dark left, bright right
        assert abs(v.mean() - full.mean()) < 2  # the same light
    detail = {px: float(np.abs(np.diff(v, axis=1)).mean()) for px, v in at.items()}
    full_detail = float(np.abs(np.diff(full, axis=1)).mean())
    assert detail[32] < detail[45] < full_detail
    assert VIEWS["f=1.0@32px"] == (1.0, 32) and VIEWS["f=1.0@45px"] == (1.0, 45)


def test_covered_crops_keep_the_surroundings_and_hide_the_face() -> None:
    """diagnostics.covered: the centre half (the face at f = 0.5) is replaced by the cover, with
    the training's soft edge; the surroundings stay pixel for pixel; a flat cover is the crop's
    own mean colour; covers are used in turn."""
    from model_export.diagnostics.covered import covered

    crops = np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    covers = np.stack([np.full((64, 64, 3), v, np.uint8) for v in (10, 240)])
    out = covered(crops, covers)
    assert out.shape == crops.shape and out.dtype == np.uint8
    for i, v in enumerate((10, 240, 10)):  # crop i gets cover i mod 2
        assert np.abs(out[i, 20:44, 20:44].astype(int) - v).max() <= 1
        assert np.array_equal(out[i, :14], crops[i, :14])  # surroundings untouched
        assert np.array_equal(out[i, 50:], crops[i, 50:])
    flat = covered(crops, None)
    for i in range(3):
        mean = crops[i].mean(axis=(0, 1))
        assert np.abs(flat[i, 24:40, 24:40].astype(float) - mean).max() <= 1.5


def test_corners_lie_outside_the_face_box() -> None:
    """diagnostics.covered.corners: four patches per crop, in order top-left, top-right,
    bottom-left, bottom-right, each cut from outside the face box (the centre half) and
    enlarged to 64x64; a face-box pixel never reaches one."""
    from model_export.diagnostics.covered import corners

    x = np.zeros((2, 128, 128, 3), np.uint8)
    x[:, 32:96, 32:96] = 255  # the face box, bright
    for i, (y0, x0) in enumerate([(0, 0), (0, 96), (96, 0), (96, 96)]):
        x[1, y0 : y0 + 32, x0 : x0 + 32] = 10 * (i + 1)  # each corner of crop 1 its own grey
    out = corners(x)
    assert out.shape == (8, 64, 64, 3) and out.dtype == np.uint8
    assert out.max() < 255  # nothing of the face box
    for i in range(4):
        assert np.all(out[4 + i] == 10 * (i + 1))
    assert corners(x[:0]).shape == (0, 64, 64, 3)
