"""Which part of the frame both models judge.

The guide box from the config (x, y, w, h as fractions) is drawn on screen; the crop is the
largest square centred in it, because the models take square 64x64 input. Both models always
get exactly the same crop. In detector mode an OpenCV Haar cascade re-centres (and re-sizes) that
square on the largest face; without a face the guide box is used.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from installation.config import RegionConfig
from installation.types import Region

logger = logging.getLogger(__name__)

CASCADE = "haarcascade_frontalface_default.xml"


class RegionError(RuntimeError):
    pass


@lru_cache(maxsize=8)
def _guide_square(box: tuple[float, float, float, float], w: int, h: int) -> Region:
    bx, by, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    side = int(min(bw, bh))
    x = round(bx + (bw - side) / 2)
    y = round(by + (bh - side) / 2)
    return Region(x, y, side, side, "guide_box")


def load_cascade() -> cv2.CascadeClassifier:
    data = getattr(cv2, "data", None)
    path = Path(data.haarcascades) / CASCADE if data is not None else None
    if path is None or not path.is_file():
        raise RegionError(
            f"OpenCV ships no Haar cascade {CASCADE} (opencv 5.x dropped them); install "
            "'opencv-python-headless<5' or set region.mode: guide_box"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RegionError(f"{path}: the Haar cascade cannot be loaded; reinstall opencv")
    return cascade


class RegionFinder:
    def __init__(self, cfg: RegionConfig) -> None:
        self._cfg = cfg
        self._cascade = load_cascade() if cfg.mode == "detector" else None

    @property
    def mode(self) -> str:
        return self._cfg.mode

    def guide_box(self, frame_w: int, frame_h: int) -> Region:
        return _guide_square(self._cfg.box, frame_w, frame_h)

    def find(self, frame_bgr: np.ndarray) -> Region:
        h, w = frame_bgr.shape[:2]
        guide = self.guide_box(w, h)
        if self._cascade is None:
            return guide
        scale = self._cfg.detector_scale
        small = cv2.resize(
            frame_bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA
        )
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        min_side = max(16, int(guide.w * scale * 0.35))  # ignore faces far behind the visitor
        faces = self._cascade.detectMultiScale(
            gray, scaleFactor=1.2, minNeighbors=4, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            return guide
        best = max(faces, key=lambda f: int(f[2]) * int(f[3]))
        fx, fy, fw, fh = (float(v) / scale for v in best)
        # Training crops show the whole face filling most of the square: add a margin.
        side = int(np.clip(max(fw, fh) * 1.3, guide.w * 0.5, min(w, h)))
        cx, cy = fx + fw / 2, fy + fh / 2
        x = int(np.clip(cx - side / 2, 0, w - side))
        y = int(np.clip(cy - side / 2, 0, h - side))
        return Region(x, y, side, side, "detector")


def crop_for_model(frame_bgr: np.ndarray, region: Region, size: int = 64) -> np.ndarray:
    """The square `region` as uint8 RGB [size, size, 3]; edge pixels pad what leaves the frame."""
    h, w = frame_bgr.shape[:2]
    x0, y0, x1, y1 = region.x, region.y, region.x + region.w, region.y + region.h
    patch = frame_bgr[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if patch.size == 0:
        raise ValueError(f"region {region} lies outside the {w}x{h} frame")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        patch = cv2.copyMakeBorder(
            patch,
            max(-y0, 0),
            max(y1 - h, 0),
            max(-x0, 0),
            max(x1 - w, 0),
            cv2.BORDER_REPLICATE,
        )
    small = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
