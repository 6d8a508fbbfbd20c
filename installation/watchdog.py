"""systemd's notify protocol and watchdog: a frozen kiosk is restarted, not left on a still screen.

The unit is `Type=notify` with `WatchdogSec=`: systemd restarts the kiosk when the pings stop.
`Watchdog.tick` runs on the render loop (so a hung loop stops the pings) and pings only while
frames really move: a camera that reports OK but delivers no new frame for `stall_s` (a read
blocked inside a driver) or a pipeline thread that stops judging new frames stops the pings too.
A camera that is unplugged is not a fault of the process (the kiosk shows a notice and reopens
it), and a kiosk paused by staff judges nothing on purpose: both keep pinging.

The protocol is a datagram of `KEY=VALUE` lines to the unix socket named by $NOTIFY_SOCKET
(`@` = abstract namespace); outside systemd that variable is unset and everything is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; a no-op when $NOTIFY_SOCKET is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC", "")
        # Ping at half the interval systemd waits for, as sd_watchdog_enabled(3) advises.
        self.ping_interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str) -> bool:
        if not self.address:
            return False
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never block the render loop: a receiver whose queue is full (not systemd,
                # which reads at once) gets this message dropped, not the exhibit frozen.
                sock.setblocking(False)
                sock.sendto(msg, self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a broken socket must not flood the journal
                logger.warning("systemd notify socket %s: %s", self.address.lstrip("\0"), exc)
                self._warned = True
            return False


class Watchdog:
    def __init__(
        self,
        notifier: Notifier,
        stall_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.stall_s = stall_s
        self._clock = clock
        self._ready = False
        self._last_ping = -1e18
        self._last_warn = -1e18
        self._status = ""
        self.pings = 0

    def healthy(
        self,
        now: float,
        *,
        source_ok: bool,
        frame_t: float | None,
        judged_t: float | None,
        paused: bool,
    ) -> bool:
        """Frames move, or there is nothing that should move (camera lost, paused)."""
        if not source_ok:
            return True  # the kiosk handles it on screen and reopens the camera
        if frame_t is None or now - frame_t > self.stall_s:
            return False  # the source says OK but delivers nothing: a blocked read
        if paused:
            return True
        return judged_t is not None and now - judged_t <= self.stall_s

    def tick(
        self,
        *,
        source_ok: bool,
        frame_t: float | None,
        judged_t: float | None,
        paused: bool,
        status: str,
    ) -> None:
        """Called once per turn of the render loop, after the screen was drawn."""
        if not self.notifier.enabled:
            return
        now = self._clock()
        if not self._ready:
            self.notifier.send(READY="1", STATUS=status)
            self._ready, self._status = True, status
        elif status != self._status:
            self.notifier.send(STATUS=status)
            self._status = status
        interval = self.notifier.ping_interval_s
        if interval is None or now - self._last_ping < interval:
            return
        ok = self.healthy(
            now, source_ok=source_ok, frame_t=frame_t, judged_t=judged_t, paused=paused
        )
        if ok and self.notifier.send(WATCHDOG="1"):
            self._last_ping = now
            self.pings += 1
        elif not ok and now - self._last_warn >= 10 * interval:
            logger.error(
                "no new frames for %.0f s although the source reports OK (or the pipeline "
                "stopped): no watchdog ping; systemd will restart the kiosk",
                self.stall_s,
            )
            self._last_warn = now
