"""`bias-mirror bench`, the parts: what single steps of the kiosk cost, each on real inputs.

- the crop both models see (640x480 demo frame -> 64x64 RGB);
- decoding the 640x480 mp4v demo clip plus that crop, without the models (replay's floor);
- the stats aggregator's `on_result`, once per judged frame on the pipeline thread;
- `publish_state` as the render loop calls it (it only flags the MQTT worker);
- which CPU measured them (`cpu_info`): the same int8 models ran four times slower on a 2-core
  VM with AVX2 and no AVX-512 than on the one before it, so a figure names its machine.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from installation.affinity import allowed_cores, core_count
from installation.region import RegionFinder, crop_for_model
from installation.sources import open_source
from installation.types import FrameResult

logger = logging.getLogger(__name__)

# The vector extensions int8 and float kernels (XNNPACK) choose between, as /proc/cpuinfo
# names them: x86 "flags", Arm "Features" (asimddp: int8 dot products; i8mm: int8 matrices).
SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """/proc/cpuinfo -> {"model": the first model name, "simd": [those of SIMD_FLAGS it has]}."""
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return {"model": model, "simd": [f for f in SIMD_FLAGS if f in flags]}


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The machine the bench measured: CPU model, cores this process may use, SIMD extensions
    (empty where /proc/cpuinfo is missing: not Linux)."""
    try:
        info = parse_cpuinfo(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        info = {"model": "", "simd": []}
    if not info["model"]:
        info["model"] = platform.processor() or platform.machine() or "unknown CPU"
    info["cores"] = core_count(allowed_cores())
    return info


def machine_line(cpu: dict[str, Any]) -> str:
    """`cpu_info` as the bench and the soak print it."""
    simd = " ".join(cpu["simd"]) or "none known"
    return f"machine: {cpu['model']}, {cpu['cores']} cores for this process; SIMD: {simd}"


def timed(fn: Callable[[], object], seconds: float, min_runs: int = 50) -> np.ndarray:
    """Call fn repeatedly for about `seconds`; return per-call milliseconds.

    Every sample is kept, as 8 bytes in an array('d'): a step of a microsecond runs millions of
    times in a few seconds, and a list of Python floats (~33 bytes each) held ~100 MB of them,
    the bench's peak memory (not the kiosk's)."""
    out = array("d")
    deadline = time.perf_counter() + seconds
    while len(out) < min_runs or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return np.frombuffer(out, dtype=np.float64)


def stats(ms: np.ndarray) -> dict[str, float]:
    return {
        "median_ms": round(float(np.median(ms)), 4),
        "p95_ms": round(float(np.percentile(ms, 95)), 4),
        "runs": int(ms.size),
    }


@contextlib.contextmanager
def quiet_mqtt() -> Iterator[None]:
    """The bench's publishers talk to an unreachable broker on purpose (127.0.0.1:1): their
    'unreachable' warnings would read as a fault, so the MQTT loggers say only errors meanwhile."""
    mqtt_log = logging.getLogger("installation.mqtt")
    level = mqtt_log.level
    mqtt_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        mqtt_log.setLevel(level)


def bench_decode_and_crop(clip: Path, finder: RegionFinder, max_frames: int) -> dict[str, Any]:
    """Replay's share without the models: read every frame of the clip and cut the crop."""
    src = open_source(str(clip), loop=False)
    n = 0
    t0 = time.perf_counter()
    try:
        while n < max_frames and (frame := src.read()) is not None:
            crop_for_model(frame.image, finder.find(frame.image))
            n += 1
    finally:
        src.close()
    seconds = time.perf_counter() - t0
    return {"frames": n, "fps": round(n / seconds, 1) if seconds > 0 else 0.0}


def bench_parts(
    clip: Path,
    finder: RegionFinder,
    frames: list[np.ndarray],
    results: list[FrameResult],
    *,
    seconds: float,
    publisher: Callable[[], Any],
) -> dict[str, Any]:
    """Each part on its own; `frames` are demo frames (BGR), `results` the pipeline's results
    for them, `publisher` builds an MqttPublisher (started here, against no broker)."""
    from installation.stats import StatsAggregator

    i = [0]

    def crop() -> None:
        frame = frames[i[0] % len(frames)]
        i[0] += 1
        crop_for_model(frame, finder.find(frame))

    out: dict[str, Any] = {"crop": stats(timed(crop, seconds))}
    out["decode_and_crop"] = bench_decode_and_crop(clip, finder, 300)

    agg = StatsAggregator(k_min_sessions=5, presence_min_s=0.4, presence_gap_s=2.0)

    def on_result() -> None:
        agg.on_result(results[i[0] % len(results)])
        i[0] += 1

    out["stats_on_result"] = stats(timed(on_result, seconds, min_runs=1000))
    with quiet_mqtt():
        pub = publisher()
        pub.start()
        try:
            out["publish_state"] = stats(timed(pub.publish_state, seconds, min_runs=1000))
        finally:
            pub.stop(timeout=0.5)
    return out
