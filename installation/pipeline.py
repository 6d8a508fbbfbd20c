"""The judging pipeline: frame -> region -> crop -> both classifiers -> `FrameResult`.

It knows no Pygame and no MQTT. The display, `replay` and the stats aggregator subscribe to its
results. `Pipeline.process` is synchronous (replay, bench); `PipelineThread` runs it on the newest
frame of a capture thread for the kiosk.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from installation.faults import FaultLog
from installation.inference.concurrent import THREAD_PREFIX, JudgeThread, both_at_once
from installation.presence import OccupancyDetector
from installation.region import RegionFinder, crop_for_model
from installation.types import SIDES, Frame, FrameResult, Prediction, Verdict
from installation.verdicts import DEFAULT_MARGIN, DEFAULT_WINDOW, VerdictTracker

logger = logging.getLogger(__name__)

NEW_VISIT_GAP_S = 1.0  # nobody present for longer than this ends a visit (its verdicts restart)
RARITY_WINDOW = 9  # judged frames the rarity meter is the median of: 0.9 s at 10 a second
Subscriber = Callable[[FrameResult], None]


class Judge(Protocol):
    """What the pipeline needs of a classifier (installation.inference.Classifier)."""

    @property
    def threshold_logit(self) -> float: ...

    def predict(self, crop_rgb: np.ndarray) -> Prediction: ...


class RarityScorer(Protocol):
    def percentile(self, latent: np.ndarray) -> float: ...


class Pipeline:
    """One crop, two verdicts, and whether anyone is there. Not thread-safe: one thread calls
    `process`.

    Per frame: the region, the crop both models judge, each model's raw prediction, each model's
    stable verdict (`VerdictTracker`), occupancy of the guide box (`OccupancyDetector`, never
    from the models) and, for a present visitor whose face the right-hand model finds, rarity.
    """

    def __init__(
        self,
        finder: RegionFinder,
        classifiers: Mapping[str, Judge],
        rarity: RarityScorer | None = None,
        keep_frame: bool = False,
        *,
        presence: OccupancyDetector | None = None,
        verdict_window: int = DEFAULT_WINDOW,
        verdict_margin: float = DEFAULT_MARGIN,
        parallel: bool = False,
    ) -> None:
        """`parallel`: judge the second side on a thread of its own while the first is judged
        on the calling one (installation.inference.concurrent; the runtime decides with
        `judge_at_once`). The verdicts are the same either way."""
        # Usually both sides; the kiosk runs on one when the other's bundle did not load.
        self._sides = tuple(s for s in SIDES if s in classifiers)
        if not self._sides:
            raise ValueError(f"pipeline needs a classifier for at least one of {SIDES}")
        self._finder = finder
        self._classifiers = dict(classifiers)
        self._rarity = rarity
        self._presence = presence if presence is not None else OccupancyDetector()
        self._last_present = -math.inf
        self._rarities: deque[float] = deque(maxlen=RARITY_WINDOW)
        self._trackers = {
            s: VerdictTracker(c.threshold_logit, verdict_window, verdict_margin)
            for s, c in self._classifiers.items()
        }
        # [first side on the calling thread, the other on its own]; None: one after the other.
        self._second: JudgeThread | None = None
        if parallel and len(self._sides) == 2:
            second = self._sides[1]
            self._second = JudgeThread(self._classifiers[second], THREAD_PREFIX + second)
            # A pipeline dropped without close() (a test, a bench run) does not leave its
            # thread waiting for ever.
            weakref.finalize(self, self._second.stop)
            # Now, not at the first frame: a long run (`bench --soak`) counts its threads from
            # before the first frame, and this one is not growth.
            self._second.start()
        # The kiosk keeps a reference to the frame for the live mirror; replay does not need it.
        self._keep_frame = keep_frame
        self._subscribers: list[Subscriber] = []
        # A consumer that fails on every result (the stats, say) is one line a minute.
        self.subscriber_faults = FaultLog(logger, "subscriber")

    @property
    def parallel(self) -> bool:
        """Whether the two sides are judged at once."""
        return self._second is not None

    def close(self) -> None:
        """End the second side's thread, if any (a later `process` starts it again)."""
        if self._second is not None:
            self._second.close()

    def judge(self, crop: np.ndarray) -> dict[str, Prediction]:
        """side -> each model's raw prediction of `crop` (uint8 RGB [64, 64, 3]): at once when
        `parallel`, else one after the other."""
        if self._second is None:
            return {side: self._classifiers[side].predict(crop) for side in self._sides}
        pair = both_at_once(self._classifiers[self._sides[0]], self._second, crop)
        return dict(zip(self._sides, pair, strict=True))

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        self._subscribers.remove(callback)

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        region = self._finder.find(frame.image)
        t1 = time.perf_counter()
        crop = crop_for_model(frame.image, region)  # [64, 64, 3] uint8 RGB, the same for both
        t2 = time.perf_counter()
        stage_ms = {"region": (t1 - t0) * 1e3, "crop": (t2 - t1) * 1e3}
        h, w = frame.image.shape[:2]
        occupied = self._presence.update(frame.image, self._finder.guide_box(w, h), frame.t)
        # A face the Haar detector re-centred on confirms a visitor as well.
        occupied = occupied or region.source == "detector"
        if self._presence.vacated:
            # The detector saw them go: the visit is over, whatever a model sees in the wall.
            self._last_present = -math.inf
        recent = 0 <= frame.t - self._last_present <= NEW_VISIT_GAP_S
        if occupied and not recent:
            # A new visit: its verdicts start fresh at the threshold, then hold (hysteresis).
            for tracker in self._trackers.values():
                tracker.reset()
            self._rarities.clear()
        t3 = time.perf_counter()
        stage_ms["presence"] = (t3 - t2) * 1e3
        predictions = self.judge(crop)
        verdicts: dict[str, Verdict] = {}
        for side in self._sides:
            verdicts[side] = self._trackers[side].update(predictions[side].logit)
            stage_ms[side] = predictions[side].ms
        stage_ms["models"] = (time.perf_counter() - t3) * 1e3  # both, as judged (at once or not)
        # Only occupancy starts a visit; a model's face carries it on (a still visitor fades into
        # the background) until the detector sees the visitor leave.
        found = any(v.face for v in verdicts.values())
        in_visit = occupied or (found and recent)
        if in_visit:
            self._last_present = frame.t
        rarity = None
        right = predictions.get("right")
        latent = right.latent if right is not None else None
        if self._rarity is not None and latent is not None and in_visit and verdicts["right"].face:
            # Rarity only for a visitor whose face the right-hand model finds (a coffee cup it
            # calls a face gets none: nobody is in the box); computed and shown, never kept.
            # The median over the visit's last frames: one face's percentile jumps by several
            # points from frame to frame with noise and pose; the meter should not.
            self._rarities.append(float(self._rarity.percentile(latent)))
            rarity = statistics.median(self._rarities)
        stage_ms["total"] = (time.perf_counter() - t0) * 1e3
        result = FrameResult(
            frame_index=frame.index,
            t_capture=frame.t,
            t_done=time.monotonic(),
            region=region,
            predictions=predictions,
            rarity=rarity,
            stage_ms=stage_ms,
            frame=frame.image if self._keep_frame else None,
            crop=crop if self._keep_frame else None,
            verdicts=verdicts,
            occupied=occupied,
            in_visit=in_visit,
        )
        for callback in self._subscribers:
            try:
                callback(result)
            except Exception:  # a faulty consumer must not stop the exhibit
                self.subscriber_faults.failed("pipeline subscriber %r failed", callback)
        return result


class FrameFeed(Protocol):
    """The capture side as the pipeline thread sees it (LatestFrameGrabber)."""

    def wait_next(self, after_index: int, timeout: float) -> Frame | None: ...


class JudgeSchedule:
    """Which frames to judge for at most `judge_fps` a second, by capture time.

    Each judged frame books the next slot one period later. A frame may take its slot up to a
    quarter period early, so a camera's jitter does not skip two frames where one is meant (30 fps
    camera, 15 fps judging: every second frame, not every third); slots advance a full period
    each time, so over any stretch the rate stays at or below `judge_fps` (a minimum gap of 0.75
    periods alone judged a 60 fps camera 12 times a second for judge_fps 10). After a pause or a
    stall it starts afresh rather than judging a burst to catch up.
    """

    def __init__(self, judge_fps: float | None) -> None:
        if judge_fps is not None and judge_fps <= 0:
            raise ValueError(f"judge_fps must be > 0, got {judge_fps}; fix models.judge_fps")
        self._period = 0.0 if judge_fps is None else 1.0 / judge_fps
        self._due = -math.inf  # capture time of the next slot

    def take(self, t: float) -> bool:
        """True when the frame captured at `t` is to be judged (and books the next slot)."""
        if self._period == 0.0:
            return True
        early = 0.25 * self._period
        if t < self._due - early:
            return False
        # The next slot is a period after this one, or after this frame when it came late (after
        # a pause, a stall, a source reopened): never sooner, so lateness never turns into a burst.
        self._due = max(self._due + self._period, t + self._period)
        return True


class PipelineThread(threading.Thread):
    """Judges the newest frame whenever one arrives, at most `judge_fps` a second; older frames
    are dropped upstream. Every frame it takes, judged or not, is handed to the display (`shown`,
    and `news` set), so the mirror keeps the camera's rate while the models judge fewer frames
    (Frigate's detect fps: the camera rate is for people, the judging rate for the CPU)."""

    def __init__(
        self,
        pipeline: Pipeline,
        feed: FrameFeed,
        stop_event: threading.Event,
        *,
        paused: threading.Event | None = None,
        news: threading.Event | None = None,
        judge_fps: float | None = None,
        count_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name="pipeline", daemon=True)
        self.faults = FaultLog(logger, "pipeline", count_error)
        self._schedule = JudgeSchedule(judge_fps)
        self._news = news  # set once each new frame or result is readable (the display wakes)
        self._pipeline = pipeline
        self._feed = feed
        self._stop_event = stop_event
        self._paused = paused or threading.Event()
        self._lock = threading.Lock()
        self._latest: FrameResult | None = None
        self._shown: Frame | None = None
        self.processed = 0
        self.passed = 0  # frames handed to the display without being judged

    @property
    def errors(self) -> int:
        """Frames the models failed on (each counted for staff by `faults`)."""
        return self.faults.total

    def latest(self) -> FrameResult | None:
        with self._lock:
            return self._latest

    def shown(self) -> Frame | None:
        """The newest frame this thread took, judged or not: what the mirror shows."""
        with self._lock:
            return self._shown

    def clear(self) -> None:
        with self._lock:
            self._latest = None

    def _hand_over(self, frame: Frame, result: FrameResult | None) -> None:
        """Make `frame` (and its result, when it was judged) readable, then wake the display."""
        with self._lock:
            if result is not None:
                self._latest = result
            self._shown = frame
        if self._news is not None:
            self._news.set()

    def run(self) -> None:
        last = -1
        while not self._stop_event.is_set():
            frame = self._feed.wait_next(last, timeout=0.1)
            if frame is None:
                continue
            last = frame.index
            if self._paused.is_set():
                continue
            if not self._schedule.take(frame.t):
                # Not judged: shown with the last verdicts (a frame period old at most).
                self._hand_over(frame, None)
                self.passed += 1
                continue
            try:
                result = self._pipeline.process(frame)
            except Exception:
                # One bad frame (e.g. a corrupt decode) must not end the exhibit; count and go on.
                self.faults.failed("pipeline failed on frame %d", frame.index)
                if self._stop_event.wait(0.05):
                    break
                continue
            self._hand_over(frame, result)
            self.processed += 1
        logger.info(
            "pipeline stopped after %d frames judged, %d shown unjudged (%d errors)",
            self.processed,
            self.passed,
            self.errors,
        )
