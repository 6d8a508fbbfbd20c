"""`bias-mirror bench`: the numbers the project's targets are stated in.

- latency of each model alone and both together on real crops (median, p95);
- replay throughput in frames/s over a generated 640x480 30 fps mp4v clip, guide-box and detector;
- the same replay with stats published to an unreachable broker, against none;
- single parts: the crop, decoding, the stats per frame, an MQTT publish (installation.bench_parts);
- drawing one kiosk frame at 1920x1080 with live video and both panels (under the dummy driver
  a flip costs nothing, and the report says so);
- camera-frame-to-screen latency through the real threads (capture, pipeline, display), the
  heatmap rate, the kiosk's CPU share, and its split over the kiosk's threads;
- peak RSS of this process, and of the kiosk alone in a process of its own
  (installation.bench_kiosk). installation.bench_report holds the targets and prints the report.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from installation.bench_kiosk import (
    SCREEN,
    cpu_seconds,
    kiosk_alone,
    kiosk_config,
    peak_rss_mb,
    steady_marks,
)
from installation.bench_parts import bench_parts, cpu_info, quiet_mqtt, stats, timed
from installation.bench_report import print_human, targets
from installation.config import RegionConfig
from installation.inference.concurrent import THREAD_PREFIX
from installation.pipeline import Pipeline
from installation.region import RegionFinder, crop_for_model
from installation.runtime import USER_ERRORS, Runtime, build_runtime, report_user_error
from installation.sources import open_source
from installation.sources.demo import demo_clip_path
from installation.stats import StatsAggregator
from installation.types import Frame, FrameResult

logger = logging.getLogger(__name__)


def _demo_frames(clip: Path, n: int = 64) -> list[Frame]:
    src = open_source(str(clip), loop=False)
    frames: list[Frame] = []
    try:
        while len(frames) < n and (frame := src.read()) is not None:
            frames.append(frame)
    finally:
        src.close()
    return frames


def bench_models(rt: Runtime, crops: list[np.ndarray], seconds: float) -> dict[str, Any]:
    left, right = rt.classifiers["left"], rt.classifiers["right"]
    i = [0]

    def crop() -> np.ndarray:
        i[0] = (i[0] + 1) % len(crops)
        return crops[i[0]]

    res: dict[str, Any] = {
        "left": {
            "name": left.card.name,
            "views": left.views.count,
            **stats(timed(lambda: left.predict(crop()), seconds)),
        },
        "right": {
            "name": right.card.name,
            "views": right.views.count,
            **stats(timed(lambda: right.predict(crop()), seconds)),
        },
    }

    def both() -> None:
        c = crop()
        left.predict(c)
        right.predict(c)

    res["both"] = stats(timed(both, seconds))
    # Both as the kiosk's pipeline judges them (`Pipeline.judge`): at once, the right model on
    # a thread of its own, where it has two cores, else one after the other. CPU time is the
    # process's over the same calls: what judging at once costs in all.
    cpu0 = time.process_time()
    ms = timed(lambda: rt.pipeline.judge(crop()), seconds)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / ms.size
    res["as_judged"] = {**stats(ms), "at_once": rt.pipeline.parallel, "cpu_ms": round(cpu_ms, 4)}
    return res


def _replay_once(
    pipeline: Pipeline, rt: Runtime, clip: Path, max_frames: int | None, loop: bool = False
) -> tuple[int, float]:
    """One headless replay of `clip` through `pipeline`: (frames, frames per second)."""
    from installation.replay import run_replay

    names = {s: c.card.name for s, c in rt.classifiers.items()}
    src = open_source(str(clip), loop=loop)
    try:
        stats = run_replay(pipeline, src, io.StringIO(), names, max_frames)
    finally:
        src.close()
    return stats.frames, stats.frames / stats.seconds if stats.seconds else 0.0


def bench_replay(
    rt: Runtime, clip: Path, mode: str, max_frames: int | None, repeats: int = 1
) -> dict[str, Any]:
    region = RegionConfig(**{**rt.config.region.model_dump(), "mode": mode})
    pipeline = Pipeline(
        RegionFinder(region),
        rt.classifiers,
        rarity=rt.classifiers["right"].rarity,
        parallel=rt.pipeline.parallel,
    )
    best = 0.0
    frames = 0
    try:
        for _ in range(repeats):
            frames, fps = _replay_once(pipeline, rt, clip, max_frames)
            best = max(best, fps)
    finally:
        pipeline.close()
    return {"mode": mode, "frames": frames, "fps": round(best, 1)}


def bench_broker_down(
    rt: Runtime, clip: Path, max_frames: int | None, rounds: int = 40
) -> dict[str, Any]:
    """Replay throughput with stats + an MQTT publisher whose broker is down, vs. without."""

    agg = _aggregator()
    pub = unreachable_publisher(rt, agg)
    with_mqtt = Pipeline(
        RegionFinder(rt.config.region), rt.classifiers, parallel=rt.pipeline.parallel
    )
    with_mqtt.subscribe(agg.on_result)
    # ~0.15 s per run here (the clip loops). On a shared 2-core VM one run's throughput moves by
    # up to +-10 %: with two identical pipelines (no MQTT on either), 7 pairs of 900 frames read
    # from 4.3 % faster to 7.0 % slower in 10 repetitions, which a 5 % target cannot live with;
    # 40 pairs of 150 frames in the same time, each pair's order the last one's reversed (a drift
    # of the machine favours neither side), from 2.9 % faster to 1.1 % slower in 4.
    n = max_frames or 150

    def fps(pipeline: Pipeline) -> float:
        return _replay_once(pipeline, rt, clip, n, loop=True)[1]

    without = Pipeline(
        RegionFinder(rt.config.region), rt.classifiers, parallel=rt.pipeline.parallel
    )
    fps(without)  # warm-up: caches, the interpreters' first invocations
    pairs: list[tuple[float, float]] = []
    with quiet_mqtt():
        pub.start()
        try:
            for i in range(rounds):
                order = (without, with_mqtt) if i % 2 == 0 else (with_mqtt, without)
                got = {p: fps(p) for p in order}  # run in `order`
                pairs.append((got[without], got[with_mqtt]))
        finally:
            pub.stop(timeout=0.5)
            without.close()
            with_mqtt.close()
    without_fps = float(np.median([b for b, _ in pairs]))
    down_fps = float(np.median([w for _, w in pairs]))
    return {
        "fps_without_mqtt": round(without_fps, 1),
        "fps_broker_down": round(down_fps, 1),
        # From the two medians above: positive = slower with the broker down.
        "slower_percent": round(100 * (1 - down_fps / without_fps), 1) if without_fps else 0.0,
        "rounds": len(pairs),
        "frames_per_run": n,
    }


def _aggregator() -> StatsAggregator:
    return StatsAggregator(k_min_sessions=5, presence_min_s=0.4, presence_gap_s=2.0)


def unreachable_publisher(rt: Runtime, agg: StatsAggregator) -> Any:
    """An MqttPublisher whose broker is down: port 1 on loopback refuses at once, so the client
    keeps retrying throughout (what a kiosk does while its broker is away)."""
    from installation.config import MqttConfig
    from installation.mqtt import MqttPublisher

    return MqttPublisher(
        MqttConfig(host="127.0.0.1", port=1, stats_interval_s=1, dev_short_interval=True),
        "bench",
        agg,
        state=dict,
        on_command=lambda name, value: (False, "bench"),
        privacy=rt.config.privacy,
    )


def bench_render(
    rt: Runtime, frames: list[Frame], results: list[FrameResult], seconds: float
) -> dict[str, Any]:
    """Draw + flip at 1920x1080 with live frames (the demo frames and the pipeline's results
    for them) and both panels. Under the dummy driver (the default here) the flip costs
    nothing: `driver` in the result says which one drew."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from installation.display import KioskView
    from installation.display.widgets import quit_pygame
    from installation.types import SourceState, SourceStatus

    size = SCREEN
    cards = {s: c.card for s, c in rt.classifiers.items()}
    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode(size)
        view = KioskView(size, cards)
        status = SourceStatus(SourceState.OK, fps=30.0)
        i = [0]

        def draw() -> None:
            k = i[0] % len(frames)
            i[0] += 1
            view.draw(
                screen, frame=frames[k].image, result=results[k], status=status, attract=False
            )
            pygame.display.flip()

        ms = timed(draw, seconds, min_runs=60)
        driver = pygame.display.get_driver()
    finally:
        quit_pygame()
    fps = round(1000.0 / float(np.median(ms)), 1)
    return {"size": list(size), "driver": driver, "fps": fps, **stats(ms)}


def bench_heatmaps(rt: Runtime, crops: list[np.ndarray], seconds: float) -> dict[str, Any]:
    """One heatmap update: both models' occlusion maps (1 + GRID x GRID int8 crops each) on
    demo crops, through second interpreters as the kiosk's heatmap thread uses them (one
    batched invoke per model where installation.inference.batch can make one)."""
    from installation.heatmap import GRID, occlusion_map
    from installation.runtime import load_heatmap_occluders

    occluders = load_heatmap_occluders(rt.config)
    i = [0]

    def update() -> None:
        crop = crops[i[0] % len(crops)]
        i[0] += 1
        for occluder in occluders.values():
            occlusion_map(occluder.occluded_logits, crop)

    ms = timed(update, seconds, min_runs=20)
    return {
        "max_per_s": round(1000.0 / float(np.median(ms)), 1),
        "occlusions_per_model": GRID * GRID,
        "batched": all(o.batched for o in occluders.values()),
        **stats(ms),
    }


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far per part of the kiosk, from each thread's counters (Linux /proc;
    empty elsewhere): display (the main thread), pipeline (with the thread that judges its
    second model), capture (with its decoder threads), heatmaps, other."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    parts = {"MainThread": "display", "pipeline": "pipeline", "capture": "capture"}
    parts["heatmaps"] = "heatmaps"
    out: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            seconds = cpu_seconds(Path(f"/proc/self/task/{tid}/stat"))
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(tid), comm)
        if comm.startswith("av:"):
            part = "capture"
        elif name.startswith(THREAD_PREFIX):
            part = "pipeline"  # the second model, judged at once with the first
        else:
            part = parts.get(name, "other")
        out[part] = out.get(part, 0.0) + seconds
    return out


def bench_latency(rt: Runtime, clip: Path, seconds: float, heatmaps: bool = True) -> dict[str, Any]:
    """The real kiosk threads on a paced clip: frame-capture-to-flip latency, screen and heatmap
    rates, and the process's CPU share (CPU seconds of all its threads per wall second; 1.0 =
    one core busy)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from installation.kiosk import run_with_runtime

    cfg = kiosk_config(rt.config, clip, heatmaps)
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    present = [0, 0]  # frames judged, of them with someone in the box

    def count(r: FrameResult) -> None:
        present[0] += 1
        present[1] += r.present

    rt.pipeline.subscribe(count)
    # Where the CPU goes, per thread, over the steady part of the run (threads are gone once
    # the kiosk returns, so both snapshots are taken while it runs).
    parts: list[tuple[float, dict[str, float]]] = []
    snaps = [
        threading.Timer(t, lambda: parts.append((time.monotonic(), _thread_cpu())))
        for t in steady_marks(seconds)
    ]
    cpu0, wall0 = time.process_time(), time.monotonic()
    timer.start()
    for snap in snaps:
        snap.start()
    try:
        app = run_with_runtime(Runtime(cfg, rt.classifiers, rt.pipeline), stop)
    finally:
        timer.cancel()
        for snap in snaps:
            snap.cancel()
    cpu_share = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    by_part: dict[str, float] = {}
    if len(parts) == 2 and parts[1][0] > parts[0][0]:
        (ta, a), (tb, b) = parts
        by_part = {k: round(100 * (b[k] - a.get(k, 0.0)) / (tb - ta), 1) for k in sorted(b)}
    rt.pipeline.unsubscribe(count)
    # Heatmaps are measured only while someone is in the box: their rate is per second of that.
    present_s = seconds * present[1] / max(present[0], 1)
    lat = np.asarray(list(app.latency_ms) or [float("nan")])
    return {
        "median_ms": round(float(np.nanmedian(lat)), 2),
        "p95_ms": round(float(np.nanpercentile(lat, 95)), 2),
        "samples": int(np.isfinite(lat).sum()),
        # The whole kiosk at once: screen frames and heatmap updates per second of the run.
        "screen_fps": round(app.frames / seconds, 1),  # loop turns (news, else display.fps)
        "redraws_per_s": round(app.redraws / seconds, 1),  # of those, drawn: something changed
        # The screen's real rate: camera frames drawn per second while the clip ran (from their
        # capture times, so the run's start-up does not count); the clip has 30.
        "shown_fps": round(app.shown_fps, 2),
        "judge_fps": cfg.models.judge_fps,
        "present_s": round(present_s, 2),
        "heatmap_updates_per_s": round(app.heatmap_updates / present_s, 1) if present_s else 0.0,
        # Steady state, % of one core: the parts' sum between the two snapshots (the kiosk's
        # start, with its fonts and window, and its stop are not what it costs while it runs).
        "cpu_percent": round(sum(by_part.values()), 1) if by_part else round(100 * cpu_share, 1),
        "cpu_percent_whole_run": round(100 * cpu_share, 1),  # start and stop included
        "cpu_by_part": by_part,  # steady state, % of one core per part of the kiosk
    }


def _bench_on_frames(
    rt: Runtime, clip: Path, finder: RegionFinder, seconds: float
) -> dict[str, Any]:
    """The parts and the render, on the demo frames (64 of 640x480, 59 MB) and the pipeline's
    results for them: decoded once for both, and let go on return, before the kiosk runs."""
    demo = _demo_frames(clip)
    results = [rt.pipeline.process(f) for f in demo]
    out: dict[str, Any] = {}
    out["parts"] = bench_parts(
        clip,
        finder,
        [f.image for f in demo],
        results,
        seconds=seconds,
        publisher=lambda: unreachable_publisher(rt, _aggregator()),
    )
    out["render"] = bench_render(rt, demo[:60], results[:60], seconds)
    return out


def run_bench(config_path: Path | None, seconds: float) -> dict[str, Any]:
    rt = build_runtime(config_path, keep_frame=True)
    clip = demo_clip_path()
    finder = RegionFinder(rt.config.region)
    # Only the 64 crops (12 KB each) are kept; the frames are decoded again where needed.
    crops = [crop_for_model(f.image, finder.find(f.image)) for f in _demo_frames(clip)]
    frames = int(30 * max(seconds, 1.0) * 3)
    result: dict[str, Any] = {"backend": rt.backend, "clip": str(clip), "cpu": cpu_info()}
    result["models"] = bench_models(rt, crops, seconds)
    result["replay"] = {
        "guide_box": bench_replay(rt, clip, "guide_box", frames, repeats=2),
        "detector": bench_replay(rt, clip, "detector", frames),
    }
    short = seconds < 1  # a quick check of the bench itself (its tests): fewer, shorter runs
    result["broker_down"] = bench_broker_down(
        rt, clip, frames if short else None, rounds=6 if short else 40
    )
    result.update(_bench_on_frames(rt, clip, finder, seconds))
    result["heatmaps"] = bench_heatmaps(rt, crops, seconds)
    # 8 s of the demo clip hold about a second of a visitor in the box: heatmaps run only then.
    kiosk_s = max(seconds * 4, 8.0)
    result["latency"] = bench_latency(rt, clip, kiosk_s)
    result["latency_no_heatmaps"] = bench_latency(rt, clip, kiosk_s, heatmaps=False)
    result["peak_rss_mb"] = peak_rss_mb()
    # The same kiosk alone, in a fresh process: without the bench's inputs, samples and what
    # its earlier stages left in the allocator (the figure a kiosk machine needs).
    result["kiosk_peak_rss_mb"] = kiosk_alone(config_path, kiosk_s)["peak_rss_mb"]
    # And on a real X server, where flips cost what they cost (none under the dummy driver).
    try:
        result["kiosk_x11"] = (
            kiosk_alone(config_path, kiosk_s, x_server=True) if shutil.which("Xvfb") else None
        )
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        # Said in the report, the other figures kept: the X server is the bench's, not the kiosk's.
        result["kiosk_x11"] = {"error": str(exc)}
    result["targets"] = targets(result)
    return result


def bench_main(as_json: bool, config: Path | None, seconds: float) -> int:
    try:
        result = run_bench(config, seconds)
    except USER_ERRORS as exc:
        return report_user_error(exc)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_human(result)
    return 0
