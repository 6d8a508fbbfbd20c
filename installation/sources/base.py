"""What every frame source shares: the error type, the protocol, URI masking, sizing, pacing."""

from __future__ import annotations

import re
import time
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from installation.types import Frame, ImageU8


class SourceError(OSError):
    """A source that cannot be opened or stopped delivering frames.

    The message names the URI (credentials masked) and what to do about it.
    """


@runtime_checkable
class FrameSource(Protocol):
    """A synchronous frame reader; one thread owns it (OpenCV captures are not thread-safe)."""

    description: str  # for logs and the screen; never holds credentials
    nominal_fps: float
    is_live: bool  # camera, RTSP/HTTP, GStreamer

    def read(self) -> Frame | None:
        """The next frame (BGR uint8 HxWx3, t = time.monotonic()); None at the end of a file or
        folder that does not loop. Raises SourceError when a device or stream fails."""
        ...

    def close(self) -> None: ...

    def shortfall(self) -> str | None:
        """After the end of a file or folder: why fewer frames came than it held (truncated,
        corrupt, images gone while reading), else None. Live sources return None."""
        ...


# scheme://user:password@host anywhere in the string (GStreamer pipelines embed URLs too).
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:]*):[^/@\s]*@")
# Query parameters and GStreamer element properties that carry secrets.
_SECRET = re.compile(
    r"(?i)\b(password|passwd|pass|pwd|token|key|secret|user-pw|proxy-pw)=([^&\s!]+)"
)


def mask_credentials(uri: str) -> str:
    """`rtsp://user:pw@host/x?token=t` -> `rtsp://user:***@host/x?token=***` for logs/screens."""
    return _SECRET.sub(r"\1=***", _USERINFO.sub(r"\1:***@", uri.strip()))


def fit_size(image: np.ndarray, width: int, height: int) -> ImageU8:
    """Scale to exactly width x height; a frame of that size is returned as is (no copy).

    A source with another aspect ratio (a 16:9 camera for a 4:3 kiosk) is cropped to the
    target aspect around its centre first: a stretched face is a different face to the models.
    """
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if w * height > h * width:  # wider than the target: trim left and right
        cw, ch = max(1, round(h * width / height)), h
    else:  # taller (or equal aspect): trim top and bottom
        cw, ch = w, max(1, round(w * height / width))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    window = image[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if cw >= width else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(window, (width, height), interpolation=interp))


class Framer:
    """Turns a source's decoded images into `Frame`s: sized to the kiosk, numbered, released at
    the pacer's rate. Every source's `read` ends here."""

    def __init__(self, width: int, height: int, pacer: Pacer) -> None:
        self._width, self._height = width, height
        self._pacer = pacer
        self.count = 0  # frames made so far; the next one's index

    def frame(self, image: np.ndarray) -> Frame:
        self._pacer.wait()
        frame = Frame(self.count, time.monotonic(), fit_size(image, self._width, self._height))
        self.count += 1
        return frame


class Pacer:
    """Releases frames at `fps` on the monotonic clock (kiosk playback of files and folders);
    disabled, it returns at once (replay reads as fast as it can).

    Running late by more than a frame restarts the schedule rather than bursting to catch up,
    so a stall never turns into fast-forward.
    """

    def __init__(self, fps: float, enabled: bool) -> None:
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._enabled = enabled and self._period > 0
        self._next: float | None = None

    def wait(self) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._next is None or now - self._next > self._period:
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self._period
