"""Screenshots of the kiosk for the README: the shipped models judging real frames.

    python -m installation.tools.screenshots [OUT_DIR]     (default assets/screenshots)

Every screen (found by both, found by one, missed by both, attract, camera unavailable, paused)
in every language. Frames are built from scikit-image's bundled public-domain photo of the
astronaut Eileen Collins at three framings, judged by the real pipeline on the shipped bundles
after a simulated visit (the occupancy detector first learns the empty box), with the heatmaps
measured as the kiosk measures them, and drawn at 1280x720 under the dummy video driver.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.config import RegionConfig
from installation.display import KioskView, render_to_png
from installation.heatmap import Heatmaps, occlusion_map
from installation.inference import load_classifier
from installation.paths import BUNDLE_FOLDERS, MODELS_DIR, SCREENSHOTS_DIR
from installation.pipeline import Pipeline
from installation.region import RegionFinder
from installation.types import Frame, FrameResult, SourceState, SourceStatus

logger = logging.getLogger(__name__)

TEXTS_FILE = "screen-texts.txt"  # beside the screenshots: each one's texts as drawn

SIZE = (1280, 720)


def _zoom(photo: np.ndarray, face: tuple[int, int, int], box: tuple[int, int, int]) -> np.ndarray:
    """A 640x480 BGR frame of `photo` zoomed so the square `face` (x, y, side in photo pixels)
    fills the guide square `box` (x, y, side in frame pixels): a visitor standing in the box."""
    fx, fy, fs = face
    bx, by, bs = box
    k = bs / fs
    m = np.array([[k, 0, bx - fx * k], [0, k, by - fy * k]], np.float32)  # photo -> frame, [2, 3]
    frame = cv2.warpAffine(
        photo, m, (640, 480), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )
    return np.asarray(frame, np.uint8)


# Framings of the astronaut (x, y, side of the square in photo pixels that fills the guide box),
# picked so that the shipped models split as each screen needs; the log prints their logits.
FRAMINGS = {
    "found_both": (160, 70, 120),  # her face, tight like the training crops
    "found_one": (150, 120, 110),  # lower in the box: one model finds her, the other misses
    "missed_both": (0, -70, 400),  # loose, as a visitor a step back: both models miss her
}
LANGS = ("en", "de", "fr")


def frames() -> dict[str, np.ndarray]:
    from skimage import data

    guide = RegionFinder(RegionConfig()).guide_box(640, 480)
    box = (guide.x, guide.y, guide.w)
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # [512, 512, 3]
    return {name: _zoom(astronaut, face, box) for name, face in FRAMINGS.items()}


def _visit(pipeline: Pipeline, image: np.ndarray, t: float) -> tuple[FrameResult, float]:
    """A visit as the kiosk sees one: 3 s of the room without the visitor (a heavy blur of the
    picture stands in for it), so the occupancy detector learns it, then 1 s of the visitor."""
    room = np.asarray(cv2.GaussianBlur(image, (0, 0), 40), np.uint8)
    for i in range(30):
        pipeline.process(Frame(index=i, t=t, image=room))
        t += 0.1
    res = None
    for i in range(30, 40):
        res = pipeline.process(Frame(index=i, t=t, image=image))
        t += 0.1
    assert res is not None
    return res, t + 10.0  # the next shot is another visit


def main(out_dir: Path) -> list[Path]:
    """Every screen in every language: `{screen}-{lang}.png` in `out_dir`; returns the files."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    classifiers = {
        side: load_classifier(MODELS_DIR / name, accelerator="cpu")
        for side, name in zip(("left", "right"), BUNDLE_FOLDERS, strict=True)
    }
    pipeline = Pipeline(
        RegionFinder(RegionConfig()),
        classifiers,
        rarity=classifiers["right"].rarity,
        keep_frame=True,
    )
    cards = {side: clf.card for side, clf in classifiers.items()}
    view = KioskView(SIZE, cards)
    ok = SourceStatus(SourceState.OK)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = frames()
    screens: dict[str, dict[str, Any]] = {}
    t = 0.0
    for name, image in shots.items():
        res, t = _visit(pipeline, image, t)
        logger.info(
            "%s: left logit %.2f (%s), right logit %.2f (%s), rarity %s",
            name,
            res.predictions["left"].logit,
            res.found("left"),
            res.predictions["right"].logit,
            res.found("right"),
            res.rarity,
        )
        found = sum(res.found(side) for side in classifiers)
        wanted = {"found_both": 2, "found_one": 1, "missed_both": 0}[name]
        if found != wanted or not res.present:
            raise RuntimeError(
                f"framing {name} {FRAMINGS[name]}: {found} model(s) find the face with these "
                f"models, not {wanted}; pick another framing in FRAMINGS"
            )
        maps = None
        if res.crop is not None and res.present:
            heat = {
                side: occlusion_map(c.occluded_logits, res.crop) for side, c in classifiers.items()
            }
            maps = Heatmaps(res.frame_index, res.t_capture, heat, res.crop)
        screens[name] = {"frame": image, "result": res, "status": ok, "heatmaps": maps}
    room = shots["found_both"]
    screens["attract"] = {"frame": room, "result": None, "status": ok, "attract": True}
    screens["camera_unavailable"] = {
        "frame": None,
        "result": None,
        "status": SourceStatus(SourceState.UNAVAILABLE, "camera unavailable, retrying in 4 s"),
    }
    screens["paused"] = {"frame": room, "result": None, "status": ok, "paused": True}
    written = []
    texts: list[str] = []
    for lang in LANGS:
        view.language = lang
        for name, kwargs in screens.items():
            path = out_dir / f"{name}-{lang}.png"
            render_to_png(view, path, **{"attract": False, **kwargs})
            written.append(path)
            texts.append(f"## {path.name}")
            # Top to bottom, left to right: the order a visitor reads them in.
            for d in sorted(view.drawn(), key=lambda d: (d.rect.y, d.rect.x)):
                texts.append(f"{d.layer} {d.size}px: {d.text}")
            texts.append("")
    # Every text of every screenshot, as drawn (one line each, after wrapping): what a
    # translator reviews, and what a test compares exactly, where pixels differ by machine.
    (out_dir / TEXTS_FILE).write_text("\n".join(texts), encoding="utf-8")
    print(f"{len(written)} screenshots and {TEXTS_FILE} written to {out_dir}")
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SCREENSHOTS_DIR)
