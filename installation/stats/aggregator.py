"""Anonymous running statistics of the kiosk: counters, sums and fixed latency histograms.

Producers (any thread): `on_result` per judged frame (pipeline thread, ~2 us), `on_render` per
drawn frame, `on_source_status`, `count_error`, `set_backend`. None of them keeps a frame, crop,
latent or per-frame value: only sums for the current interval.

Consumer: `snapshot()` closes the interval and returns the JSON-ready aggregate. Privacy rule
(k-anonymity): per-model rates and means appear only when the interval holds at least
`k_min_sessions` visitor sessions, the mean dwell only when that many sessions ended; otherwise
counts only. The cumulative block sums the same way (`released` only adds intervals that were
released), so differencing two cumulative blocks cannot reveal a withheld interval.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from installation.stats.histogram import LatencyHistogram
from installation.stats.sessions import SessionTracker
from installation.types import SIDES, FrameResult, SourceStatus

SCHEMA = 1


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
        self._tot: dict[str, Any] = {
            "frames": 0,
            "sessions": 0,
            "dropped_frames": 0,
            "errors": defaultdict(int),
            "released": {
                "intervals": 0,
                "present_frames": 0,
                "faces": [0, 0],
                "p_face_sum": [0.0, 0.0],
                "disagreements": 0,
                "missed_frames": 0,
                "sessions_ended": 0,
                "sessions_missed_by_both": 0,
                "dwell_s": 0.0,
            },
        }

    # -- producers (any thread) ----------------------------------------------------------

    def on_result(self, r: FrameResult) -> None:
        left, right = r.predictions["left"], r.predictions["right"]
        # The stable verdicts (what the screen shows); presence never only from the models.
        lf, rf = r.found("left"), r.found("right")
        present = r.present
        with self._lock:
            cur = self._cur
            cur.frames += 1
            cur.ms[0].add(left.ms)
            cur.ms[1].add(right.ms)
            if present:
                cur.present += 1
                cur.missed += not (lf or rf)
                cur.faces[0] += lf
                cur.faces[1] += rf
                cur.p_sum[0] += left.p_face
                cur.p_sum[1] += right.p_face
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

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Close the current interval and return its aggregate (JSON-ready)."""
        with self._snap_lock:
            return self._snapshot(extra or {})

    def _snapshot(self, extra: dict[str, Any]) -> dict[str, Any]:
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

        tot, rel = self._tot, self._tot["released"]
        tot["frames"] += cur.frames
        tot["sessions"] += started
        tot["dropped_frames"] += dropped
        for kind, n in cur.errors.items():
            tot["errors"][kind] += n
        out: dict[str, Any] = {
            "schema": SCHEMA,
            # Interval number since start: delivery is at-least-once, so consumers drop repeats
            # of (cumulative.since, seq) and see a gap if one was ever lost.
            "seq": self._seq,
            "interval": {
                "start": _iso(start_wall),
                "end": _iso(now_wall),
                "seconds": round(seconds, 1),
            },
            "k_min_sessions": self.k_min,
            "sessions": started,
            "sessions_ended": ended,
            "frames": cur.frames,
            "present_frames": cur.present,
            "fps": {
                "camera": round(source.fps, 1) if source else None,
                "process": round(cur.frames / seconds, 1),
                "render": round(cur.render_frames / seconds, 1),
            },
            "dropped_frames": dropped,
            "inference_ms": {
                s: {"p50": cur.ms[i].percentile(50), "p95": cur.ms[i].percentile(95)}
                for i, s in enumerate(SIDES)
            },
            "render_ms_p95": cur.render.percentile(95),
            "latency_ms_p95": cur.latency.percentile(95),
            "backend": self._backend,
            "errors": dict(cur.errors),
            "uptime_s": round(now_mono - self._start_mono),
        }
        if started >= self.k_min and cur.present > 0:
            # k-anonymity: with fewer sessions a rate could describe one visitor.
            out["models"] = {
                s: {
                    "face_rate": round(cur.faces[i] / cur.present, 4),
                    "mean_p_face": round(cur.p_sum[i] / cur.present, 4),
                }
                for i, s in enumerate(SIDES)
            }
            out["disagreement_rate"] = round(cur.disagree / cur.present, 4)
            out["missed_by_both_rate"] = round(cur.missed / cur.present, 4)
            rel["intervals"] += 1
            rel["present_frames"] += cur.present
            rel["disagreements"] += cur.disagree
            rel["missed_frames"] += cur.missed
            for i in range(2):
                rel["faces"][i] += cur.faces[i]
                rel["p_face_sum"][i] += cur.p_sum[i]
        if ended >= self.k_min:
            out["mean_dwell_s"] = round(dwell / ended, 1)
            # Visitors whom neither model found: counted like every visitor, shown like dwell.
            out["sessions_missed_by_both"] = missed
            rel["sessions_ended"] += ended
            rel["dwell_s"] += dwell
            rel["sessions_missed_by_both"] += missed
        out["cumulative"] = {
            "since": _iso(self._start_wall),
            "frames": tot["frames"],
            "sessions": tot["sessions"],
            "dropped_frames": tot["dropped_frames"],
            "errors": dict(tot["errors"]),
            "released": {
                "intervals": rel["intervals"],
                "present_frames": rel["present_frames"],
                "faces": dict(zip(SIDES, rel["faces"], strict=True)),
                "p_face_sum": {s: round(rel["p_face_sum"][i], 3) for i, s in enumerate(SIDES)},
                "disagreements": rel["disagreements"],
                "missed_frames": rel["missed_frames"],
                "sessions_ended": rel["sessions_ended"],
                "sessions_missed_by_both": rel["sessions_missed_by_both"],
                "dwell_s": round(rel["dwell_s"], 1),
            },
        }
        out.update(extra)
        return out


def _iso(t: float) -> str:
    # Interval boundaries only, to the second: nothing finer than the interval leaves the device.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
