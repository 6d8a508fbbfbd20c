"""Stats aggregation: sessions from presence, k-anonymity, cumulative counters, no traces."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from installation.stats import LatencyHistogram, SessionTracker, StatsAggregator
from installation.stats.system import cpu_temperature_c, rss_mb
from installation.types import FrameResult, Prediction, Region, SourceState, SourceStatus


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def frame(t: float, left: bool, right: bool, p: float = 0.9, occupied: bool = False) -> FrameResult:
    return FrameResult(
        occupied=occupied,
        frame_index=0,
        t_capture=t,
        t_done=t,
        region=Region(1, 2, 3, 3),
        predictions={
            "left": Prediction(p if left else 0.1, left, 0.0, 0.25),
            "right": Prediction(
                p if right else 0.2, right, 0.0, 0.35, latent=np.arange(8, dtype=np.float32)
            ),
        },
        rarity=0.5,
    )


def make(k: int = 5) -> tuple[StatsAggregator, Clock, Clock]:
    clock, wall = Clock(0.0), Clock(1_700_000_000.0)
    agg = StatsAggregator(
        k_min_sessions=k, presence_min_s=0.5, presence_gap_s=2.0, clock=clock, wall=wall
    )
    return agg, clock, wall


def visitors(
    agg: StatsAggregator, n: int, t0: float, left: bool, right: bool, occupied: bool = False
) -> float:
    """n sessions of 2 s each (20 frames at 10 fps), each followed by an empty box for 5 s."""
    t = t0
    for _ in range(n):
        for _ in range(20):
            agg.on_result(frame(t, left, right, occupied=occupied))
            t += 0.1
        t += 5.0  # gone long enough to end the session
        agg.on_result(frame(t, False, False))
    return t


def close(agg: StatsAggregator, clock: Clock, wall: Clock, t: float) -> dict[str, Any]:
    """Close the interval at `t`; the payload as it goes on the wire."""
    clock.t = t
    wall.t = 1_700_000_000.0 + t
    payload: dict[str, Any] = json.loads(agg.snapshot().to_json())
    return payload


def test_a_visitor_both_models_miss_is_counted_as_a_visitor() -> None:
    """Presence comes from occupancy too: 3 visitors whom neither model finds are 3 sessions,
    each counted as missed by both; a visitor either model finds is not."""
    agg, clock, wall = make(k=3)
    t = 0.0
    for found in (False, False, True, False):
        t = visitors(agg, 1, t, left=found, right=False, occupied=True)
    s = close(agg, clock, wall, t)
    assert s["sessions"] == 4 and s["sessions_ended"] == 4
    assert s["sessions_missed_by_both"] == 3
    assert s["missed_by_both_rate"] == pytest.approx(60 / 80)
    assert s["cumulative"]["released"]["sessions_missed_by_both"] == 3
    # Below k nothing about them is released, not even the count of missed visitors.
    agg2, clock2, wall2 = make(k=5)
    t = visitors(agg2, 2, 0.0, left=False, right=False, occupied=True)
    s2 = close(agg2, clock2, wall2, t)
    assert s2["sessions"] == 0  # held back until k have gathered
    assert "sessions_missed_by_both" not in s2 and "missed_by_both_rate" not in s2


def test_sessions_need_min_presence_and_end_after_the_gap() -> None:
    s = SessionTracker(presence_min_s=0.5, presence_gap_s=2.0)
    for t in np.arange(0, 0.3, 0.1):  # a passer-by: too short
        s.update(t, True)
    s.update(3.0, False)
    assert s.take() == (0, 0, 0.0, 0)
    for t in np.arange(10, 14, 0.1):  # a visitor, 4 s, with a 1 s blink inside
        s.update(t, not (11 <= t < 12))
    s.update(20.0, False)
    started, ended, dwell, _ = s.take()
    assert (started, ended) == (1, 1)
    assert 3.8 < dwell < 4.0


def test_a_gap_longer_than_presence_gap_splits_two_visitors() -> None:
    s = SessionTracker(presence_min_s=0.5, presence_gap_s=2.0)
    for t in [*np.arange(0, 1, 0.1), *np.arange(4, 5, 0.1)]:  # 3 s apart, no frame between
        s.update(float(t), True)
    assert s.active
    s.expire(10.0)  # no frame at all since (paused, camera lost): the session still ends
    assert not s.active
    started, ended, _, _ = s.take()
    assert (started, ended) == (2, 2)


def test_bad_presence_settings_name_the_config_key() -> None:
    with pytest.raises(ValueError, match=r"region\.presence_gap_s"):
        SessionTracker(0.5, -1.0)
    with pytest.raises(ValueError, match=r"privacy\.k_min_sessions"):
        StatsAggregator(k_min_sessions=0, presence_min_s=0.5, presence_gap_s=2.0)


def test_k_anonymity_hides_rates_below_k() -> None:
    agg, clock, wall = make(k=5)
    t = visitors(agg, 4, 0.0, left=False, right=True)
    few = close(agg, clock, wall, t + 10)
    assert few["sessions"] == 0 and few["sessions_ended"] == 0  # held back below k
    assert "models" not in few and "disagreement_rate" not in few and "mean_dwell_s" not in few
    assert few["cumulative"]["released"]["intervals"] == 0
    assert few["cumulative"]["released"]["faces"] == {"left": 0, "right": 0}

    t = visitors(agg, 5, t + 100, left=False, right=True)
    many = close(agg, clock, wall, t + 10)
    assert many["sessions"] == 9  # the 4 held back are released with the next 5
    # Rates among frames where someone is in the box: the left model misses every one.
    assert many["models"]["left"]["face_rate"] == 0.0
    assert many["models"]["right"]["face_rate"] == 1.0
    assert many["models"]["right"]["mean_p_face"] == pytest.approx(0.9)
    assert many["disagreement_rate"] == 1.0
    assert 1.8 < many["mean_dwell_s"] < 2.1
    # Cumulative counters carry across intervals so a dashboard can recompute what it missed;
    # the model sums hold released intervals only, so differencing reveals nothing withheld.
    cum = many["cumulative"]
    assert cum["sessions"] == 9
    assert cum["frames"] == few["frames"] + many["frames"]
    assert cum["released"]["intervals"] == 1
    assert many["present_frames"] == 9 * 20  # both intervals' visitor frames, released now
    assert cum["released"]["faces"] == {"left": 0, "right": 5 * 20}  # rates: this interval
    assert cum["released"]["sessions_ended"] == 5


def test_mean_dwell_needs_k_ended_sessions() -> None:
    agg, clock, wall = make(k=2)
    t = visitors(agg, 2, 0.0, left=True, right=True)
    for _ in range(10):  # a third visitor is still in the box when the interval closes
        agg.on_result(frame(t, True, True))
        t += 0.1
    agg.on_result(frame(t, True, True))
    s = close(agg, clock, wall, t)  # 3 started, 2 ended
    assert s["sessions"] == 3 and s["sessions_ended"] == 2 and "mean_dwell_s" in s
    agg2, clock2, wall2 = make(k=3)
    visitors(agg2, 2, 0.0, left=True, right=True)
    s2 = close(agg2, clock2, wall2, 100)
    assert "mean_dwell_s" not in s2 and "models" not in s2


def test_interval_figures_and_dropped_frames_across_a_reopen() -> None:
    agg, clock, wall = make(k=1)
    agg.set_backend("litert-cpu")
    agg.on_source_status(SourceStatus(SourceState.OK, dropped_frames=10, fps=29.97))
    for i in range(30):
        agg.on_render(4.0 + i % 3, 30.0)
    agg.count_error("camera_lost")
    agg.count_error("camera_lost")
    visitors(agg, 1, 0.0, left=True, right=False)
    s1 = close(agg, clock, wall, 10.0)
    assert s1["fps"] == {"camera": 30.0, "process": 2.1, "render": 3.0}
    assert s1["dropped_frames"] == 10 and s1["errors"] == {"camera_lost": 2}
    assert s1["backend"] == "litert-cpu"
    assert 4.0 <= s1["render_ms_p95"] <= 6.6 and 29 < s1["latency_ms_p95"] < 33
    assert 0.24 < s1["inference_ms"]["left"]["p50"] < 0.28
    assert 0.33 < s1["inference_ms"]["right"]["p95"] < 0.39
    # The camera was reopened: its counter restarted at 0 and counts 3 drops.
    agg.on_source_status(SourceStatus(SourceState.OK, dropped_frames=3, fps=30.0))
    s2 = close(agg, clock, wall, 20.0)
    assert s2["dropped_frames"] == 3 and s2["cumulative"]["dropped_frames"] == 13
    assert s2["errors"] == {} and s2["cumulative"]["errors"] == {"camera_lost": 2}
    assert s2["seq"] == s1["seq"] + 1 and s2["interval"]["start"] == s1["interval"]["end"]
    assert s2["inference_ms"]["left"]["p50"] is None  # no frame judged in this interval


def test_payload_holds_no_trace_of_a_visitor() -> None:
    agg, _, wall = make(k=1)
    visitors(agg, 3, 0.0, left=True, right=True)
    agg.on_render(5.0, 30.0)
    wall.t += 0.7  # sub-second wall time must not show up
    text = agg.snapshot().to_json()
    payload = json.loads(text)

    def walk(v: object) -> None:
        assert not isinstance(v, list), "no per-frame arrays"
        if isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(payload)
    assert "latent" not in text and "rarity" not in text and "region" not in text
    assert payload["interval"]["start"].endswith("Z") and "." not in payload["interval"]["end"]
    assert len(text) < 3000


def test_concurrent_producers_lose_no_count() -> None:
    agg = StatsAggregator(k_min_sessions=1, presence_min_s=0.5, presence_gap_s=2.0)
    r = frame(1.0, True, False)

    def produce() -> None:
        for _ in range(5000):
            agg.on_result(r)
            agg.on_render(3.0, None)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for th in threads:
        th.start()
    totals = [agg.snapshot().frames for _ in range(20)]  # snapshots race the producers
    for th in threads:
        th.join()
    totals.append(agg.snapshot().frames)
    assert sum(totals) == 20_000
    assert agg.snapshot().cumulative.frames == 20_000


def test_latency_percentiles_from_histogram() -> None:
    h = LatencyHistogram()
    for ms in np.linspace(0.1, 1.0, 1000):
        h.add(float(ms))
    assert abs(h.percentile(50) - 0.55) < 0.06  # type: ignore[operator]
    assert abs(h.percentile(95) - 0.955) < 0.08  # type: ignore[operator]
    h.add(50_000.0)  # beyond the last edge: clamps instead of failing
    assert h.percentile(100) == 10_000.0
    assert LatencyHistogram().percentile(50) is None


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path: Path) -> None:
    for i, (kind, milli) in enumerate([("acpitz", "27800"), ("x86_pkg_temp", "55250")]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert cpu_temperature_c(tmp_path) == 55.2
    (tmp_path / "thermal_zone1" / "temp").write_text("garbage")
    assert cpu_temperature_c(tmp_path) == 27.8
    assert cpu_temperature_c(tmp_path / "missing") is None
    assert 5 < rss_mb() < 8000


def test_one_sided_kiosk_sends_no_rates_of_the_missing_model() -> None:
    """The kiosk runs on the left model alone when the right bundle did not load: visitors are
    still counted, but no rate, comparison or latency is made up for the missing side."""
    agg, clock, wall = make(k=2)
    t = 0.0
    for _ in range(3):
        for _ in range(20):
            r = frame(t, True, True, occupied=True)
            agg.on_result(
                FrameResult(
                    frame_index=0,
                    t_capture=t,
                    t_done=t,
                    region=r.region,
                    predictions={"left": r.predictions["left"]},
                    occupied=True,
                )
            )
            t += 0.1
        t += 5.0
    s = close(agg, clock, wall, t)
    assert s["sessions"] == 3
    assert s["inference_ms"]["left"]["p50"] is not None
    assert s["inference_ms"]["right"]["p50"] is None
    assert "models" not in s and "disagreement_rate" not in s
    assert s["cumulative"]["released"]["faces"] == {"left": 0, "right": 0}


def test_counts_below_k_are_held_back_then_released_whole() -> None:
    """One visitor in an interval must not show as sessions 1 / present_frames 20 (at the
    stats interval's resolution that traces the person); the counts wait until k sessions
    have gathered and then go out together, so no visitor is lost from the totals."""
    agg, clock, wall = make(k=3)
    t = visitors(agg, 1, 0.0, left=True, right=True, occupied=True)
    one = close(agg, clock, wall, t)
    assert (one["sessions"], one["sessions_ended"], one["present_frames"]) == (0, 0, 0)
    assert one["cumulative"]["sessions"] == 0  # differencing the totals reveals nothing
    assert one["frames"] == 21  # judged frames (visitor or not) are not a visitor count
    t = visitors(agg, 1, t + 60, left=True, right=True, occupied=True)
    two = close(agg, clock, wall, t)
    assert (two["sessions"], two["present_frames"], two["cumulative"]["sessions"]) == (0, 0, 0)
    t = visitors(agg, 1, t + 60, left=True, right=True, occupied=True)
    three = close(agg, clock, wall, t)
    assert (three["sessions"], three["sessions_ended"], three["present_frames"]) == (3, 3, 60)
    assert three["cumulative"]["sessions"] == 3
    assert "models" not in three  # rates still need k sessions within their own interval
    empty = close(agg, clock, wall, t + 60)
    assert (empty["sessions"], empty["present_frames"]) == (0, 0)


def test_drawing_times_are_released_with_the_rates_only() -> None:
    """The screen takes longer to draw with a visitor on it (panels, heatmaps): a probe saw
    render p95 about 1.0 ms in empty intervals and 1.3-3.5 ms in occupied ones, interval by
    interval, while the counts of that one visitor were withheld. Below k the times are absent,
    the same as in an empty interval; with k sessions they are sent."""
    agg, clock, wall = make(k=3)
    t = 0.0
    shapes = []
    for n in (0, 1, 3):  # an empty interval, one visitor, three
        for i in range(30):
            agg.on_render(1.0 + 2.0 * (n > 0) + 0.1 * (i % 3), 30.0)
        t = visitors(agg, n, t + 1.0, left=True, right=True)
        s = close(agg, clock, wall, t + 1.0)
        shapes.append(("render_ms_p95" in s, "latency_ms_p95" in s))
    assert shapes == [(False, False), (False, False), (True, True)]
