"""Sources OpenCV's VideoCapture reads: cameras, video files, RTSP/HTTP streams, GStreamer."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from installation.sources.base import Framer, Pacer, SourceError, mask_credentials
from installation.types import Frame

logger = logging.getLogger(__name__)

Kind = Literal["camera", "file", "stream", "gstreamer"]

H264_HINT = "re-encode it with mp4v or MJPG (H.264 is not supported by this OpenCV build)"
CAMERA_HINT = (
    "check the cable, that no other program uses the camera, and that this user may open it "
    "(group 'video'; `ls -l /dev/video*`)"
)
FILE_CHECK_S = 1.0  # how often a playing file is checked for deletion or replacement
STREAM_TIMEOUT_MS = 5000  # an unreachable camera must not block the capture thread for minutes


def has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines (the PyPI wheels cannot)."""
    m = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(m and m.group(1).upper() == "YES")


class CaptureSource:
    """One cv2.VideoCapture. `kind` is camera | file | stream | gstreamer."""

    def __init__(
        self,
        target: int | str,
        kind: Kind,
        *,
        width: int,
        height: int,
        fps: float,
        loop: bool,
        realtime: bool,
    ) -> None:
        self.kind = kind
        self.is_live = kind != "file"
        self.description = f"camera {target}" if kind == "camera" else mask_credentials(str(target))
        self._target = target
        self._loop = loop
        self._file_params: list[int] = []  # a file's open parameters, for a reopen at its end
        self._cap = self._open(target, width, height, fps, realtime)
        src_fps = self._cap.get(cv2.CAP_PROP_FPS)
        # Cameras and streams report what they deliver; files what they were recorded at.
        self.nominal_fps = float(src_fps) if 0 < src_fps < 1000 else float(fps)
        self._framer = Framer(width, height, Pacer(self.nominal_fps, realtime and kind == "file"))
        self._first: np.ndarray | None = None
        # Files: what was opened (a deleted, replaced or in-place rewritten or truncated file is
        # noticed, not looped silently from the still-open descriptor) and how many frames its
        # container says it holds.
        self._identity: tuple[int, ...] | None = None
        self._checked_at = 0.0
        self.expected_frames: int | None = None
        if kind == "file":
            self._identity = _file_identity(str(target))
            count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.expected_frames = int(count) if 0 < count < 1e9 else None
            # Decode one frame now, so a file OpenCV cannot decode fails at open, not mid-run.
            ok, first = self._cap.read()
            if not ok or first is None:
                self._cap.release()
                raise SourceError(f"{self.description}: no frames could be decoded; {H264_HINT}")
            self._first = first

    def _open(
        self, target: int | str, width: int, height: int, fps: float, realtime: bool
    ) -> cv2.VideoCapture:
        if self.kind == "gstreamer":
            if not has_gstreamer():
                raise SourceError(
                    f"{self.description}: this OpenCV build has no GStreamer support (the PyPI "
                    "wheels have none); use a camera index, /dev/videoN, a file or an rtsp:// URL, "
                    "or install an OpenCV built with GStreamer (Debian: python3-opencv)"
                )
            cap = cv2.VideoCapture(str(target), cv2.CAP_GSTREAMER)
        elif self.kind == "camera":
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if isinstance(target, str) else cv2.CAP_ANY)
            if cap.isOpened():
                # Ask for the configured mode; cameras may ignore it, fit_size() copes.
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
                cap.set(cv2.CAP_PROP_FPS, fps)
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of stale ones
        elif self.kind == "stream":
            cap = cv2.VideoCapture(
                str(target),
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                ],
            )
        else:
            # A file played at its own pace needs one frame per period, which one decoder thread
            # gives with the least CPU (the 640x480 mp4v demo: 0.45 ms a frame against 0.72 ms
            # across FFmpeg's default thread per core); replay reads flat out and keeps those.
            self._file_params = [cv2.CAP_PROP_N_THREADS, 1] if realtime else []
            cap = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG, self._file_params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_hint())
        return cap

    def _open_hint(self) -> str:
        if self.kind == "camera":
            return f"{self.description}: cannot open the camera; {CAMERA_HINT}"
        if self.kind == "file":
            return f"{self.description}: no frames could be decoded (cannot open it); {H264_HINT}"
        if self.kind == "gstreamer":
            return (
                f"{self.description}: GStreamer cannot start this pipeline; "
                "test it with gst-launch-1.0"
            )
        return (
            f"{self.description}: cannot connect; check the address, the network, the camera's "
            "credentials and that it serves this stream path"
        )

    def read(self) -> Frame | None:
        image = self._next_image()
        return None if image is None else self._framer.frame(image)

    def _check_file(self, force: bool = False) -> None:
        """Raise SourceError when the file played was deleted, replaced, or changed in place
        (truncated, rewritten): at most once a second, and at every loop restart."""
        if self._identity is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < FILE_CHECK_S:
            return
        self._checked_at = now
        try:
            same = _file_identity(str(self._target)) == self._identity
        except OSError:
            same = False
        if not same:
            raise SourceError(
                f"{self.description}: the file was deleted, replaced or changed while playing; "
                "check the path in source.uri (the file there now is opened on the next retry)"
            )

    def shortfall(self) -> str | None:
        """After the end of a file: why fewer frames came than its container holds, else None
        (a file truncated or corrupted while read stops early without an error from OpenCV)."""
        if self.expected_frames is None or self._framer.count >= self.expected_frames - 1:
            return None
        return (
            f"{self.description}: {self._framer.count} of {self.expected_frames} frames could be "
            "read; the file ends early (truncated or corrupt)"
        )

    def _next_image(self) -> np.ndarray | None:
        if self._first is not None:
            image, self._first = self._first, None
            return image
        if self._loop:
            self._check_file()
        ok, image = self._cap.read()
        if ok and image is not None:
            return image
        if self.is_live:
            raise SourceError(
                f"{self.description}: stopped delivering frames; "
                + (CAMERA_HINT if self.kind == "camera" else "check the network and the camera")
            )
        if not self._loop or self._framer.count == 0:  # an empty file must not spin
            return None
        # End of the file: start again (the kiosk plays recordings in a loop).
        self._check_file(force=True)
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._cap.read()
        if not ok or image is None:  # some containers cannot seek: reopen instead
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG, self._file_params)
            ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(f"{self.description}: cannot restart the video; {H264_HINT}")
        return image

    def close(self) -> None:
        self._cap.release()


def _file_identity(path: str) -> tuple[int, ...]:
    """Device, inode, size and modification time: a copy over the file in place or a truncation
    keeps the inode but not the size or the time."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def is_camera(uri: str) -> bool:
    return uri.isdigit() or uri.startswith("/dev/video")


def _check_device(uri: str) -> None:
    path = Path(uri)
    if not path.exists():
        raise SourceError(
            f"{uri}: no such camera device; check the cable and `ls /dev/video*`, "
            "then set source.uri to an existing device"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise SourceError(
            f"{uri}: permission denied; add this user to the 'video' group "
            "(sudo usermod -aG video $USER, then log in again)"
        )


def open_capture(
    uri: str, *, width: int, height: int, fps: float, loop: bool, realtime: bool
) -> CaptureSource:
    """Classify the URI and open it. Raises SourceError naming the URI and the fix."""

    def make(target: int | str, kind: Kind) -> CaptureSource:
        return CaptureSource(
            target, kind, width=width, height=height, fps=fps, loop=loop, realtime=realtime
        )

    if uri.isdigit():
        return make(int(uri), "camera")
    if uri.startswith("/dev/video"):
        _check_device(uri)
        return make(uri, "camera")
    if " ! " in uri:
        return make(uri, "gstreamer")
    if "://" in uri:
        return make(uri, "stream")
    path = Path(uri).expanduser()
    if not path.exists():
        raise SourceError(
            f"{uri}: no such video file or image folder; check the path in source.uri"
        )
    if not path.is_file():
        raise SourceError(f"{uri}: not a video file; check the path in source.uri")
    if path.stat().st_size == 0:
        raise SourceError(f"{uri}: the file is empty (0 bytes), no frames could be decoded")
    return make(str(path), "file")
