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


def _geometry(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 [64, 64, 3] -> uint8 [64, 64, 3], shrunk and/or shifted; borders reflected so no
    black frame appears (a frame would be a cue that exists in no real camera crop)."""
    h, w = img.shape[:2]
    s = rng.uniform(*cfg.scale) if rng.random() < cfg.p_scale else 1.0
    dx, dy = rng.uniform(-cfg.shift, cfg.shift, size=2) * w
    # Scale about the centre, then offset: x' = s * x + (1 - s) * c + d.
    m = np.array([[s, 0, (1 - s) * w / 2 + dx], [0, s, (1 - s) * h / 2 + dy]], np.float32)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def augment(
    batch: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = DEFAULT
) -> np.ndarray:
    """uint8 RGB [B, 64, 64, 3] -> float32 [B, 64, 64, 3] in [0, 1], each image changed
    independently; deterministic for a given generator state."""
    b = len(batch)
    out = np.empty(batch.shape, np.float32)
    flips = rng.random(b) < cfg.flip
    for i in range(b):
        img = batch[i, :, ::-1] if flips[i] else batch[i]
        img = _geometry(np.ascontiguousarray(img), cfg, rng)
        x = img.astype(np.float32) / 255.0
        x = np.clip(x * rng.uniform(*cfg.gain), 0, 1) ** rng.uniform(*cfg.gamma)
        if rng.random() < cfg.p_blur:
            x = cv2.GaussianBlur(x, (0, 0), rng.uniform(*cfg.blur_sigma))
        x = x + rng.normal(0, rng.uniform(*cfg.noise), size=x.shape).astype(np.float32)
        x = np.clip(x, 0, 1)
        if rng.random() < cfg.p_jpeg:
            x = _jpeg(x, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        out[i] = x
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
