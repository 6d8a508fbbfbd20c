"""`bias-mirror bench`: the kiosk alone, in a fresh process: its own peak memory, and its CPU on
a real X server.

The bench process's peak RSS holds the kiosk and also the bench: its inputs (the demo frames),
its samples, and what its earlier stages left in the allocator. What a kiosk machine needs is
the kiosk alone, so that figure is measured in a process of its own: `python -m
installation.bench_kiosk` runs the kiosk on the demo clip (the same settings as the bench's
latency run, heatmaps on) and prints its peak RSS, its CPU share at steady state and whether
OpenGL was loaded, as JSON.

The bench's other kiosk runs use SDL's dummy driver, where a flip costs nothing. A real screen
is not free: the window's pixels go to a display server, and how they go matters (SDL drawing
the window through a software OpenGL took 75-85 % of a core here; `display.gl_framebuffer`).
Where `Xvfb` is installed, the same child runs on an X server of its own (1920x1080, started
for the run), flips included, and reports the X server's CPU beside its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from installation.config import Config

# The child starts Python, loads the models and opens the window before its run begins.
CHILD_STARTUP_S = 120.0
# The X server's process id, for the child to read its CPU over the same steady window.
XSERVER_PID_ENV = "BIAS_MIRROR_BENCH_XSERVER_PID"
SCREEN = (1920, 1080)  # the kiosk window of every bench run, and the X server's screen
# Shared objects that mean OpenGL was loaded into the kiosk (Mesa's software renderer among them).
GL_LIBRARIES = ("libGL.", "libGLX", "libEGL", "libLLVM", "_dri.so")


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
                update={
                    "fullscreen": False,
                    "width": SCREEN[0],
                    "height": SCREEN[1],
                    "heatmaps": heatmaps,
                }
            ),
            "mqtt": config.mqtt.model_copy(update={"enabled": False}),
        }
    )


def start_xvfb(size: tuple[int, int] = SCREEN, timeout: float = 20.0) -> tuple[Any, str]:
    """(the Xvfb process, its DISPLAY) on the first free display number (Xvfb's -displayfd),
    local connections only. FileNotFoundError when Xvfb is not installed."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise FileNotFoundError("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    screen = f"{size[0]}x{size[1]}x24"
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    # Xvfb writes the number, then its newline; the pipe stays open until both came (a write to
    # a closed pipe is a fatal error for Xvfb).
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while not got.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_fd, 64) if ready else b""
            if not chunk:
                break  # timed out, or Xvfb closed the pipe (it exited)
            got += chunk
    finally:
        os.close(read_fd)
    number = got.decode(errors="replace").strip()
    # Ready when its socket takes a connection (the number can come a moment before that).
    deadline = time.monotonic() + timeout
    while number.isdigit() and time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(f"/tmp/.X11-unix/X{number}")
                return proc, f":{number}"
            except OSError:
                time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"Xvfb did not start within {timeout:.0f} s (display {number or '?'})")


def kiosk_alone(
    config_path: Path | None, seconds: float, *, x_server: bool = False
) -> dict[str, Any]:
    """The kiosk alone, run for `seconds` in a fresh process: peak RSS (MB), CPU at steady state
    (% of one core) and whether OpenGL was loaded; with `x_server`, on an Xvfb of its own
    (flips included) and that server's CPU too (`xserver_cpu_percent`)."""
    cmd = [sys.executable, "-m", "installation.bench_kiosk", "--seconds", str(seconds)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    env = {**os.environ, "SDL_VIDEODRIVER": os.environ.get("SDL_VIDEODRIVER", "dummy")}
    xvfb = None
    if x_server:
        xvfb, display = start_xvfb()
        env.update({"DISPLAY": display, "SDL_VIDEODRIVER": "x11", XSERVER_PID_ENV: str(xvfb.pid)})
        env.pop("XAUTHORITY", None)  # the server is ours and takes local connections
    try:
        proc = subprocess.run(
            cmd,
            check=False,  # a failure is reported below, with the child's own message
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + CHILD_STARTUP_S,
        )
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"the kiosk's own run ({' '.join(cmd)}) failed with exit code "
            f"{proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds so far from a Linux /proc stat file: a process's
    (/proc/PID/stat) or one thread's (/proc/self/task/TID/stat). OSError once it has ended."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady_marks(seconds: float) -> tuple[float, float]:
    """When a kiosk run of `seconds` is measured at steady state: after its start (fonts,
    window, first frames) and just before its stop, in seconds from the start."""
    return min(2.0, seconds / 4), max(seconds - 0.3, seconds / 2)


def opengl_loaded() -> bool:
    """Whether an OpenGL library is mapped into this process (Linux /proc; False elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(lib in maps for lib in GL_LIBRARIES)


def main(argv: list[str] | None = None) -> int:
    from installation.kiosk import run_with_runtime
    from installation.runtime import Runtime, build_runtime
    from installation.sources.demo import demo_clip_path

    p = argparse.ArgumentParser(
        description="the kiosk on the demo clip; prints its peak RSS and steady CPU as JSON"
    )
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--config", type=Path, default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    xpid = int(os.environ[XSERVER_PID_ENV]) if os.environ.get(XSERVER_PID_ENV) else None
    rt = build_runtime(args.config, keep_frame=True)
    cfg = kiosk_config(rt.config, demo_clip_path(), heatmaps=True)
    stop = threading.Event()
    timer = threading.Timer(args.seconds, stop.set)
    # Steady state: the process's CPU (all its threads) and the X server's, between a moment
    # after the window opened and one just before the stop, as the bench's own kiosk runs.
    snaps: list[tuple[float, float, float, bool]] = []

    def snap() -> None:
        x = cpu_seconds(Path(f"/proc/{xpid}/stat")) if xpid is not None else 0.0
        snaps.append((time.monotonic(), time.process_time(), x, opengl_loaded()))

    marks = [threading.Timer(t, snap) for t in steady_marks(args.seconds)]
    timer.start()
    for mark in marks:
        mark.start()
    try:
        run_with_runtime(Runtime(cfg, rt.classifiers, rt.pipeline), stop)
    finally:
        timer.cancel()
        for mark in marks:
            mark.cancel()
    out: dict[str, Any] = {"peak_rss_mb": own_peak_rss_mb()}
    if len(snaps) == 2 and snaps[1][0] > snaps[0][0]:
        (ta, ca, xa, _), (tb, cb, xb, gl) = snaps
        out["cpu_percent"] = round(100 * (cb - ca) / (tb - ta), 1)
        out["xserver_cpu_percent"] = round(100 * (xb - xa) / (tb - ta), 1) if xpid else None
        out["opengl_loaded"] = gl
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
