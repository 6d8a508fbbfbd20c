"""Stats aggregation: sessions from presence, k-anonymity, cumulative counters, no traces."""

from __future__ import annotations

import json

import numpy as np

from installation.stats import SessionTracker, StatsAggregator
from installation.stats.aggregator import LatencyHistogram
from installation.types import FrameResult, Prediction, Region


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def frame(t: float, left: bool, right: bool, p: float = 0.9) -> FrameResult:
    return FrameResult(
        frame_index=0,
        t_capture=t,
        t_done=t,
        region=Region(1, 2, 3, 3),
        predictions={
            "left": Prediction(p if left else 0.1, left, 0.0, 0.25),
            "right": Prediction(
                p if right else 0.1, right, 0.0, 0.35, latent=np.arange(8, dtype=np.float32)
            ),
        },
        rarity=0.5,
    )


def test_sessions_need_min_presence_and_end_after_the_gap() -> None:
    s = SessionTracker(presence_min_s=0.5, presence_gap_s=2.0)
    for t in np.arange(0, 0.3, 0.1):  # a passer-by: too short
        s.update(t, True)
    s.update(3.0, False)
    assert s.take() == (0, 0, 0.0)
    for t in np.arange(10, 14, 0.1):  # a visitor, 4 s, with a 1 s blink inside
        s.update(t, not (11 <= t < 12))
    s.update(20.0, False)
    started, ended, dwell = s.take()
    assert (started, ended) == (1, 1)
    assert 3.8 < dwell < 4.0


def visitors(agg: StatsAggregator, n: int, t0: float, left: bool, right: bool) -> float:
    t = t0
    for _ in range(n):
        for _ in range(20):  # 2 s in the box at 10 fps
            agg.on_result(frame(t, left, right))
            t += 0.1
        t += 5.0  # gone long enough to end the session
        agg.on_result(frame(t, False, False))
    return t


def test_k_anonymity_hides_rates_below_k() -> None:
    clock, wall = Clock(), Clock()
    agg = StatsAggregator(
        k_min_sessions=5, presence_min_s=0.5, presence_gap_s=2.0, clock=clock, wall=wall
    )
    visitors(agg, 4, 0.0, left=False, right=True)
    clock.t += 60
    wall.t += 60
    few = agg.snapshot()
    assert few["sessions"] == 4
    assert "models" not in few and "disagreement_rate" not in few and "mean_dwell_s" not in few
    visitors(agg, 5, 100.0, left=False, right=True)
    clock.t += 60
    wall.t += 60
    many = agg.snapshot()
    assert many["sessions"] == 5
    assert many["models"]["left"]["face_rate"] == 0.0
    assert 0.9 < many["models"]["right"]["face_rate"] < 1.0
    assert many["disagreement_rate"] == many["models"]["right"]["face_rate"]
    assert 1.8 < many["mean_dwell_s"] < 2.1
    # Cumulative counters carry across intervals so a dashboard can recompute what it missed.
    assert many["cumulative"]["sessions"] == 9
    assert many["cumulative"]["frames"] == few["frames"] + many["frames"]


def test_payload_holds_no_trace_of_a_visitor() -> None:
    agg = StatsAggregator(k_min_sessions=1, presence_min_s=0.1, presence_gap_s=1.0)
    visitors(agg, 3, 0.0, left=True, right=True)
    agg.on_render(5.0, 30.0)
    text = json.dumps(agg.snapshot())
    payload = json.loads(text)

    def walk(v: object) -> None:
        assert not isinstance(v, list), "no per-frame arrays"
        if isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(payload)
    assert "latent" not in text and "rarity" not in text and "region" not in text
    assert payload["interval"]["start"].endswith("Z") and "." not in payload["interval"]["start"]
    assert len(text) < 3000


def test_latency_percentiles_from_histogram() -> None:
    h = LatencyHistogram()
    for ms in np.linspace(0.1, 1.0, 1000):
        h.add(float(ms))
    assert abs(h.percentile(50) - 0.55) < 0.07
    assert abs(h.percentile(95) - 0.955) < 0.1
    assert LatencyHistogram().percentile(50) is None


def test_on_result_benchmark(benchmark) -> None:  # type: ignore[no-untyped-def]
    agg = StatsAggregator(k_min_sessions=5, presence_min_s=0.5, presence_gap_s=2.0)
    r = frame(1.0, True, False)
    benchmark(agg.on_result, r)
    assert agg.snapshot()["frames"] >= 1
