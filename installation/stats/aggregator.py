"""Anonymous running statistics of the kiosk: counters, sums and fixed latency histograms.

Producers (any thread): `on_result` per judged frame (pipeline thread, ~2 us), `on_render` per
drawn frame, `on_source_status`, `count_error`, `set_backend`. None of them keeps a frame, crop,
latent or per-frame value: only sums for the current interval.

Consumer: `snapshot()` closes the interval and returns it as a `StatsPayload`. Privacy rule
(k-anonymity): per-model rates and means appear only when the interval holds at least
`k_min_sessions` visitor sessions, the mean dwell only when that many sessions ended. The
visitor counts (sessions, sessions_ended, present_frames) are held back while fewer than k
sessions have gathered and then released together, in the interval that completes k (until
then they read 0), so no interval's counts describe fewer than k visitors; `cumulative.sessions`
adds released counts only, so differencing it reveals nothing held back either (fewer than k
sessions still held at a stop are never sent). The cumulative block sums the rates the same way
(`released` only adds intervals that were released).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from installation.stats.histogram import LatencyHistogram
from installation.stats.payload import (
    Amount,
    Count,
    Cumulative,
    Fps,
    Interval,
    ModelRates,
    Percentiles,
    PerSide,
    Released,
    StatsPayload,
    iso_second,
)
from installation.stats.sessions import SessionTracker
from installation.types import SIDES, FrameResult, SourceStatus


class _Interval:
    """Sums of one interval. Per side lists are indexed 0 = left, 1 = right."""

    __slots__ = (
        "disagree",
        "errors",
        "faces",
        "frames",
        "latency",
        "missed",
        "ms",
        "one_sided",
        "p_sum",
        "present",
        "render",
        "render_frames",
    )

    def __init__(self) -> None:
        self.frames = 0
        self.present = 0  # frames with a visitor in the box (occupancy, or either model's face)
        self.missed = 0  # of those, frames where neither model finds the face
        self.faces = [0, 0]
        self.p_sum = [0.0, 0.0]  # of p_face over present frames
        self.disagree = 0
        self.ms = (LatencyHistogram(), LatencyHistogram())
        self.render_frames = 0
        self.render = LatencyHistogram()
        self.latency = LatencyHistogram()
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.one_sided = False  # a side judged nothing: its rates and the comparison mean nothing


class StatsAggregator:
    def __init__(
        self,
        *,
        k_min_sessions: int,
        presence_min_s: float,
        presence_gap_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if k_min_sessions < 1:
            raise ValueError(
                f"k_min_sessions must be >= 1, got {k_min_sessions}; fix privacy.k_min_sessions"
            )
        self.k_min = k_min_sessions
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()  # guards the current interval and the session tracker
        self._snap_lock = threading.Lock()  # one snapshot at a time (timer thread vs. stop())
        self._sessions = SessionTracker(presence_min_s, presence_gap_s)
        self._cur = _Interval()
        self._start_mono = clock()
        self._start_wall = wall()
        self._interval_start_mono = self._start_mono
        self._interval_start_wall = self._start_wall
        self._backend = "unknown"
        self._source: SourceStatus | None = None
        self._dropped_seen = 0  # last cumulative drop count reported by the source
        self._seq = 0
        self._tot = _Totals()
        self._released = _ReleasedSums()
        self._held = _Held()  # visitor counts not yet released: fewer than k sessions so far

    # -- producers (any thread) ----------------------------------------------------------

    def on_result(self, r: FrameResult) -> None:
        preds = [r.predictions.get(s) for s in SIDES]
        # The stable verdicts (what the screen shows); presence never only from the models.
        lf, rf = r.found("left"), r.found("right")
        present = r.present
        with self._lock:
            cur = self._cur
            cur.frames += 1
            # A side whose bundle did not load judges nothing: no latency, no rates.
            cur.one_sided |= None in preds
            for i, pred in enumerate(preds):
                if pred is not None:
                    cur.ms[i].add(pred.ms)
                    if present:
                        cur.p_sum[i] += pred.p_face
            if present:
                cur.present += 1
                cur.missed += not (lf or rf)
                cur.faces[0] += lf
                cur.faces[1] += rf
                cur.disagree += lf != rf
            self._sessions.update(r.t_capture, present, lf or rf)

    def on_render(self, render_ms: float, latency_ms: float | None) -> None:
        with self._lock:
            self._cur.render_frames += 1
            self._cur.render.add(render_ms)
            if latency_ms is not None:
                self._cur.latency.add(latency_ms)

    def on_source_status(self, status: SourceStatus) -> None:
        with self._lock:
            self._source = status

    def count_error(self, kind: str) -> None:
        with self._lock:
            self._cur.errors[kind] += 1

    def set_backend(self, name: str) -> None:
        self._backend = name

    # -- consumer (the publisher's timer thread) -----------------------------------------

    def snapshot(
        self,
        *,
        cpu_temp_c: float | None = None,
        rss_mb: float | None = None,
        queue_dropped: int = 0,
    ) -> StatsPayload:
        """Close the current interval and return its aggregate. The keyword arguments are the
        device's figures, which the publisher adds (the aggregator does not see them)."""
        with self._snap_lock:
            return self._snapshot(cpu_temp_c, rss_mb, queue_dropped)

    def _snapshot(
        self, cpu_temp_c: float | None, rss_mb: float | None, queue_dropped: int
    ) -> StatsPayload:
        now_mono, now_wall = self._clock(), self._wall()
        with self._lock:
            cur, self._cur = self._cur, _Interval()
            self._sessions.expire(now_mono)  # nobody seen for a while (paused, camera lost)
            started, ended, dwell, missed = self._sessions.take()
            start_wall = self._interval_start_wall
            seconds = max(now_mono - self._interval_start_mono, 1e-9)
            self._interval_start_mono, self._interval_start_wall = now_mono, now_wall
            source = self._source
        self._seq += 1
        # The source's drop counter is cumulative per opened source; a reopen restarts it.
        reported = source.dropped_frames if source else 0
        dropped = reported - self._dropped_seen if reported >= self._dropped_seen else reported
        self._dropped_seen = reported
        counts = self._held.add(started, ended, cur.present, self.k_min)
        self._tot.add(cur, counts.sessions, dropped)
        # k-anonymity: with fewer sessions a rate could describe one visitor.
        rates = started >= self.k_min and cur.present > 0 and not cur.one_sided
        dwell_released = ended >= self.k_min
        if rates:
            self._released.add_rates(cur)
        if dwell_released:
            self._released.add_sessions(ended, dwell, missed)
        return StatsPayload(
            seq=self._seq,
            interval=Interval(
                start=iso_second(start_wall), end=iso_second(now_wall), seconds=round(seconds, 1)
            ),
            k_min_sessions=self.k_min,
            # Released visitor counts (see the module doc): 0 or those of at least k sessions.
            sessions=counts.sessions,
            sessions_ended=counts.sessions_ended,
            frames=cur.frames,
            present_frames=counts.present_frames,
            fps=Fps(
                camera=round(source.fps, 1) if source else None,
                process=round(cur.frames / seconds, 1),
                render=round(cur.render_frames / seconds, 1),
            ),
            dropped_frames=dropped,
            inference_ms=PerSide[Percentiles](
                left=_percentiles(cur.ms[0]), right=_percentiles(cur.ms[1])
            ),
            # Timing follows presence (panels, heatmaps): released with the rates only.
            render_ms_p95=cur.render.percentile(95) if rates else None,
            latency_ms_p95=cur.latency.percentile(95) if rates else None,
            backend=self._backend,
            errors=dict(cur.errors),
            uptime_s=round(now_mono - self._start_mono),
            cpu_temp_c=cpu_temp_c,
            rss_mb=rss_mb,
            queue_dropped=queue_dropped,
            models=_model_rates(cur) if rates else None,
            disagreement_rate=round(cur.disagree / cur.present, 4) if rates else None,
            missed_by_both_rate=round(cur.missed / cur.present, 4) if rates else None,
            mean_dwell_s=round(dwell / ended, 1) if dwell_released else None,
            # Visitors whom neither model found: counted like every visitor, shown like dwell.
            sessions_missed_by_both=missed if dwell_released else None,
            cumulative=Cumulative(
                since=iso_second(self._start_wall),
                frames=self._tot.frames,
                sessions=self._tot.sessions,
                dropped_frames=self._tot.dropped_frames,
                errors=dict(self._tot.errors),
                released=self._released.payload(),
            ),
        )


@dataclass
class _Held:
    """Visitor counts waiting until at least k sessions have gathered."""

    sessions: int = 0
    sessions_ended: int = 0
    present_frames: int = 0

    def add(self, started: int, ended: int, present: int, k: int) -> _Held:
        """Add an interval's counts; return what to release now (all held, or zeros)."""
        self.sessions += started
        self.sessions_ended += ended
        self.present_frames += present
        if self.sessions < k:
            return _Held()
        out = _Held(self.sessions, self.sessions_ended, self.present_frames)
        self.sessions = self.sessions_ended = self.present_frames = 0
        return out


@dataclass
class _Totals:
    """Counters since start, released or not (counts only, nothing that describes a visitor)."""

    frames: int = 0
    sessions: int = 0
    dropped_frames: int = 0
    errors: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, cur: _Interval, started: int, dropped: int) -> None:
        self.frames += cur.frames
        self.sessions += started
        self.dropped_frames += dropped
        for kind, n in cur.errors.items():
            self.errors[kind] += n


@dataclass
class _ReleasedSums:
    """Sums over released intervals only, so differencing two cumulative blocks reveals
    nothing that was withheld. Per-side lists are indexed 0 = left, 1 = right."""

    intervals: int = 0
    present_frames: int = 0
    faces: list[int] = field(default_factory=lambda: [0, 0])
    p_face_sum: list[float] = field(default_factory=lambda: [0.0, 0.0])
    disagreements: int = 0
    missed_frames: int = 0
    sessions_ended: int = 0
    sessions_missed_by_both: int = 0
    dwell_s: float = 0.0

    def add_rates(self, cur: _Interval) -> None:
        self.intervals += 1
        self.present_frames += cur.present
        self.disagreements += cur.disagree
        self.missed_frames += cur.missed
        for i in range(len(SIDES)):
            self.faces[i] += cur.faces[i]
            self.p_face_sum[i] += cur.p_sum[i]

    def add_sessions(self, ended: int, dwell: float, missed: int) -> None:
        self.sessions_ended += ended
        self.dwell_s += dwell
        self.sessions_missed_by_both += missed

    def payload(self) -> Released:
        return Released(
            intervals=self.intervals,
            present_frames=self.present_frames,
            faces=PerSide[Count](left=self.faces[0], right=self.faces[1]),
            p_face_sum=PerSide[Amount](
                left=round(self.p_face_sum[0], 3), right=round(self.p_face_sum[1], 3)
            ),
            disagreements=self.disagreements,
            missed_frames=self.missed_frames,
            sessions_ended=self.sessions_ended,
            sessions_missed_by_both=self.sessions_missed_by_both,
            dwell_s=round(self.dwell_s, 1),
        )


def _percentiles(h: LatencyHistogram) -> Percentiles:
    return Percentiles(p50=h.percentile(50), p95=h.percentile(95))


def _model_rates(cur: _Interval) -> PerSide[ModelRates]:
    left, right = (
        ModelRates(
            face_rate=round(cur.faces[i] / cur.present, 4),
            mean_p_face=round(cur.p_sum[i] / cur.present, 4),
        )
        for i in range(len(SIDES))
    )
    return PerSide[ModelRates](left=left, right=right)
