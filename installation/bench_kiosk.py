"""`bias-mirror bench`: the kiosk as the bench runs it, and the kiosk's own peak memory.

The bench process's peak RSS holds the kiosk and also the bench: its inputs (the demo frames),
its samples, and what its earlier stages left in the allocator. What a kiosk machine needs is
the kiosk alone, so that figure is measured in a process of its own: `python -m
installation.bench_kiosk` runs the kiosk on the demo clip (the same settings as the bench's
latency run, heatmaps on) and prints its peak RSS as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

from installation.config import Config

# The child starts Python, loads the models and opens the window before its run begins.
CHILD_STARTUP_S = 120.0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process's own memory map, in MB. A child started by the
    bench inherits the bench's peak in ru_maxrss (Linux carries the parent's high-water mark
    across vfork + exec), so the kiosk's run reads its map's own: VmHWM in /proc/self/status."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return peak_rss_mb()  # no /proc: ru_maxrss, which may include the parent's peak
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024.0, 1)  # in kB
    return peak_rss_mb()


def kiosk_config(config: Config, clip: Path, heatmaps: bool) -> Config:
    """The kiosk as the bench runs it: on `clip`, in a 1920x1080 window, MQTT off."""
    return config.model_copy(
        update={
            "source": config.source.model_copy(update={"uri": str(clip)}),
            "display": config.display.model_copy(
                update={"fullscreen": False, "width": 1920, "height": 1080, "heatmaps": heatmaps}
            ),
            "mqtt": config.mqtt.model_copy(update={"enabled": False}),
        }
    )


def kiosk_peak_rss_mb(config_path: Path | None, seconds: float) -> float:
    """Peak RSS in MB of the kiosk alone, run for `seconds` in a fresh process."""
    cmd = [sys.executable, "-m", "installation.bench_kiosk", "--seconds", str(seconds)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    env = {**os.environ, "SDL_VIDEODRIVER": os.environ.get("SDL_VIDEODRIVER", "dummy")}
    proc = subprocess.run(
        cmd,
        check=False,  # a failure is reported below, with the child's own message
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + CHILD_STARTUP_S,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"the kiosk's memory run ({' '.join(cmd)}) failed with exit code "
            f"{proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    return float(json.loads(lines[-1])["peak_rss_mb"])


def main(argv: list[str] | None = None) -> int:
    from installation.kiosk import run_with_runtime
    from installation.runtime import Runtime, build_runtime
    from installation.sources.demo import demo_clip_path

    p = argparse.ArgumentParser(description="the kiosk on the demo clip; prints its peak RSS")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--config", type=Path, default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    rt = build_runtime(args.config, keep_frame=True)
    cfg = kiosk_config(rt.config, demo_clip_path(), heatmaps=True)
    stop = threading.Event()
    timer = threading.Timer(args.seconds, stop.set)
    timer.start()
    try:
        run_with_runtime(Runtime(cfg, rt.classifiers, rt.pipeline), stop)
    finally:
        timer.cancel()
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
