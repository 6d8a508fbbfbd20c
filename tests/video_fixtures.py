"""Small real media files for tests, written with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def face_like(size: int, tone: int = 225) -> np.ndarray:
    """A bright disc with two dark eyes on noise: what the tiny test models call a face (BGR)."""
    img = np.random.default_rng(size).integers(0, 80, size=(size, size, 3), dtype=np.uint8)
    c, r = size // 2, int(size * 0.33)
    cv2.ellipse(img, (c, c), (r, int(r / 0.85)), 0, 0, 360, (tone * 0.75, tone * 0.85, tone), -1)
    for dx in (-r // 2.5, r // 2.5):
        cv2.circle(img, (int(c + dx), int(c - r / 4)), max(r // 7, 1), (12, 12, 12), -1)
    return img


def write_clip(
    path: Path,
    frames: int = 24,
    size: tuple[int, int] = (320, 240),
    fps: float = 12.0,
    fourcc: str = "mp4v",
    with_face: bool = True,
) -> Path:
    """A real clip; with_face puts a face-like patch in the centre of the guide box."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write {fourcc} video {path}")
    rng = np.random.default_rng(7)
    side = int(min(0.4 * w, 0.6 * h))
    patch = face_like(side)
    for i in range(frames):
        img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        if with_face:
            x, y = (w - side) // 2, int(0.15 * h + (0.6 * h - side) / 2)
            img[y : y + side, x : x + side] = patch
        cv2.putText(img, str(i), (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        writer.write(img)
    writer.release()
    return path


def write_folder(path: Path, frames: int = 5, size: tuple[int, int] = (160, 120)) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(frames):
        img = np.full((h, w, 3), 20 * i, dtype=np.uint8)
        cv2.imwrite(str(path / f"frame_{i:03d}.png"), img)
    return path
