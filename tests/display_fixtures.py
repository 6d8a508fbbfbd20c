"""Scenes for the display tests and screenshots: a camera-like frame, results, model cards.

The cards are built here with the real `Card` schema (the shipped ones would couple the golden
images to whichever models are current).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from installation.config import RegionConfig
from installation.inference.card import Card
from installation.region import RegionFinder
from installation.types import FrameResult, Prediction, Region, Verdict
from tests.video_fixtures import face_like

GROUPS = (
    ("skin_tone=Darker,gender=Female", "Darker women"),
    ("skin_tone=Darker,gender=Male", "Darker men"),
    ("skin_tone=Lighter,gender=Female", "Lighter women"),
    ("skin_tone=Lighter,gender=Male", "Lighter men"),
)


def card(name: str, kind: str, method_id: str, recalls: list[float], threshold: float) -> Card:
    groups: list[dict[str, Any]] = [
        {"key": key, "label": label, "recall": r, "recall_std": 0.04, "mean_p": r, "count": 30}
        for (key, label), r in zip(GROUPS, recalls, strict=True)
    ]
    spec = {"name": "image", "shape": [1, 64, 64, 3], "dtype": "int8", "scale": 1 / 255}
    return Card.model_validate(
        {
            "name": name,
            "kind": kind,
            "method": f"{name}, as the export describes it.",
            "method_id": method_id,
            "version": "1",
            "created": "2026-01-01T00:00:00Z",
            "sha256": "0" * 64,
            "input": {**spec, "zero_point": -128},
            "outputs": [
                {
                    "name": "face_logit",
                    "shape": [1, 1],
                    "dtype": "int8",
                    "scale": 0.1,
                    "zero_point": 0,
                }
            ],
            "threshold": threshold,
            "license": "CC0-1.0",
            "training_data": {"faces": 8000},
            "metrics": {
                "int8": {
                    "mit6s191": {"recall": float(np.mean(recalls)), "count": 120, "groups": groups}
                }
            },
            "display": {"eval_set": "mit6s191", "group_keys": [k for k, _ in GROUPS]},
        }
    )


def cards() -> dict[str, Card]:
    return {
        "left": card("Baseline CNN", "baseline", "baseline", [0.47, 0.40, 0.73, 0.80], 0.5),
        "right": card("Debiased (DB-VAE)", "dbvae", "dbvae", [0.70, 0.67, 0.77, 0.80], 0.35),
    }


def scene() -> np.ndarray:
    """A 640x480 BGR frame: grey room, a warm wall on the camera's left, a face in the box."""
    frame = np.full((480, 640, 3), 60, np.uint8)
    frame[:, :200] = (40, 90, 160)  # shows which way the image is mirrored
    frame[88:344, 192:448] = face_like(256)
    return frame


def result(
    left_face: bool,
    right_face: bool,
    rarity: float | None = 0.83,
    region: Region | None = None,
    p: tuple[float, float] = (0.31, 0.92),
    occupied: bool | None = None,
    close: tuple[bool, bool] = (False, False),
) -> FrameResult:
    """A judged frame; `occupied` (someone in the box) defaults to either model finding a face,
    `close` marks a verdict as a close call (inside the hysteresis band)."""
    box = region or RegionFinder(RegionConfig()).guide_box(640, 480)
    return FrameResult(
        frame_index=1,
        t_capture=0.0,
        t_done=0.0,
        region=box,
        predictions={
            "left": Prediction(p_face=p[0], face=left_face, logit=0.0, ms=0.3),
            "right": Prediction(p_face=p[1], face=right_face, logit=0.0, ms=0.3),
        },
        rarity=rarity,
        verdicts={
            side: Verdict(
                face=f, margin=(0.5 if f else -0.5) if c else (3.0 if f else -3.0), clear=not c
            )
            for side, f, c in (("left", left_face, close[0]), ("right", right_face, close[1]))
        },
        occupied=(left_face or right_face) if occupied is None else occupied,
    )


def only(res: FrameResult, side: str) -> FrameResult:
    """`res` as a kiosk running on one model judges it (the other side's bundle did not load)."""
    return replace(
        res,
        predictions={side: res.predictions[side]},
        verdicts={s: v for s, v in res.verdicts.items() if s == side},
    )
