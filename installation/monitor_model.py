"""The staff monitor's model: folds `available`, `stats` and `state` messages into one row per
kiosk. No MQTT and no terminal here, so it is tested with plain messages.

Visitors today: a kiosk that started today says so exactly in `cumulative.sessions`; for a kiosk
running since an earlier day the monitor adds up the intervals it saw today, and marks the count
as partial unless it saw today's first interval (the one across midnight) and no gap since.
Stats arrive at least once, so intervals are counted once per (cumulative.since, seq).
A stats message is read with the kiosk's own `StatsPayload` model; one that does not validate
changes nothing and is shown as the board's `last_problem`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from installation.stats.payload import StatsPayload, epoch_of
from installation.types import CAMERA_WORDS

logger = logging.getLogger(__name__)


# Interval times are whole seconds: an old run's final interval may end a moment after the
# restarted one's `since`.
ID_SHARED_SLACK_S = 5.0


def local_day(epoch: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch).date()


@dataclass
class _Run:
    """One kiosk process lifetime (a restart starts a new `cumulative.since`)."""

    started_day: dt.date
    seqs: set[int] = field(default_factory=set)  # intervals counted today
    today: int = 0  # sessions in those intervals
    cumulative: int = 0  # latest cumulative.sessions
    first_crosses_midnight: bool = False  # today's first interval seen began on an earlier day
    last_end: float = 0.0  # epoch end of its newest interval seen


@dataclass
class KioskRow:
    installation_id: str
    first_seen: float
    online: bool | None = None
    since: float | None = None  # when `online` changed; for a retained message: unknown
    since_exact: bool = False
    last_stats: float | None = None  # receipt time of the newest stats message
    day: dt.date | None = None  # the local day the counts below belong to
    runs: dict[str, _Run] = field(default_factory=dict)
    fps_process: float | None = None
    fps_render: float | None = None
    disagreement: float | None = None  # latest interval; None when withheld (k-anonymity)
    missed_by_both: float | None = None  # latest interval's share of visitor frames, as above
    errors_today: int = 0
    last_errors: dict[str, int] = field(default_factory=dict)
    dropped_today: int = 0
    queue_dropped: int = 0
    language: str | None = None
    paused: bool | None = None
    backend: str | None = None
    camera: str | None = None  # ok / lost / ended from the retained state (None: not said)
    models_failed: tuple[str, ...] = ()  # sides whose bundle did not load

    def visitors_today(self, today: dt.date) -> tuple[int, bool]:
        """(count, partial) for the local day `today`."""
        if self.day != today:
            return 0, True  # nothing heard today (yet)
        total, partial = 0, False
        for run in self.runs.values():
            if run.started_day == today:
                total += max(run.cumulative, run.today)
                continue
            total += run.today
            contiguous = not run.seqs or max(run.seqs) - min(run.seqs) + 1 == len(run.seqs)
            partial |= bool(run.seqs) and not (run.first_crosses_midnight and contiguous)
        return total, partial

    def id_shared(self, now: float, stale_s: float) -> bool:
        """Two processes report under this id: a run kept sending intervals that ended after a
        newer run had started (a restart ends the old run first), and did so within `stale_s`
        (once one of them is switched off, the flag clears). A second kiosk with the same
        installation_id, or a second `bias-mirror run` beside the service."""
        starts = sorted(
            ((epoch_of(since), run) for since, run in self.runs.items()), key=lambda s: s[0]
        )
        return any(
            older.last_end > newer_start + ID_SHARED_SLACK_S and now - older.last_end <= stale_s
            for i, (_, older) in enumerate(starts)
            for newer_start, _newer in starts[i + 1 :]
        )

    def stale(self, now: float, stale_s: float) -> bool:
        """Claims to be online but sent no stats for `stale_s` (hung, or its will got lost)."""
        return self.online is not False and now - (self.last_stats or self.first_seen) > stale_s


class KioskBoard:
    """Thread-safe state of all kiosks, fed with raw MQTT messages (paho's thread)."""

    def __init__(self, prefix: str = "bias-mirror", clock: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self.rows: dict[str, KioskRow] = {}
        self.messages = 0
        self.bad_messages = 0
        self.last_problem: str | None = None  # the newest refused message, for the screen

    def feed(self, topic: str, payload: bytes, retained: bool = False) -> None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != self.prefix or parts[2] not in _KINDS:
            return
        _, iid, kind = parts
        now = self._clock()
        with self._lock:
            self.messages += 1
            row = self.rows.get(iid)
            if row is None:
                row = self.rows[iid] = KioskRow(iid, first_seen=now)
            # Parse and check on a copy first: a message that fails half-way must not leave the
            # row half-updated, and no payload (Infinity, 1e999, deep JSON, a string where a
            # number belongs) may kill the network thread or the monitor at its next start.
            trial = copy.deepcopy(row)
            try:
                _KINDS[kind](trial, payload, now, retained)
            except Exception as exc:
                self.bad_messages += 1
                self.last_problem = f"{iid[:40]} {kind}: {_why(exc)}"
                logger.debug("ignored a malformed %s message from %s: %.200s", kind, iid, exc)
                return
            row.__dict__.update(trial.__dict__)  # the same row object: callers may hold it

    def snapshot(self) -> list[KioskRow]:
        with self._lock:
            return [self.rows[k] for k in sorted(self.rows)]


def _why(exc: Exception) -> str:
    """What was wrong with a message, short and without echoing its (hostile) content."""
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_input=False)
        first = problems[0]
        where = ".".join(str(part)[:30] for part in first["loc"]) or "payload"
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{where}: {first['msg'][:80]}{more}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return f"{type(exc).__name__}: {str(exc)[:80]}"


def _available(row: KioskRow, payload: bytes, now: float, retained: bool) -> None:
    text = payload.decode("utf-8")
    if text not in ("online", "offline"):
        raise ValueError(f"availability {text[:20]!r}")
    online = text == "online"
    if row.online != online:
        row.online, row.since, row.since_exact = online, now, not retained


def _text(value: object, limit: int) -> str | None:
    """A short plain string from a kiosk's payload, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value[:limit]


def _state(row: KioskRow, payload: bytes, now: float, retained: bool) -> None:
    st = json.loads(payload)
    if not isinstance(st, dict):  # `null`, a list, a number: not a state
        raise TypeError(f"state must be a JSON object, got {type(st).__name__}")
    paused = st.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise TypeError("paused must be true or false")
    camera = st.get("camera")
    if camera is not None and camera not in CAMERA_WORDS.values():
        raise ValueError(f"camera {str(camera)[:20]!r}")
    models = st.get("models") or {}
    if not isinstance(models, dict):
        raise TypeError("models must be an object")
    failed = tuple(
        sorted(side for side, m in models.items() if isinstance(m, dict) and "error" in m)
    )
    row.language, row.paused = _text(st.get("language"), 8), paused
    row.backend = _text(st.get("backend"), 40)
    row.camera, row.models_failed = camera, tuple(side[:8] for side in failed)


def _stats(row: KioskRow, payload: bytes, now: float, retained: bool) -> None:
    s = StatsPayload.model_validate_json(payload)
    since, seq, cumulative = s.cumulative.since, s.seq, s.cumulative
    start, end = epoch_of(s.interval.start), epoch_of(s.interval.end)
    day = local_day(end)
    # A retained interval may be old (a kiosk long gone): its age counts from its end.
    row.last_stats = min(now, end) if retained else now
    if row.online is None:
        row.online, row.since, row.since_exact = True, now, False
    if row.day is None or day > row.day:
        # A new day: yesterday's counts no longer matter (and runs that ended stay behind).
        row.day, row.errors_today, row.dropped_today, row.runs = day, 0, 0, {}
    run = row.runs.get(since)
    if run is None:
        run = row.runs[since] = _Run(local_day(epoch_of(since)))
    run.cumulative = max(run.cumulative, cumulative.sessions)
    run.last_end = max(run.last_end, end)
    if day < row.day or seq in run.seqs:
        return  # an interval of an earlier day, or a repeat after a reconnect: counted already
    if not run.seqs or seq < min(run.seqs):
        run.first_crosses_midnight = local_day(start) < day
    run.seqs.add(seq)
    run.today += s.sessions
    row.errors_today += sum(s.errors.values())
    row.dropped_today += s.dropped_frames
    if seq >= max(run.seqs):  # the newest interval sets the "now" figures
        row.fps_process, row.fps_render = s.fps.process, s.fps.render
        row.disagreement = s.disagreement_rate
        row.missed_by_both = s.missed_by_both_rate
        row.last_errors = dict(s.errors)
        row.queue_dropped = s.queue_dropped


_KINDS: dict[str, Callable[[KioskRow, bytes, float, bool], None]] = {
    "available": _available,
    "state": _state,
    "stats": _stats,
}
