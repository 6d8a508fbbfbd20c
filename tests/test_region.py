"""Region: the guide box square, the model crop, and the Haar detector on a real face photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.region import RegionFinder, crop_for_model
from installation.types import Region


def test_guide_box_is_the_centred_square_of_the_box() -> None:
    finder = RegionFinder(RegionConfig(box=(0.3, 0.15, 0.4, 0.6)))
    r = finder.guide_box(640, 480)
    # box 256 x 288 px at (192, 72): square side 256, centred vertically.
    assert (r.x, r.y, r.w, r.h) == (192, 88, 256, 256)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert finder.find(frame) == r


def test_crop_is_rgb_64_and_exactly_the_region() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[88:344, 192:448] = (255, 0, 0)  # pure blue in BGR, exactly the guide square
    crop = crop_for_model(frame, Region(192, 88, 256, 256))
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert (crop[..., 2] == 255).all() and (crop[..., :2] == 0).all()  # blue lands in RGB[2]


def test_crop_pads_with_edge_pixels_outside_the_frame() -> None:
    frame = np.full((100, 100, 3), 50, np.uint8)
    frame[:, :10] = 200
    crop = crop_for_model(frame, Region(-50, 0, 100, 100))
    assert crop.shape == (64, 64, 3)
    assert crop[:, :20].mean() > 190  # replicated edge, not black


def test_region_outside_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        crop_for_model(np.zeros((10, 10, 3), np.uint8), Region(50, 50, 10, 10))


def _astronaut_scene(dx: int) -> np.ndarray:
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:210, 130:310]  # head, 180 px
    scene = np.full((480, 640, 3), 40, np.uint8)
    scene[150:330, 60 + dx : 240 + dx] = face
    return scene


def test_detector_recentres_on_the_face() -> None:
    finder = RegionFinder(RegionConfig(mode="detector", detector_scale=0.5))
    scene = _astronaut_scene(0)
    r = finder.find(scene)
    assert r.source == "detector"
    cx, cy = r.x + r.w / 2, r.y + r.h / 2
    assert 60 < cx < 240 and 150 < cy < 330  # on the pasted head, not the guide box centre
    guide = finder.guide_box(640, 480)
    assert abs(cx - (guide.x + guide.w / 2)) > 100
    # Moving the face moves the box.
    r2 = finder.find(_astronaut_scene(200))
    assert r2.x - r.x == pytest.approx(200, abs=20)


def test_detector_without_a_face_falls_back_to_the_guide_box() -> None:
    finder = RegionFinder(RegionConfig(mode="detector"))
    frame = np.full((480, 640, 3), 90, np.uint8)
    assert finder.find(frame) == finder.guide_box(640, 480)


def test_crop_benchmark(benchmark) -> None:  # type: ignore[no-untyped-def]
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    region = RegionFinder(RegionConfig()).find(frame)
    crop = benchmark(crop_for_model, frame, region)
    assert crop.shape == (64, 64, 3)


def test_detector_benchmark(benchmark) -> None:  # type: ignore[no-untyped-def]
    finder = RegionFinder(RegionConfig(mode="detector"))
    scene = _astronaut_scene(0)
    region = benchmark(finder.find, scene)
    assert region.source == "detector"
