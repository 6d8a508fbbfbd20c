"""Anonymous running statistics of the kiosk: counters, sums and fixed latency histograms.

`on_result` runs on the pipeline thread for every frame and must stay cheap; it keeps no frame,
crop, latent or per-frame value, only sums. `snapshot()` closes an interval and returns the
aggregate the stats publisher sends; rates and means appear only when the interval holds at least
`k_min_sessions` visitor sessions (k-anonymity), otherwise only counts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from installation.stats.sessions import SessionTracker
from installation.types import FrameResult, SourceStatus

SCHEMA = 1
SIDES = ("left", "right")
# Log-spaced latency bins, 0.01 ms .. 10 s: percentiles without keeping any samples.
_EDGES = np.logspace(-2, 4, 121)


class LatencyHistogram:
    def __init__(self) -> None:
        self.counts = np.zeros(_EDGES.size + 1, dtype=np.int64)

    def add(self, ms: float) -> None:
        self.counts[int(np.searchsorted(_EDGES, ms))] += 1

    def percentile(self, q: float) -> float | None:
        total = int(self.counts.sum())
        if total == 0:
            return None
        k = int(np.searchsorted(np.cumsum(self.counts), q / 100.0 * total))
        return round(float(_EDGES[min(k, _EDGES.size - 1)]), 3)


class _Interval:
    def __init__(self) -> None:
        self.frames = 0
        self.faces = dict.fromkeys(SIDES, 0)
        self.p_sum = dict.fromkeys(SIDES, 0.0)
        self.disagree = 0
        self.ms = {s: LatencyHistogram() for s in SIDES}
        self.render_frames = 0
        self.render = LatencyHistogram()
        self.latency = LatencyHistogram()
        self.errors: dict[str, int] = defaultdict(int)


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
        self.k_min = k_min_sessions
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()
        self._sessions = SessionTracker(presence_min_s, presence_gap_s)
        self._cur = _Interval()
        self._start_mono = clock()
        self._start_wall = wall()
        self._interval_start_mono = self._start_mono
        self._interval_start_wall = self._start_wall
        self._backend = "unknown"
        self._source: SourceStatus | None = None
        self._dropped_at_interval_start = 0
        self._seq = 0
        self.total: dict[str, Any] = {
            "frames": 0,
            "sessions": 0,
            "faces": dict.fromkeys(SIDES, 0),
            "disagreements": 0,
            "errors": defaultdict(int),
        }

    # -- producers (any thread) ----------------------------------------------------------

    def on_result(self, r: FrameResult) -> None:
        with self._lock:
            cur = self._cur
            cur.frames += 1
            left, right = r.predictions["left"], r.predictions["right"]
            for side, p in (("left", left), ("right", right)):
                cur.faces[side] += p.face
                cur.p_sum[side] += p.p_face
                cur.ms[side].add(p.ms)
            cur.disagree += left.face != right.face
            self._sessions.update(r.t_capture, left.face or right.face)

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

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Close the current interval and return its aggregate (JSON-ready)."""
        now_mono, now_wall = self._clock(), self._wall()
        with self._lock:
            cur, self._cur = self._cur, _Interval()
            started, ended, dwell = self._sessions.take()
            start_wall = self._interval_start_wall
            seconds = max(now_mono - self._interval_start_mono, 1e-9)
            self._interval_start_mono, self._interval_start_wall = now_mono, now_wall
            source = self._source
        tot = self.total
        tot["frames"] += cur.frames
        tot["sessions"] += started
        tot["disagreements"] += cur.disagree
        for side in SIDES:
            tot["faces"][side] += cur.faces[side]
        for kind, n in cur.errors.items():
            tot["errors"][kind] += n
        dropped_total = source.dropped_frames if source else 0
        self._seq += 1
        out: dict[str, Any] = {
            "schema": SCHEMA,
            # Interval number since start: delivery is at-least-once, so consumers drop repeats
            # of (cumulative.since, seq) and can see a gap if one was ever lost.
            "seq": self._seq,
            "interval": {
                "start": _iso(start_wall),
                "end": _iso(now_wall),
                "seconds": round(seconds, 1),
            },
            "sessions": started,
            "frames": cur.frames,
            "fps": {
                "camera": source.fps if source else None,
                "process": round(cur.frames / seconds, 1),
                "render": round(cur.render_frames / seconds, 1),
            },
            "dropped_frames": dropped_total - self._dropped_at_interval_start,
            "inference_ms": {
                s: {"p50": cur.ms[s].percentile(50), "p95": cur.ms[s].percentile(95)} for s in SIDES
            },
            "render_ms_p95": cur.render.percentile(95),
            "latency_ms_p95": cur.latency.percentile(95),
            "backend": self._backend,
            "errors": dict(cur.errors),
            "uptime_s": round(now_mono - self._start_mono),
            "cumulative": {
                "since": _iso(self._start_wall),
                "frames": tot["frames"],
                "sessions": tot["sessions"],
                "faces": dict(tot["faces"]),
                "disagreements": tot["disagreements"],
                "dropped_frames": dropped_total,
                "errors": dict(tot["errors"]),
            },
        }
        self._dropped_at_interval_start = dropped_total
        if started >= self.k_min and cur.frames > 0:
            # k-anonymity: with fewer sessions a rate could describe one visitor.
            out["mean_dwell_s"] = round(dwell / ended, 1) if ended else None
            out["models"] = {
                s: {
                    "face_rate": round(cur.faces[s] / cur.frames, 4),
                    "mean_p_face": round(cur.p_sum[s] / cur.frames, 4),
                }
                for s in SIDES
            }
            out["disagreement_rate"] = round(cur.disagree / cur.frames, 4)
        if extra:
            out.update(extra)
        return out


def _iso(t: float) -> str:
    # Interval boundaries only, to the second: nothing finer than the interval leaves the device.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
