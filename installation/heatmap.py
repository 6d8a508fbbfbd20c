"""Where each model looks: occlusion sensitivity on the live crop, for the screen only.

A grey square covers each of the 16 squares of the 64x64 crop in turn (16x16 pixels, a 4x4
grid that tiles the crop); each time the model's face logit is measured again through its own
int8 model.
How far the logit moves when a part of the picture is covered is how much the model's answer
rests on that part: for a face it finds, covering the eyes lowers the score; for a face it
misses, covering what misleads it raises the score. Both count (the absolute change), so a
missed face has a map too.
The two models often rest on different parts, which is what shows a visitor why they disagree.
The bundles clip the logit at +-8: a face judged with full certainty either way moves little,
and its map stays faint.

The crop and its 16 covered copies run as one batch of 17 through a second interpreter per
model (an interpreter is not thread-safe, and the pipeline thread owns the first). The bundles'
graphs have a fixed batch of 1 (their Reshape), so `installation.inference.batch` loads a
batch-agnostic copy of each model in memory and first checks that it reads the very logits one
crop at a time does; where it cannot, the occlusions run one after another, the crop quantized
once and each occlusion rewriting only its square in the input (`Int8Reader.occluded_logits`).
The invocations are the cost (`bias-mirror bench` measures an update): stride 8 (7x7 = 49
positions) took 12 points of a core at 6 updates a second, more than the rest of the kiosk
together; stride 12 (5x5 = 25, overlapping) about 4; the 4x4 tiling a third less again; the
batch about a fifth less again (the heatmaps' share of the kiosk 3.4-3.9 against 4.5-5.0 % of a
core in 7 paired runs on a 2-core VM). A 16-pixel square still covers about an eye, and the
overlay is smoothed over the face (cubic), so the coarser grid changes where the heat sits
little (looked at on the astronaut's face at three framings through both shipped models).

Privacy: the crop and the maps live in memory for the next screen only; nothing is stored or
sent (the stats never see them).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from installation.faults import FaultLog
from installation.types import FrameResult, ImageU8

logger = logging.getLogger(__name__)

PATCH = 16  # pixels of the 64x64 crop covered at a time: about an eye, or the mouth
STRIDE = 16  # 0, 16, 32, 48: the squares tile the crop, the last one ends at its edge
GRID = len(range(0, 64 - PATCH + 1, STRIDE))  # positions per side of a 64x64 crop: 4
FULL_SCALE = 3.0  # logits: a change this large shows as full heat (small ones stay faint)
DEFAULT_RATE_HZ = 6.0
COST_SAMPLES = 30  # updates timed (5 s at the default rate) before the log says what they cost

LogitFn = Callable[[ImageU8], float]
Corner = tuple[int, int]  # (y, x) of a covered square's top-left pixel
# (crop, fill colour [3], corners, patch side) -> (logit of the crop, [len(corners)] logits
# with each square covered): `Classifier.occluded_logits`, or `one_by_one` of a logit function.
OccludedLogitsFn = Callable[[ImageU8, np.ndarray, Sequence[Corner], int], tuple[float, np.ndarray]]


def one_by_one(logit: LogitFn) -> OccludedLogitsFn:
    """The occlusions through a plain logit function, one covered copy of the crop at a time
    (any model; the int8 bundles' own `occluded_logits` gives the same numbers faster)."""

    def occluded(
        crop: ImageU8, fill: np.ndarray, corners: Sequence[Corner], patch: int
    ) -> tuple[float, np.ndarray]:
        out = np.empty(len(corners), np.float32)
        work = crop.copy()
        for k, (y, x) in enumerate(corners):
            work[y : y + patch, x : x + patch] = fill
            out[k] = logit(work)
            work[y : y + patch, x : x + patch] = crop[y : y + patch, x : x + patch]
        return logit(crop), out

    return occluded


def occlusion_map(
    model: OccludedLogitsFn, crop: ImageU8, patch: int = PATCH, stride: int = STRIDE
) -> np.ndarray:
    """[n, n] float32 >= 0: how far the face logit moves when each patch of `crop` is covered.

    crop: uint8 [64, 64, 3]. Covered with the crop's own mean colour, not black: a black square
    is a strong pattern of its own, the mean colour only removes what was there."""
    size = crop.shape[0]
    if crop.ndim != 3 or crop.shape[1] != size or patch > size or stride < 1:
        raise ValueError(f"occlusion_map needs a square crop and patch <= side, got {crop.shape}")
    fill = crop.reshape(-1, crop.shape[2]).mean(axis=0).round().astype(np.uint8)
    starts = range(0, size - patch + 1, stride)
    corners = [(y, x) for y in starts for x in starts]  # row by row: [n * n]
    base, covered = model(crop, fill, corners, patch)
    return np.abs(base - covered).astype(np.float32).reshape(len(starts), len(starts))


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

    `models`: side -> the occlusions of a crop through that model's own (second) interpreter.
    `latest_result`: the pipeline's newest result. Waits on the kiosk's one stop event."""

    def __init__(
        self,
        models: dict[str, OccludedLogitsFn],
        latest_result: Callable[[], FrameResult | None],
        stop: threading.Event,
        rate_hz: float = DEFAULT_RATE_HZ,
        count_error: Callable[[str], None] | None = None,
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
        self._costs: list[float] = []  # CPU seconds of the first COST_SAMPLES updates
        self.cost_ms: float | None = None  # their median, once measured
        self.faults = FaultLog(logger, "heatmap", count_error)
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
        cpu0 = time.thread_time()
        maps = {side: occlusion_map(fn, result.crop) for side, fn in self._models.items()}
        self._note_cost(time.thread_time() - cpu0)
        hm = Heatmaps(result.frame_index, result.t_capture, maps, result.crop)
        with self._lock:
            self._maps = hm
            self.updates += 1
        return hm

    def _note_cost(self, cpu_s: float) -> None:
        """After the first COST_SAMPLES updates, say once what the maps cost on this CPU: the
        same models cost four times more on some x86 CPUs than others, and a technician
        choosing `display.heatmaps` should not need the bench to know."""
        if self.cost_ms is not None:
            return
        self._costs.append(cpu_s)
        if len(self._costs) < COST_SAMPLES:
            return
        ms = self.cost_ms = 1e3 * statistics.median(self._costs)
        logger.info(
            "heatmaps: one update takes %.1f ms of CPU here (median of %d), about %.0f %% of a "
            "core while a visitor stands in the box at %.1f updates a second; "
            "display.heatmaps: false saves it",
            ms,
            COST_SAMPLES,
            ms / 10 / self._period,
            1.0 / self._period,
        )

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a broken map must not take the exhibit down; log and go on
                self.faults.failed("heatmap update failed")
            next_t = max(next_t + self._period, time.monotonic())
            if self._stop.wait(max(0.0, next_t - time.monotonic())):
                break
