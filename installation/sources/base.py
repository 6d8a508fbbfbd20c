"""What every frame source offers, and its error type."""

from __future__ import annotations

import re
import time
from typing import Protocol

import cv2
import numpy as np

from installation.types import Frame


class SourceError(OSError):
    """A source that cannot be opened or read; the message names the URI and the fix."""


class FrameSource(Protocol):
    description: str  # for logs and the screen; never holds credentials
    nominal_fps: float
    is_live: bool  # camera, RTSP, GStreamer: a None from read() means it was lost

    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file / folder that does not loop."""
        ...

    def close(self) -> None: ...


def mask_credentials(uri: str) -> str:
    """rtsp://user:secret@host/ -> rtsp://user:***@host/ for logs and the screen."""
    return re.sub(r"(//[^:/@]+):[^@/]+@", r"\1:***@", uri)


def fit_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize only when the source delivers another size (cameras may ignore the request)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class Pacer:
    """Plays files at their frame rate for the kiosk; replay reads as fast as it can."""

    def __init__(self, fps: float, enabled: bool) -> None:
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._enabled = enabled and self._period > 0
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
            self._next += self._period
        else:  # running late: do not try to catch up with a burst
            self._next = now + self._period
