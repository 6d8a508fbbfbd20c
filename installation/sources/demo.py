"""The demo clip: generated on first use, so `make demo` needs no camera and no download.

Built only from images scikit-image ships inside its wheel (`skimage.data`):
- `astronaut`: Eileen Collins, NASA portrait, public domain;
- `brick`: brick wall texture, CC0 (scikit-image contributors);
- `coffee`: a cup of coffee, CC0 (Rachel Michetti).

Script, 640x480 at 30 fps, 24 s: an empty room (attract screen), a face slides into the guide
box, stays with small head movements and changing light, leaves; a coffee cup is held into the
box (not a face); the room is empty again. Deterministic: the same frames on every machine with
the same OpenCV build; rewritten if missing or unreadable.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from installation import paths

logger = logging.getLogger(__name__)

W, H, FPS, SECONDS = 640, 480, 30, 24
VERSION = 1  # bump when the script changes, so caches are rebuilt
FACE_BOX = (160, 50, 120, 120)  # x, y, w, h of the head in astronaut.png (512x512), with margin
SIDE = 256  # the default guide box's square at 640x480


def demo_clip_path(cache: Path | None = None) -> Path:
    path = (cache or paths.cache_dir()) / f"demo-v{VERSION}-{W}x{H}.mp4"
    if path.is_file() and _readable(path):
        return path
    logger.info("generating the demo clip %s (first run only)", path)
    write_demo_clip(path)
    return path


def _readable(path: Path) -> bool:
    cap = cv2.VideoCapture(str(path))
    try:
        return cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FPS * SECONDS
    finally:
        cap.release()


def _assets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = FACE_BOX
    face = cv2.resize(astronaut[y : y + h, x : x + w], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    brick = cv2.resize(data.brick(), (W, H), interpolation=cv2.INTER_AREA)
    # A calm, dim, warm wall: the room behind the visitor.
    room = cv2.GaussianBlur(brick, (0, 0), 2.0).astype(np.float32) * 0.45 + 30
    room_bgr = np.clip(np.stack([room * 0.8, room * 0.9, room * 1.05], axis=-1), 0, 255)
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)[40:360, 140:460]
    cup = cv2.resize(coffee, (220, 220), interpolation=cv2.INTER_AREA)
    return face, room_bgr.astype(np.uint8), cup


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def _noise_fields(n: int = 16) -> list[np.ndarray]:
    """Seeded sensor-noise fields, cycled: deterministic and much cheaper than one per frame."""
    rng = np.random.default_rng(6191)
    return [rng.normal(0, 3.0, size=(H, W, 3)).astype(np.float32) for _ in range(n)]


def render_frame(
    i: int, face: np.ndarray, room: np.ndarray, cup: np.ndarray, noise: list[np.ndarray]
) -> np.ndarray:
    t = i / FPS
    frame = room.copy()
    gx, gy = (W - SIDE) // 2, 88  # where the default guide box's square sits
    if 4.0 <= t < 16.0:
        if t < 6.0:  # slide in from the left
            x = int(-SIDE + (gx + SIDE) * (t - 4.0) / 2.0)
        elif t < 14.0:  # in the box: small head movements
            x = gx + int(12 * math.sin(2 * math.pi * 0.4 * t))
        else:  # leave to the right
            x = gx + int((W - gx) * (t - 14.0) / 2.0)
        y = gy + int(6 * math.sin(2 * math.pi * 0.3 * t))
        gain = 1.0 if t < 9.0 else 0.65 + 0.35 * math.cos(2 * math.pi * 0.25 * (t - 9.0))
        _paste(frame, np.clip(face.astype(np.float32) * gain, 0, 255).astype(np.uint8), x, y)
    elif 17.0 <= t < 21.0:
        _paste(frame, cup, gx + 18, gy + 18 + int(8 * math.sin(2 * math.pi * 0.5 * t)))
    return np.clip(frame.astype(np.float32) + noise[i % len(noise)], 0, 255).astype(np.uint8)


def write_demo_clip(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    face, room, cup = _assets()
    noise = _noise_fields()
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write mp4v video to {path.parent}")
        for i in range(FPS * SECONDS):
            writer.write(render_frame(i, face, room, cup, noise))
        writer.release()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
