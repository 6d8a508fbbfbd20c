"""Region: the guide square, the model crop, and the Haar detector on a real face photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.region import RegionError, RegionFinder, crop_for_model, square_of
from installation.types import Region
from tests.video_fixtures import face_photo


def test_guide_box_is_the_centred_square_of_the_box() -> None:
    finder = RegionFinder(RegionConfig(box=(0.3, 0.15, 0.4, 0.6)))
    r = finder.guide_box(640, 480)
    # box 256 x 288 px at (192, 72): square side 256, centred vertically.
    assert (r.x, r.y, r.w, r.h) == (192, 88, 256, 256)
    assert r.source == "guide_box"
    frame = np.zeros((480, 640, 3), np.uint8)
    assert finder.find(frame) == r


def test_wide_box_centres_the_square_horizontally_and_follows_the_frame_size() -> None:
    finder = RegionFinder(RegionConfig(box=(0.0, 0.5, 1.0, 0.5)))
    assert finder.guide_box(400, 200).as_list() == [150, 100, 100, 100]
    assert finder.guide_box(800, 400).as_list() == [300, 200, 200, 200]
    assert finder.guide_box(400, 200) is finder.guide_box(400, 200)  # cached per size


def test_crop_is_rgb_64_and_exactly_the_region() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[88:344, 192:448] = (255, 0, 0)  # pure blue in BGR, exactly the guide square
    crop = crop_for_model(frame, Region(192, 88, 256, 256))
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert (crop[..., 2] == 255).all() and (crop[..., :2] == 0).all()  # blue lands in RGB[2]


def test_crop_of_a_rectangle_takes_its_centred_square_without_stretching() -> None:
    frame = np.zeros((100, 300, 3), np.uint8)
    frame[:, 100:200] = 200  # the centred 100 x 100 square of the 300 x 100 region
    region = Region(0, 0, 300, 100)
    assert square_of(region).as_list() == [100, 0, 100, 100]
    crop = crop_for_model(frame, region, size=32)
    assert crop.shape == (32, 32, 3)
    assert (crop == 200).all()


def test_crop_pads_with_edge_pixels_outside_the_frame() -> None:
    frame = np.full((100, 100, 3), 50, np.uint8)
    frame[:, :10] = 200
    crop = crop_for_model(frame, Region(-50, 0, 100, 100))
    assert crop.shape == (64, 64, 3)
    assert crop[:, :20].mean() > 190  # replicated edge, not black
    assert crop[:, 40:].mean() == pytest.approx(50, abs=1)


def test_region_outside_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        crop_for_model(np.zeros((10, 10, 3), np.uint8), Region(50, 50, 10, 10))


def _astronaut_scene(dx: int, dy: int = 0) -> np.ndarray:
    scene = np.full((480, 640, 3), 40, np.uint8)
    scene[150 + dy : 330 + dy, 60 + dx : 240 + dx] = face_photo(180)
    return scene


def test_detector_recentres_the_config_sized_square_on_the_face() -> None:
    finder = RegionFinder(RegionConfig(mode="detector", detector_scale=0.5))
    guide = finder.guide_box(640, 480)
    r = finder.find(_astronaut_scene(0))
    assert r.source == "detector"
    assert (r.w, r.h) == (guide.w, guide.h)  # the config decides the size
    cx, cy = r.x + r.w / 2, r.y + r.h / 2
    assert 60 < cx < 240 and 150 < cy < 330  # on the pasted head, not the guide box centre
    assert abs(cx - (guide.x + guide.w / 2)) > 100
    r2 = finder.find(_astronaut_scene(200))  # moving the face moves the box
    assert r2.x - r.x == pytest.approx(200, abs=20)


def test_detector_box_is_clamped_to_the_frame() -> None:
    finder = RegionFinder(RegionConfig(mode="detector"))
    scene = np.full((480, 640, 3), 40, np.uint8)
    scene[0:180, 0:180] = face_photo(180)  # a face in the corner: the box cannot centre on it
    r = finder.find(scene)
    assert r.source == "detector"
    assert (r.x, r.y) == (0, 0)
    assert r.x + r.w <= 640 and r.y + r.h <= 480


def test_detector_without_a_face_falls_back_to_the_guide_box() -> None:
    finder = RegionFinder(RegionConfig(mode="detector"))
    frame = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    assert finder.find(frame) == finder.guide_box(640, 480)


def test_missing_cascade_names_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(RegionError, match=r"opencv-python-headless<5"):
        RegionFinder(RegionConfig(mode="detector"), cascade_path=tmp_path / "none.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(RegionError, match=r"broken.xml.*opencv-python-headless<5"):
        RegionFinder(RegionConfig(mode="detector"), cascade_path=broken)
    # The guide box needs no cascade at all.
    RegionFinder(RegionConfig(mode="guide_box"), cascade_path=tmp_path / "none.xml")


def test_downscaled_detector_agrees_with_full_resolution_opencv() -> None:
    """Cross-check with a plain OpenCV call: our downscaled search finds what full-res finds."""
    scene = _astronaut_scene(100, 40)
    cascade = cv2.CascadeClassifier(
        cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    )
    full = cascade.detectMultiScale(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY), 1.1, 5)
    assert len(full) >= 1
    fx, fy, fw, fh = max(full, key=lambda f: int(f[2]) * int(f[3]))
    r = RegionFinder(RegionConfig(mode="detector")).find(scene)
    assert abs((r.x + r.w / 2) - (fx + fw / 2)) < 15
    assert abs((r.y + r.h / 2) - (fy + fh / 2)) < 15
