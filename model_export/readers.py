"""Readers for the other face sources: the MIT 6.S191 lab h5 and CelebA (README "Training data
format").

Both return `Images` (uint8 RGB [N, 64, 64, 3] with rows), like the faces64 reader, so they can
serve as extra evaluation or training sources. Errors name the file and the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from model_export.data import DataError, Images, Row

logger = logging.getLogger(__name__)


def read_mit_h5(path: Path, limit: int | None = None) -> Images:
    """The lab's h5: `images` [N, 64, 64, 3] uint8 stored BGR, `labels` [N] or [N, 1] (1 = face)."""
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: not found; pass the MIT 6.S191 training h5 file")
    try:
        with h5py.File(path, "r") as f:
            if "images" not in f or "labels" not in f:
                raise DataError(f"{path}: needs datasets 'images' and 'labels'; found {list(f)}")
            n = len(f["images"]) if limit is None else min(limit, len(f["images"]))
            images = np.asarray(f["images"][:n])
            labels = np.asarray(f["labels"][:n]).reshape(-1)
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    if images.shape[1:] != (64, 64, 3):
        raise DataError(f"{path}: images must be [N, 64, 64, 3], got {images.shape}")
    if images.dtype != np.uint8:
        # Some copies store floats in [0, 1].
        images = np.clip(images * (255.0 if images.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(images[..., ::-1])  # the lab stores BGR
    rows = [
        Row(
            path=f"{path.name}#{i}",
            is_face=bool(labels[i] > 0.5),
            split="train",
            attrs={},
            source=f"{path.name}#{i}",
        )
        for i in range(n)
    ]
    return Images(rgb, rows)


def read_celeba(folder: Path, limit: int | None = None) -> Images:
    """CelebA: `img_align_celeba/*.jpg` + `list_attr_celeba.txt` (count, names, rows of -1/1).

    Faces only; `Male` becomes gender, `Pale_Skin` a coarse skin attribute. Centre square, 64x64.
    """
    attr_file = folder / "list_attr_celeba.txt"
    img_dir = folder / "img_align_celeba"
    if not attr_file.is_file():
        raise DataError(
            f"{attr_file}: CelebA attribute file missing; download list_attr_celeba.txt into "
            f"{folder} next to img_align_celeba/"
        )
    if not img_dir.is_dir():
        raise DataError(f"{img_dir}: CelebA image folder missing")
    lines = attr_file.read_text(encoding="utf-8").splitlines()
    if len(lines) < 3:
        raise DataError(f"{attr_file}: too short to be a CelebA attribute file")
    names = lines[1].split()
    out: list[np.ndarray] = []
    rows: list[Row] = []
    skipped: list[str] = []
    for line in lines[2:]:
        if limit is not None and len(rows) >= limit:
            break
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{attr_file}: line for {parts[:1]} has {len(parts) - 1} values, "
                f"expected {len(names)}"
            )
        values = dict(zip(names, parts[1:], strict=True))
        img = cv2.imread(str(img_dir / parts[0]), cv2.IMREAD_COLOR)
        if img is None:
            skipped.append(parts[0])
            continue
        h, w = img.shape[:2]
        side = min(h, w)
        y, x = (h - side) // 2, (w - side) // 2
        img = cv2.resize(img[y : y + side, x : x + side], (64, 64), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        attrs = {"gender": "Male" if values.get("Male") == "1" else "Female"}
        if "Pale_Skin" in values:
            attrs["skin"] = "Pale" if values["Pale_Skin"] == "1" else "Not pale"
        rows.append(Row(path=parts[0], is_face=True, split="train", attrs=attrs, source=parts[0]))
    if skipped:
        logger.warning("%s: %d unreadable images skipped", img_dir, len(skipped))
    x = np.stack(out) if out else np.zeros((0, 64, 64, 3), np.uint8)
    return Images(x, rows, skipped)
