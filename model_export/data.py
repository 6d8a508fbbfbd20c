"""The faces64 dataset: labels.csv + 64x64 RGB JPEGs (README "Training data format").

Reads by path only (the data is never copied into the project). Unreadable images are skipped
and counted, never silently. The validation split is deterministic and keeps every crop of one
source image on the same side (grouped by `source_path`), so random crops of a training photo
cannot leak into the threshold calibration.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

REQUIRED = ("path", "is_face", "split")
GROUP_COLUMNS = ("gender", "race", "skin_tone", "age")


class DataError(ValueError):
    """A dataset problem the user can fix; names the file and the fix."""


@dataclass
class Row:
    path: str
    is_face: bool
    split: str
    attrs: dict[str, str]
    source: str  # source image id: all crops of one photo share it


@dataclass
class Images:
    """Decoded images [N, 64, 64, 3] uint8 RGB with their rows."""

    x: np.ndarray
    rows: list[Row]
    skipped: list[str] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        return np.array([r.is_face for r in self.rows], dtype=np.float32)

    def attr(self, name: str) -> np.ndarray:
        return np.array([r.attrs.get(name, "") for r in self.rows])

    def subset(self, idx: np.ndarray) -> Images:
        return Images(self.x[idx], [self.rows[i] for i in idx], self.skipped)


def check_unique(labels: Path, path: str, line: int, lines: dict[str, int]) -> None:
    """Refuse an image listed twice (it would be counted, trained on and measured twice);
    `lines` maps each path seen so far to its line and gains this one."""
    first = lines.setdefault(path, line)
    if first != line:
        raise DataError(
            f"{labels}:{line}: path {path!r} appears twice (lines {first} and {line}); remove "
            "the duplicate row"
        )


def read_labels(root: Path) -> list[Row]:
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DataError(
            f"{labels}: not found; --data must point at a faces64 folder (labels.csv + images)"
        )
    rows: list[Row] = []
    lines: dict[str, int] = {}  # path -> the line that listed it first
    # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which would
    # otherwise become part of the first column's name ("missing column(s) ['path']").
    with labels.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{labels}: missing column(s) {missing}; the header must include "
                "path,is_face,split (README 'Training data format')"
            )
        for n, rec in enumerate(reader, start=2):
            if rec["is_face"] not in ("0", "1") or rec["split"] not in ("train", "eval"):
                raise DataError(
                    f"{labels}:{n}: is_face must be 0/1 and split train/eval, got "
                    f"{rec['is_face']!r}/{rec['split']!r}; fix that line"
                )
            check_unique(labels, rec["path"], n, lines)
            attrs = {c: rec[c] for c in GROUP_COLUMNS if rec.get(c)}
            rows.append(
                Row(
                    path=rec["path"],
                    is_face=rec["is_face"] == "1",
                    split=rec["split"],
                    attrs=attrs,
                    source=rec.get("source_path") or rec["path"],
                )
            )
    if not rows:
        raise DataError(f"{labels}: no rows")
    return rows


def load_images(root: Path, rows: list[Row]) -> Images:
    """Decode the JPEGs of `rows`; unreadable or wrongly sized ones are skipped and counted."""
    x = np.empty((len(rows), 64, 64, 3), dtype=np.uint8)
    kept: list[Row] = []
    skipped: list[str] = []
    for row in rows:
        img = cv2.imread(str(root / row.path), cv2.IMREAD_COLOR)
        if img is None or img.shape != (64, 64, 3):
            skipped.append(row.path)
            continue
        x[len(kept)] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        kept.append(row)
    if skipped:
        logger.warning(
            "%s: %d unreadable or non-64x64 images skipped (first: %s)",
            root,
            len(skipped),
            skipped[0],
        )
    return Images(x[: len(kept)], kept, skipped)


def in_validation(source: str, fraction: float, salt: str = "faces64-val") -> bool:
    """Deterministic, grouped split: a hash of the source image decides."""
    h = hashlib.sha256(f"{salt}:{source}".encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32 < fraction


def split_train_val(rows: list[Row], fraction: float = 0.1) -> tuple[list[Row], list[Row]]:
    train = [r for r in rows if r.split == "train"]
    val = [r for r in train if in_validation(r.source, fraction)]
    val_ids = {id(r) for r in val}
    return [r for r in train if id(r) not in val_ids], val
