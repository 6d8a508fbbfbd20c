"""The camera-shift evaluation set: held-out faces as a kiosk camera would deliver them.

From each `eval/utkface` face (a tight, well-lit studio crop) a deterministic variant is made:
the face shrunk to 55-90 % of the crop and offset on a real non-face background from the
validation split, dim or harsh light with a gamma change, defocus blur, sensor noise and JPEG
compression. Group labels carry over, so recall per group can be compared out of distribution.
"""

from __future__ import annotations

import cv2
import numpy as np

from model_export.data import Images, Row


def shift_one(face: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB [64, 64, 3] face + background -> camera-like uint8 RGB [64, 64, 3]."""
    scale = rng.uniform(0.55, 0.90)
    side = round(64 * scale)
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    out = background.copy()
    x, y = rng.integers(0, 64 - side + 1, size=2)
    # Soft oval mask: the face, not its square studio backdrop, lands on the scene.
    mask: np.ndarray = np.zeros((side, side), np.float32)
    cv2.ellipse(
        mask, (side // 2, side // 2), (int(side * 0.46), int(side * 0.5)), 0, 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(mask, (0, 0), side * 0.06)[..., None]
    region = out[y : y + side, x : x + side].astype(np.float32)
    out[y : y + side, x : x + side] = (mask * small + (1 - mask) * region).astype(np.uint8)
    img = out.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        gain, gamma = rng.uniform(0.45, 0.75), rng.uniform(1.1, 1.5)  # dim room
    else:
        gain, gamma = rng.uniform(1.2, 1.6), rng.uniform(0.7, 0.95)  # harsh spot light
    img = np.clip(img * gain, 0, 1) ** gamma
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0.01, 0.05), size=img.shape)
    u8 = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    ok, jpg = cv2.imencode(
        ".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 71))]
    )
    decoded = cv2.imdecode(jpg, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise RuntimeError("OpenCV could not round-trip a JPEG")
    return np.ascontiguousarray(decoded[..., ::-1])


def make_camera_shift(
    faces: Images, backgrounds: np.ndarray, seed: int = 6193, variants: int = 3
) -> Images:
    """`variants` camera-like versions of each face ([variants * N, 64, 64, 3]); deterministic
    for a given seed and inputs. Several variants per face shrink the sampling noise of per-group
    recall (100 faces per group alone give a best-worst gap of ~0.15 with no bias at all)."""
    if len(backgrounds) == 0:
        raise ValueError("camera-shift set needs non-face backgrounds from the validation split")
    if variants < 1:
        raise ValueError(f"variants must be >= 1, got {variants}")
    rng = np.random.default_rng(seed)
    x = np.empty((variants * len(faces.x), *faces.x.shape[1:]), faces.x.dtype)
    rows: list[Row] = []
    for k in range(variants):
        for i, (img, row) in enumerate(zip(faces.x, faces.rows, strict=True)):
            bg = backgrounds[int(rng.integers(0, len(backgrounds)))]
            x[k * len(faces.x) + i] = shift_one(img, bg, rng)
            rows.append(
                Row(f"camera_shift/{k}/{row.path}", True, "eval", dict(row.attrs), row.source)
            )
    return Images(x, rows)
