"""Which part of the frame both models judge.

The guide box from the config (x, y, w, h as fractions of the frame) is where the visitor is asked
to stand. The models take square 64x64 input, so the judged crop is the largest square centred in
that box (a 0.4 x 0.6 box on a 640x480 frame: 256 x 288 px -> a 256 px square). `guide_box()`
returns that square, so what the screen outlines is exactly what both models see, and every
`Region` the finder returns is square. In detector mode an OpenCV Haar cascade re-centres the
square (same size) on the largest face; with no face the guide square is used.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from installation.config import RegionConfig
from installation.types import ImageU8, Region

logger = logging.getLogger(__name__)

CASCADE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = 1.2  # image pyramid step: 1.1 finds a few more faces at ~2x the cost
MIN_NEIGHBORS = 4
MIN_FACE_OF_BOX = 0.3  # faces smaller than this share of the box side stand far behind it


class RegionError(RuntimeError):
    """The detector cannot run (no cascade file); the message says what to install."""


@lru_cache(maxsize=16)
def _guide_square(box: tuple[float, float, float, float], w: int, h: int) -> Region:
    bx, by, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    side = max(1, int(min(bw, bh)))
    x = round(bx + (bw - side) / 2)
    y = round(by + (bh - side) / 2)
    return Region(x, y, side, side, "guide_box")


def default_cascade_path() -> Path | None:
    data = getattr(cv2, "data", None)  # opencv-python 5.x has no cv2.data
    return Path(data.haarcascades) / CASCADE if data is not None else None


def load_cascade(path: Path | None = None) -> cv2.CascadeClassifier:
    path = path or default_cascade_path()
    if path is None or not path.is_file():
        raise RegionError(
            f"the Haar cascade {CASCADE} is missing ({path or 'no cv2.data'}); OpenCV 5.x ships "
            "none: pip install 'opencv-python-headless<5', or set region.mode: guide_box"
        )
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # a malformed file raises instead of loading empty
        cascade = None
    if cascade is None or cascade.empty():
        raise RegionError(
            f"{path}: the Haar cascade cannot be loaded; reinstall "
            "'opencv-python-headless<5', or set region.mode: guide_box"
        )
    return cascade


class RegionFinder:
    """Region per frame. Not thread-safe (the cascade is not): one pipeline thread calls find()."""

    def __init__(self, cfg: RegionConfig, *, cascade_path: Path | None = None) -> None:
        self._cfg = cfg
        self._cascade = load_cascade(cascade_path) if cfg.mode == "detector" else None

    @property
    def mode(self) -> str:
        return self._cfg.mode

    def guide_box(self, frame_w: int, frame_h: int) -> Region:
        """The guide square in pixels (cached per frame size)."""
        return _guide_square(self._cfg.box, frame_w, frame_h)

    def find(self, frame_bgr: np.ndarray) -> Region:
        h, w = frame_bgr.shape[:2]
        guide = self.guide_box(w, h)
        if self._cascade is None:
            return guide
        face = self._largest_face(frame_bgr, guide.w)
        if face is None:
            return guide
        fx, fy, fw, fh = face
        side = guide.w  # the config decides the size; the detector only moves the square
        x = int(np.clip(round(fx + fw / 2 - side / 2), 0, w - side))
        y = int(np.clip(round(fy + fh / 2 - side / 2), 0, h - side))
        return Region(x, y, side, side, "detector")

    def _largest_face(
        self, frame_bgr: np.ndarray, box_side: int
    ) -> tuple[float, float, float, float] | None:
        assert self._cascade is not None
        scale = self._cfg.detector_scale
        h, w = frame_bgr.shape[:2]
        # Gray first, then shrink: one channel to resample. [H, W, 3] -> [H*s, W*s]
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        min_side = max(20, int(box_side * scale * MIN_FACE_OF_BOX))
        faces = self._cascade.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            return None
        best = max(faces, key=lambda f: int(f[2]) * int(f[3]))
        fx, fy, fw, fh = (float(v) / scale for v in best)
        return fx, fy, fw, fh


def square_of(region: Region) -> Region:
    """The largest square centred in `region` (the region itself when it is square)."""
    side = min(region.w, region.h)
    if region.w == region.h:
        return region
    return Region(
        region.x + (region.w - side) // 2,
        region.y + (region.h - side) // 2,
        side,
        side,
        region.source,
    )


def crop_for_model(frame_bgr: np.ndarray, region: Region, size: int = 64) -> ImageU8:
    """What both models see: the largest square centred in `region`, as uint8 RGB
    [size, size, 3]. Edge pixels pad any part outside the frame; INTER_AREA shrinks."""
    sq = square_of(region)
    h, w = frame_bgr.shape[:2]
    x0, y0, x1, y1 = sq.x, sq.y, sq.x + sq.w, sq.y + sq.h
    patch = frame_bgr[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if patch.size == 0:
        raise ValueError(f"region {region.as_list()} lies outside the {w}x{h} frame")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        patch = cv2.copyMakeBorder(
            patch,
            max(-y0, 0),
            max(y1 - h, 0),
            max(-x0, 0),
            max(x1 - w, 0),
            cv2.BORDER_REPLICATE,
        )
    small = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)  # [size, size, 3] BGR
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), dtype=np.uint8)
