"""Where each model looks: occlusion sensitivity on the live crop, for the screen only.

A grey square slides over the 64x64 crop (16x16 pixels, stride 12: 5x5 = 25 positions, edge to
edge); at each position the model's face logit is measured again through its own int8 model.
How far the logit moves when a part of the picture is covered is how much the model's answer
rests on that part: for a face it finds, covering the eyes lowers the score; for a face it
misses, covering what misleads it raises the score. Both count (the absolute change), so a
missed face has a map too.
The two models often rest on different parts, which is what shows a visitor why they disagree.
The bundles clip the logit at +-8: a face judged with full certainty either way moves little,
and its map stays faint.

The bundles' int8 graphs have a fixed batch of 1 (their Reshape), so the 25 occlusions run one
after another, through a second interpreter per model (an interpreter is not thread-safe, and
the pipeline thread owns the first): about 4 ms per model on one core here, so each update a
second costs about 1 % of a core (`bias-mirror bench` measures it). Stride 8 (7x7 = 49
positions) drew a finer map at twice the cost: 6 updates a second took 12 points of a core,
more than the rest of the kiosk together; a 16-pixel patch still covers about an eye, and the
overlay is smoothed over the face anyway.

Privacy: the crop and the maps live in memory for the next screen only; nothing is stored or
sent (the stats never see them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from installation.types import FrameResult, ImageU8

logger = logging.getLogger(__name__)

PATCH = 16  # pixels of the 64x64 crop covered at a time: about an eye, or the mouth
STRIDE = 12  # 0, 12, 24, 36, 48: the last patch ends at the crop's edge
GRID = len(range(0, 64 - PATCH + 1, STRIDE))  # positions per side of a 64x64 crop: 5
FULL_SCALE = 3.0  # logits: a change this large shows as full heat (small ones stay faint)
DEFAULT_RATE_HZ = 6.0

LogitFn = Callable[[ImageU8], float]


def occlusion_map(
    logit: LogitFn, crop: ImageU8, patch: int = PATCH, stride: int = STRIDE
) -> np.ndarray:
    """[n, n] float32 >= 0: how far the face logit moves when each patch of `crop` is covered.

    crop: uint8 [64, 64, 3]. Covered with the crop's own mean colour, not black: a black square
    is a strong pattern of its own, the mean colour only removes what was there."""
    size = crop.shape[0]
    if crop.ndim != 3 or crop.shape[1] != size or patch > size or stride < 1:
        raise ValueError(f"occlusion_map needs a square crop and patch <= side, got {crop.shape}")
    base = logit(crop)
    fill = crop.reshape(-1, crop.shape[2]).mean(axis=0).round().astype(np.uint8)
    starts = range(0, size - patch + 1, stride)
    out = np.zeros((len(starts), len(starts)), np.float32)
    work = crop.copy()
    for i, y in enumerate(starts):
        for j, x in enumerate(starts):
            work[y : y + patch, x : x + patch] = fill
            out[i, j] = abs(base - logit(work))
            work[y : y + patch, x : x + patch] = crop[y : y + patch, x : x + patch]
    return out


def heat_image(heat: np.ndarray, size: int) -> np.ndarray:
    """[n, n] logit changes -> [size, size] float32 in [0, 1], smooth, FULL_SCALE = 1."""
    import cv2

    scaled = np.clip(heat / FULL_SCALE, 0.0, 1.0).astype(np.float32)
    return np.clip(cv2.resize(scaled, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Heatmaps:
    frame_index: int  # the frame whose crop they were measured on
    t_capture: float  # its capture time (monotonic)
    maps: dict[str, np.ndarray]  # side -> [GRID, GRID] logit changes
    crop: ImageU8  # the crop they belong to, drawn under them; never stored


class HeatmapWorker:
    """Measures both maps for the latest present visitor's crop, `rate_hz` times a second.

    `models`: side -> the logit of a crop through that model's own (second) interpreter.
    `latest_result`: the pipeline's newest result. Waits on the kiosk's one stop event."""

    def __init__(
        self,
        models: dict[str, LogitFn],
        latest_result: Callable[[], FrameResult | None],
        stop: threading.Event,
        rate_hz: float = DEFAULT_RATE_HZ,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"heatmap rate must be > 0, got {rate_hz}; fix display.heatmap_hz")
        self._models = models
        self._latest_result = latest_result
        self._stop = stop
        self._period = 1.0 / rate_hz
        self._lock = threading.Lock()
        self._maps: Heatmaps | None = None
        self.updates = 0
        self._thread = threading.Thread(target=self._run, name="heatmaps", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def latest(self) -> Heatmaps | None:
        with self._lock:
            return self._maps

    def step(self) -> Heatmaps | None:
        """One update: maps for the newest crop of a present visitor (None: nothing to do)."""
        result = self._latest_result()
        if result is None or result.crop is None or not result.present:
            if result is not None and not result.present:
                with self._lock:
                    self._maps = None  # the visitor left: their maps go with them
            return None
        current = self.latest()
        if current is not None and current.frame_index == result.frame_index:
            return current
        maps = {side: occlusion_map(fn, result.crop) for side, fn in self._models.items()}
        hm = Heatmaps(result.frame_index, result.t_capture, maps, result.crop)
        with self._lock:
            self._maps = hm
            self.updates += 1
        return hm

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a broken map must not take the exhibit down; log and go on
                logger.exception("heatmap update failed")
            next_t = max(next_t + self._period, time.monotonic())
            if self._stop.wait(max(0.0, next_t - time.monotonic())):
                break
