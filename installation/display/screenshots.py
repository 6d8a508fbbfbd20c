"""Screenshots of the kiosk for the README: the shipped models judging real frames.

    python -m installation.display.screenshots [OUT_DIR]     (default assets/screenshots)

Frames are built from scikit-image's bundled public-domain photos (the astronaut Eileen
Collins, a coffee cup), judged by the real pipeline on the shipped bundles, and drawn at
1280x720 under the dummy video driver. Needs the `[dev]` extra (scikit-image).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from installation.config import RegionConfig
from installation.display import KioskView, render_to_png
from installation.heatmap import Heatmaps, occlusion_map
from installation.inference import Classifier, load_classifier
from installation.paths import ASSETS_DIR, MODELS_DIR
from installation.pipeline import Pipeline
from installation.region import RegionFinder
from installation.types import Frame, SourceState, SourceStatus

logger = logging.getLogger(__name__)

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


def frames() -> dict[str, np.ndarray]:
    from skimage import data

    guide = RegionFinder(RegionConfig()).guide_box(640, 480)
    box = (guide.x, guide.y, guide.w)
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # [512, 512, 3]
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)  # [400, 600, 3]
    return {
        "face": _zoom(astronaut, (160, 70, 120), box),  # her face, tight like the training crops
        "cup": _zoom(coffee, (130, 60, 300), box),
    }


def _logit_fn(clf: Classifier) -> Callable[[np.ndarray], float]:
    def logit(crop: np.ndarray) -> float:
        return clf.predict(crop).logit

    return logit


def main(out_dir: Path) -> None:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    classifiers = {
        side: load_classifier(MODELS_DIR / name, accelerator="cpu")
        for side, name in (("left", "baseline"), ("right", "debiased"))
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
    t = 0.0
    for name, image in shots.items():
        # A visit as the kiosk sees one: 3 s of the room without the visitor (a heavy blur of
        # the picture stands in for it), so the occupancy detector learns it, then the visitor.
        room = np.asarray(cv2.GaussianBlur(image, (0, 0), 40), np.uint8)
        for i in range(30):
            pipeline.process(Frame(index=i, t=t, image=room))
            t += 0.1
        for i in range(30, 40):
            res = pipeline.process(Frame(index=i, t=t, image=image))
            t += 0.1
        t += 10.0  # the next shot is another visit
        maps = None
        if res.crop is not None and res.present:
            maps = Heatmaps(
                res.frame_index,
                res.t_capture,
                {
                    side: occlusion_map(_logit_fn(clf), res.crop)
                    for side, clf in classifiers.items()
                },
                res.crop,
                0.0,
            )
        logger.info(
            "%s: left p=%.2f, right p=%.2f, rarity %s",
            name,
            res.predictions["left"].p_face,
            res.predictions["right"].p_face,
            res.rarity,
        )
        if name == "face":
            render_to_png(
                view,
                out_dir / "kiosk-en.png",
                frame=image,
                result=res,
                status=ok,
                attract=False,
                heatmaps=maps,
            )
            render_to_png(
                view, out_dir / "attract-en.png", frame=image, result=None, status=ok, attract=True
            )
        else:
            view.language = "de"
            render_to_png(
                view,
                out_dir / "no-face-de.png",
                frame=image,
                result=res,
                status=ok,
                attract=False,
                heatmaps=maps,
            )
            view.language = "en"
    print(f"screenshots written to {out_dir}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS_DIR / "screenshots")
