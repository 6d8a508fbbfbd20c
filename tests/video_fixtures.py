"""Small real media files for tests, written with OpenCV: clips (mp4v, MJPG), image folders.

Every frame carries its number as a barcode of 8x8 blocks along the top edge, which survives
mp4v / JPEG compression: `frame_number(image)` reads it back, so tests can check order, loops
and dropped frames on real decoded video. A frame can show nothing (noise), the synthetic face
the tiny test models were trained on (`face="disc"`), or a real face photo (`face="photo"`:
scikit-image's astronaut, Eileen Collins, NASA, public domain), placed in the default guide box.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

Face = Literal["disc", "photo"] | None
DEFAULT_BOX = (0.3, 0.15, 0.4, 0.6)  # RegionConfig's default guide box, x y w h fractions
BITS = 12  # frame numbers up to 4095
BLOCK = 8  # barcode block size in pixels


def face_like(size: int, tone: int = 225) -> np.ndarray:
    """A bright disc with two dark eyes on noise: what the tiny test models call a face (BGR)."""
    img = np.random.default_rng(size).integers(0, 80, size=(size, size, 3), dtype=np.uint8)
    c, r = size // 2, int(size * 0.33)
    cv2.ellipse(img, (c, c), (r, int(r / 0.85)), 0, 0, 360, (tone * 0.75, tone * 0.85, tone), -1)
    for dx in (-r // 2.5, r // 2.5):
        cv2.circle(img, (int(c + dx), int(c - r / 4)), max(r // 7, 1), (12, 12, 12), -1)
    return img


@lru_cache(maxsize=8)
def face_photo(size: int) -> np.ndarray:
    """A real face, size x size BGR: the astronaut's head from skimage.data (ships offline)."""
    from skimage import data

    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:220, 125:325]  # 200 px square
    return cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)


def guide_square(
    size: tuple[int, int], box: tuple[float, float, float, float] = DEFAULT_BOX
) -> tuple[int, int, int]:
    """(x, y, side) of the largest square centred in the guide box of a w x h frame."""
    w, h = size
    bx, by, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    side = int(min(bw, bh))
    return round(bx + (bw - side) / 2), round(by + (bh - side) / 2), side


def stamp_number(img: np.ndarray, number: int) -> None:
    """Write `number` as BITS black/white blocks along the top-left edge (in place)."""
    for bit in range(BITS):
        on = (number >> bit) & 1
        img[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if on else 0


def frame_number(img: np.ndarray) -> int:
    """Read back what stamp_number wrote (tolerates compression: block means vs. mid-grey)."""
    number = 0
    for bit in range(BITS):
        block = img[1 : BLOCK - 1, bit * BLOCK + 1 : (bit + 1) * BLOCK - 1]
        if block.mean() > 127:
            number |= 1 << bit
    return number


def make_frame(
    index: int,
    size: tuple[int, int] = (320, 240),
    face: Face = "disc",
    seed: int = 7,
    box: tuple[float, float, float, float] = DEFAULT_BOX,
) -> np.ndarray:
    """One BGR frame: a dim, smooth scene with mild sensor noise (compresses like camera video,
    unlike pure noise), optionally a face in the guide square, and the frame number."""
    w, h = size
    rng = np.random.default_rng(seed + index)
    coarse = np.random.default_rng(seed).uniform(20, 100, size=(6, 8, 3)).astype(np.float32)
    scene = cv2.resize(coarse + index % 8, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(scene + rng.normal(0, 3, size=(h, w, 3)), 0, 255).astype(np.uint8)
    if face is not None:
        x, y, side = guide_square(size, box)
        img[y : y + side, x : x + side] = face_like(side) if face == "disc" else face_photo(side)
    if w >= BITS * BLOCK and h >= BLOCK:
        stamp_number(img, index)
    return img


def write_clip(
    path: Path,
    frames: int = 24,
    size: tuple[int, int] = (320, 240),
    fps: float = 12.0,
    fourcc: str = "mp4v",
    with_face: bool = True,
    face: Face = "disc",
) -> Path:
    """A real clip (mp4v .mp4 or MJPG .avi); with_face puts `face` in the guide square."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write {fourcc} video {path}")
    for i in range(frames):
        writer.write(make_frame(i, size, face if with_face else None))
    writer.release()
    return path


def write_empty_clip(path: Path, size: tuple[int, int] = (64, 64), fourcc: str = "mp4v") -> Path:
    """A clip with a valid container and zero frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 12.0, size)
    writer.release()
    return path


def write_folder(
    path: Path,
    frames: int = 5,
    size: tuple[int, int] = (160, 120),
    ext: str = "png",
    face: Face = None,
    names: str = "frame_{i:03d}",
) -> Path:
    """A folder of images named by `names` (e.g. 'f{i}' for unpadded numbers)."""
    path.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        if not cv2.imwrite(str(path / f"{names.format(i=i)}.{ext}"), make_frame(i, size, face)):
            raise OSError(f"cannot write {ext} images to {path}")
    return path
