"""Camera-like augmentation shared by every model trained here (baseline, DB-VAE, balanced).

A kiosk camera does not deliver UTKFace's tight, evenly lit studio crops: the face sits smaller
and off-centre in the guide box, the room is dim or a spot light is harsh, the lens is slightly
out of focus, the sensor is noisy and the stream is JPEG/H.264 compressed. Each training image
gets a random mix of those changes. Faces and non-faces get the same transforms, so no transform
can become a cue for the label. Ranges are milder than the camera-shift evaluation set
(`model_export.camera_shift`), which stays out of distribution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each change; recorded in the model card."""

    flip: float = 0.5  # probability of a horizontal mirror
    p_scale: float = 0.5  # probability of shrinking the content (face smaller in the crop)
    scale: tuple[float, float] = (0.7, 1.0)  # content size as a fraction of the crop
    shift: float = 0.08  # extra offset, fraction of the crop side, either direction
    gain: tuple[float, float] = (0.6, 1.3)  # exposure: dim room .. bright light
    gamma: tuple[float, float] = (0.7, 1.4)
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.2)  # pixels, defocus
    noise: tuple[float, float] = (0.0, 0.03)  # std of Gaussian sensor noise in [0, 1] units
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (40, 90)


DEFAULT = AugmentConfig()


# Columns of a conditions array [N, 9]: one camera condition per image, drawn once and applied
# later (the DB-VAE measures rarity on the views it then trains on, `rarity_views="augmented"`).
FLIP, SCALE, DX, DY, GAIN, GAMMA, BLUR, NOISE, JPEG = range(9)
N_CONDITIONS = 9


class _Drawn:
    """Each change drawn from `rng` when asked, in the order `_render` asks (the order every
    shipped model was trained with, so a seed still gives the same images)."""

    def __init__(self, cfg: AugmentConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng

    def scale(self) -> float:
        return (
            float(self.rng.uniform(*self.cfg.scale))
            if self.rng.random() < self.cfg.p_scale
            else 1.0
        )

    def shift(self) -> tuple[float, float]:
        dx, dy = self.rng.uniform(-self.cfg.shift, self.cfg.shift, size=2)
        return float(dx), float(dy)

    def gain(self) -> float:
        return float(self.rng.uniform(*self.cfg.gain))

    def gamma(self) -> float:
        return float(self.rng.uniform(*self.cfg.gamma))

    def blur(self) -> float:
        """Gaussian sigma in pixels; 0 = no blur."""
        return (
            float(self.rng.uniform(*self.cfg.blur_sigma))
            if self.rng.random() < self.cfg.p_blur
            else 0.0
        )

    def noise(self) -> float:
        return float(self.rng.uniform(*self.cfg.noise))

    def jpeg(self) -> int:
        """JPEG quality; 0 = no round trip."""
        if self.rng.random() < self.cfg.p_jpeg:
            return int(self.rng.integers(self.cfg.jpeg_quality[0], self.cfg.jpeg_quality[1] + 1))
        return 0


class _Fixed:
    """The changes of one row of a conditions array."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = row

    def scale(self) -> float:
        return float(self.row[SCALE])

    def shift(self) -> tuple[float, float]:
        return float(self.row[DX]), float(self.row[DY])

    def gain(self) -> float:
        return float(self.row[GAIN])

    def gamma(self) -> float:
        return float(self.row[GAMMA])

    def blur(self) -> float:
        return float(self.row[BLUR])

    def noise(self) -> float:
        return float(self.row[NOISE])

    def jpeg(self) -> int:
        return int(self.row[JPEG])


def _geometry(img: np.ndarray, s: float, dx: float, dy: float) -> np.ndarray:
    """uint8 [64, 64, 3] -> uint8 [64, 64, 3], content scaled by `s` and offset by (dx, dy)
    crop sides; borders reflected so no black frame appears (a frame would be a cue that exists
    in no real camera crop)."""
    h, w = img.shape[:2]
    ox, oy = dx * w, dy * h
    # Scale about the centre, then offset: x' = s * x + (1 - s) * c + d.
    m = np.array([[s, 0, (1 - s) * w / 2 + ox], [0, s, (1 - s) * h / 2 + oy]], np.float32)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _render(img: np.ndarray, c: _Drawn | _Fixed, rng: np.random.Generator) -> np.ndarray:
    """uint8 [64, 64, 3] (already mirrored or not) -> float32 [64, 64, 3] in [0, 1]; `rng` draws
    the sensor noise itself, whose strength is part of the condition."""
    s = c.scale()
    img = _geometry(np.ascontiguousarray(img), s, *c.shift())
    x = img.astype(np.float32) / 255.0
    x = np.clip(x * c.gain(), 0, 1) ** c.gamma()
    sigma = c.blur()
    if sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x + rng.normal(0, c.noise(), size=x.shape).astype(np.float32)
    x = np.clip(x, 0, 1)
    quality = c.jpeg()
    if quality > 0:
        x = _jpeg(x, quality)
    return x


def augment(
    batch: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = DEFAULT
) -> np.ndarray:
    """uint8 RGB [B, 64, 64, 3] -> float32 [B, 64, 64, 3] in [0, 1], each image changed
    independently; deterministic for a given generator state."""
    b = len(batch)
    out = np.empty(batch.shape, np.float32)
    flips = rng.random(b) < cfg.flip
    drawn = _Drawn(cfg, rng)
    for i in range(b):
        out[i] = _render(batch[i, :, ::-1] if flips[i] else batch[i], drawn, rng)
    return out


def draw_conditions(n: int, rng: np.random.Generator, cfg: AugmentConfig = DEFAULT) -> np.ndarray:
    """[n, 9] float64 camera conditions (columns FLIP..JPEG), drawn as `augment` draws them."""
    out = np.zeros((n, N_CONDITIONS), np.float64)
    out[:, FLIP] = rng.random(n) < cfg.flip
    d = _Drawn(cfg, rng)
    for i in range(n):
        out[i, SCALE] = d.scale()
        out[i, DX], out[i, DY] = d.shift()
        out[i, GAIN], out[i, GAMMA], out[i, BLUR] = d.gain(), d.gamma(), d.blur()
        out[i, NOISE], out[i, JPEG] = d.noise(), d.jpeg()
    return out


def apply_conditions(
    batch: np.ndarray, conditions: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """uint8 RGB [B, 64, 64, 3] with conditions [B, 9] -> float32 [B, 64, 64, 3] in [0, 1]."""
    if conditions.shape != (len(batch), N_CONDITIONS):
        raise ValueError(
            f"conditions must have shape ({len(batch)}, {N_CONDITIONS}), got {conditions.shape}"
        )
    out = np.empty(batch.shape, np.float32)
    for i in range(len(batch)):
        img = batch[i, :, ::-1] if conditions[i, FLIP] else batch[i]
        out[i] = _render(img, _Fixed(conditions[i]), rng)
    return out


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """float [64, 64, 3] in [0, 1] -> the same after a JPEG round trip at `quality`."""
    u8 = (x * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    if decoded is None:  # OpenCV built without JPEG: keep the image, say so once per batch
        logger.warning("JPEG round trip failed; augmentation skips JPEG")
        return x
    # Channel order does not matter: encode and decode see the same (unnamed) order.
    return decoded.astype(np.float32) / 255.0
