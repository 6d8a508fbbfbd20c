"""systemd notify and watchdog: real unix datagram sockets, the real kiosk and capture thread."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from installation.kiosk import run_with_runtime
from installation.runtime import build_runtime
from installation.sources.capture import LatestFrameGrabber
from installation.types import Frame
from installation.watchdog import Notifier, Watchdog
from tests.kiosk_fixtures import write_kiosk_config
from tests.waiting import wait_until


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.05)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_outside_systemd_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled and n.ping_interval_s is None and n.send(READY="1") is False
    Watchdog(n, stall_s=1).tick(
        source_ok=True, frame_t=None, judged_t=None, paused=False, status="x"
    )


def test_notifier_speaks_the_protocol(notify_socket: socket.socket) -> None:
    n = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "4000000"})
    assert n.ping_interval_s == 2.0
    assert n.send(READY="1", STATUS="source ok")
    assert received(notify_socket) == ["READY=1\nSTATUS=source ok"]


def test_abstract_socket_names_work() -> None:
    name = f"bias-mirror-test-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).send(WATCHDOG="1")
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_a_full_receiver_never_blocks_the_render_loop(notify_socket: socket.socket) -> None:
    """Nobody reads the socket: its queue fills, and each send must still return at once."""
    n = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    results: list[bool] = []
    sender = threading.Thread(
        target=lambda: results.extend(n.send(WATCHDOG="1") for _ in range(5000))
    )
    sender.start()
    sender.join(timeout=10)
    assert not sender.is_alive(), "sd_notify blocked on a full socket"
    assert results[0] is True and results[-1] is False  # later ones dropped, none blocked


def test_a_missing_socket_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.send(READY="1") is False and n.send(READY="1") is False
    assert caplog.text.count("notify socket") == 1


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_pings_only_while_frames_move(notify_socket: socket.socket) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "1000000"}
    clock = Clock()
    dog = Watchdog(Notifier(env), stall_s=5.0, clock=clock)

    def tick(**kw: object) -> list[str]:
        args: dict[str, object] = {
            "source_ok": True,
            "frame_t": clock.t - 0.03,
            "judged_t": clock.t - 0.05,
            "paused": False,
            "status": "source ok",
        }
        args.update(kw)
        dog.tick(**args)  # type: ignore[arg-type]
        clock.t += 1.0
        return received(notify_socket)

    assert tick() == ["READY=1\nSTATUS=source ok", "WATCHDOG=1"]
    assert tick() == ["WATCHDOG=1"]
    # A read blocked inside the driver: the source still says OK, the newest frame gets old.
    frozen = clock.t - 0.03
    assert tick(frame_t=frozen) == ["WATCHDOG=1"]  # 1 s old: not yet a stall
    clock.t += 5.0
    assert tick(frame_t=frozen) == []
    # A stalled pipeline thread: frames arrive, nothing is judged.
    assert tick(judged_t=clock.t - 30) == []
    # Camera unplugged (the kiosk shows it and reopens it) or paused by staff: still healthy.
    assert tick(source_ok=False, frame_t=frozen, status="source unavailable") == [
        "STATUS=source unavailable",
        "WATCHDOG=1",
    ]
    assert tick(judged_t=None, paused=True, status="source ok, paused") == [
        "STATUS=source ok, paused",
        "WATCHDOG=1",
    ]


class BlockingSource:
    """Fault injection: delivers 5 frames, then its read() blocks like a hung camera driver."""

    description = "hung camera"
    is_live = True

    def __init__(self, release: threading.Event) -> None:
        self.n = 0
        self.release = release

    def read(self) -> Frame | None:
        if self.n >= 5:
            self.release.wait()
            return None
        self.n += 1
        return Frame(self.n, time.monotonic(), np.zeros((48, 64, 3), np.uint8))

    def close(self) -> None:
        pass


def test_a_hung_camera_read_stops_the_watchdog() -> None:
    stop, release = threading.Event(), threading.Event()
    grabber = LatestFrameGrabber(lambda: BlockingSource(release), stop_event=stop)
    grabber.start()
    dog = Watchdog(Notifier({}), stall_s=0.3)
    try:
        assert wait_until(lambda: (f := grabber.latest()) is not None and f.index >= 4, 5)
        frame = grabber.latest()
        assert frame is not None and grabber.status().state.name == "OK"
        now = time.monotonic()
        assert dog.healthy(now, source_ok=True, frame_t=frame.t, judged_t=now, paused=False)

        def stalled() -> bool:
            now = time.monotonic()
            return not dog.healthy(now, source_ok=True, frame_t=frame.t, judged_t=now, paused=False)

        # The read is still blocked and the source still reports OK: within about stall_s the
        # watchdog must stop counting the kiosk as healthy.
        assert wait_until(stalled, 5)
        assert grabber.status().state.name == "OK" and grabber.latest() == frame
    finally:
        release.set()
        grabber.stop()


def test_the_kiosk_says_ready_and_pings_from_its_render_loop(
    tmp_path: Path,
    tiny_bundles: Path,
    notify_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    display = "{fullscreen: false, width: 960, height: 540, fps: 30}"
    cfg = write_kiosk_config(tmp_path, tiny_bundles, display)
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    msgs: list[str] = []
    done = threading.Event()

    def read() -> None:  # as systemd does: read each message as it comes
        while not done.is_set():
            msgs.extend(received(notify_socket))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        rt = build_runtime(cfg, keep_frame=True)
        app = run_with_runtime(rt, threading.Event(), max_frames=45)
    finally:
        done.set()
        reader.join()
    assert app.frames == 45
    assert msgs[0].startswith("READY=1\nSTATUS=source")
    assert msgs.count("WATCHDOG=1") >= 5  # about 1.5 s of moving frames


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 130), (signal.SIGHUP, 129)],
    ids=["systemd-stop", "ctrl-c", "hangup"],
)
def test_a_running_kiosk_stops_in_order_on_each_stop_signal(
    tmp_path: Path, tiny_bundles: Path, notify_socket: socket.socket, sig: int, code: int
) -> None:
    # The whole `bias-mirror run` process: READY from its render loop says it is up; the signal
    # then ends it in order. SIGHUP used to kill it on the spot; Ctrl-C used to exit 0.
    cfg = write_kiosk_config(tmp_path, tiny_bundles)
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.getsockname(), STATE_DIRECTORY=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "installation", "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        msgs: list[str] = []

        def ready() -> bool:
            msgs.extend(received(notify_socket))
            return any(m.startswith("READY=1") for m in msgs) or proc.poll() is not None

        assert wait_until(ready, timeout=60) and proc.poll() is None, proc.communicate()[1]
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert f"{signal.Signals(sig).name}: stopping" in err
    assert "Traceback" not in err


def test_a_hung_model_on_its_own_thread_stops_the_pings_until_it_returns(
    tmp_path: Path,
    tiny_bundles: Path,
    notify_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the right-hand model, judged on a thread of its own
    (installation.inference.concurrent), hangs inside predict for 2.5 s. The pipeline waits for
    it, nothing is judged, and within stall_s the render loop stops pinging (systemd would
    restart the kiosk); the screen keeps drawing the camera; pings come back when it returns."""
    display = "{fullscreen: false, width: 480, height: 270, fps: 30}"
    cfg = write_kiosk_config(tmp_path, tiny_bundles, display)
    cfg.write_text(cfg.read_text().replace("fps: 30}\nmodels", "fps: 30, stall_s: 0.5}\nmodels"))
    assert "stall_s: 0.5" in cfg.read_text()
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s while healthy
    rt = build_runtime(cfg, keep_frame=True)
    right = rt.classifiers["right"]
    judge = right.predict
    calls, hung = [0], threading.Event()
    release = threading.Event()
    hang_at: list[float] = []

    def hanging(crop: np.ndarray) -> object:
        calls[0] += 1
        if calls[0] == 10:  # about 1 s into the run, at 10 judged frames a second
            hang_at.append(time.monotonic())
            hung.set()
            threading.Timer(2.5, release.set).start()
            release.wait(10)
        return judge(crop)

    monkeypatch.setattr(right, "predict", hanging)
    pings: list[float] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            pings.extend(time.monotonic() for m in received(notify_socket) if "WATCHDOG=1" in m)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        app = run_with_runtime(rt, threading.Event(), max_frames=180)  # about 6 s
    finally:
        done.set()
        release.set()
        reader.join()
    assert hung.is_set() and app.frames == 180  # the screen kept drawing through the hang
    t0 = hang_at[0]
    before = [t for t in pings if t < t0]
    # From stall_s on (plus slack for a busy machine's threads) until the model returns.
    during = [t for t in pings if t0 + 0.5 + 0.5 < t < t0 + 2.5]
    after = [t for t in pings if t > t0 + 2.5]
    assert len(before) >= 3 and during == [] and len(after) >= 3, (before, during, after)
