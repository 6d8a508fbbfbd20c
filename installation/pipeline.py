"""The judging pipeline: frame -> region -> crop -> both classifiers -> `FrameResult`.

It knows no Pygame and no MQTT. The display, `replay` and the stats aggregator subscribe to its
results. `Pipeline.process` is synchronous (replay, bench); `PipelineThread` runs it on the newest
frame of a capture thread for the kiosk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from installation.region import RegionFinder, crop_for_model
from installation.types import Frame, FrameResult, Prediction

logger = logging.getLogger(__name__)

SIDES = ("left", "right")
Subscriber = Callable[[FrameResult], None]


class Judge(Protocol):
    """What the pipeline needs of a classifier (installation.inference.Classifier)."""

    def predict(self, crop_rgb: np.ndarray) -> Prediction: ...


class RarityScorer(Protocol):
    def percentile(self, latent: np.ndarray) -> float: ...


class Pipeline:
    """One crop, two verdicts. Not thread-safe: one thread calls `process`."""

    def __init__(
        self,
        finder: RegionFinder,
        classifiers: Mapping[str, Judge],
        rarity: RarityScorer | None = None,
        keep_frame: bool = False,
    ) -> None:
        missing = [s for s in SIDES if s not in classifiers]
        if missing:
            raise ValueError(f"pipeline needs a classifier for {missing}")
        self._finder = finder
        self._classifiers = dict(classifiers)
        self._rarity = rarity
        # The kiosk keeps a reference to the frame for the live mirror; replay does not need it.
        self._keep_frame = keep_frame
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        region = self._finder.find(frame.image)
        t1 = time.perf_counter()
        crop = crop_for_model(frame.image, region)  # [64, 64, 3] uint8 RGB, the same for both
        t2 = time.perf_counter()
        stage_ms = {"region": (t1 - t0) * 1e3, "crop": (t2 - t1) * 1e3}
        predictions: dict[str, Prediction] = {}
        for side in SIDES:
            pred = self._classifiers[side].predict(crop)
            predictions[side] = pred
            stage_ms[side] = pred.ms
        rarity = None
        latent = predictions["right"].latent
        if self._rarity is not None and latent is not None and predictions["right"].face:
            # Rarity is only meaningful for a face; it is computed and shown, never kept.
            rarity = float(self._rarity.percentile(latent))
        t3 = time.perf_counter()
        stage_ms["total"] = (t3 - t0) * 1e3
        result = FrameResult(
            frame_index=frame.index,
            t_capture=frame.t,
            t_done=time.monotonic(),
            region=region,
            predictions=predictions,
            rarity=rarity,
            stage_ms=stage_ms,
            frame=frame.image if self._keep_frame else None,
        )
        for callback in self._subscribers:
            try:
                callback(result)
            except Exception:  # a faulty consumer must not stop the exhibit
                logger.exception("pipeline subscriber %r failed", callback)
        return result


class FrameFeed(Protocol):
    """The capture side as the pipeline thread sees it (LatestFrameGrabber)."""

    def wait_next(self, after_index: int, timeout: float) -> Frame | None: ...


class PipelineThread(threading.Thread):
    """Judges the newest frame whenever one arrives; older frames are dropped upstream."""

    def __init__(
        self,
        pipeline: Pipeline,
        feed: FrameFeed,
        stop_event: threading.Event,
        paused: threading.Event | None = None,
    ) -> None:
        super().__init__(name="pipeline", daemon=True)
        self._pipeline = pipeline
        self._feed = feed
        self._stop_event = stop_event
        self._paused = paused or threading.Event()
        self._lock = threading.Lock()
        self._latest: FrameResult | None = None
        self.processed = 0
        self.errors = 0

    def latest(self) -> FrameResult | None:
        with self._lock:
            return self._latest

    def clear(self) -> None:
        with self._lock:
            self._latest = None

    def run(self) -> None:
        last = -1
        while not self._stop_event.is_set():
            frame = self._feed.wait_next(last, timeout=0.1)
            if frame is None:
                continue
            last = frame.index
            if self._paused.is_set():
                continue
            try:
                result = self._pipeline.process(frame)
            except Exception:
                # One bad frame (e.g. a corrupt decode) must not end the exhibit; count and go on.
                self.errors += 1
                logger.exception("pipeline failed on frame %d", frame.index)
                if self._stop_event.wait(0.05):
                    break
                continue
            with self._lock:
                self._latest = result
            self.processed += 1
        logger.info("pipeline stopped after %d frames (%d errors)", self.processed, self.errors)
