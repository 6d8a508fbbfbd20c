"""Sources OpenCV's VideoCapture reads: cameras, video files, RTSP/HTTP streams, GStreamer."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from installation.sources.base import Pacer, SourceError, fit_size, mask_credentials
from installation.types import Frame

logger = logging.getLogger(__name__)

H264_HINT = "re-encode it with mp4v or MJPG (this OpenCV build cannot decode H.264)"


class CaptureSource:
    """One cv2.VideoCapture. `kind` is camera | file | stream | gstreamer."""

    def __init__(
        self,
        target: int | str,
        kind: str,
        *,
        width: int,
        height: int,
        fps: float,
        loop: bool,
        realtime: bool,
    ) -> None:
        self.kind = kind
        self.is_live = kind != "file"
        self.description = mask_credentials(str(target)) if kind != "camera" else f"camera {target}"
        self._width, self._height, self._loop = width, height, loop
        self._index = 0
        if kind == "gstreamer":
            if "GStreamer:                   YES" not in cv2.getBuildInformation():
                raise SourceError(
                    f"{self.description}: this OpenCV build has no GStreamer support; use a "
                    "camera index, /dev/videoN or a file, or install an OpenCV built with GStreamer"
                )
            cap = cv2.VideoCapture(str(target), cv2.CAP_GSTREAMER)
        elif kind == "camera":
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if isinstance(target, str) else cv2.CAP_ANY)
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            cap.set(cv2.CAP_PROP_FPS, fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of stale ones
        else:
            cap = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_hint(target))
        self._cap = cap
        src_fps = cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = float(src_fps) if 0 < src_fps < 1000 else float(fps)
        self._pacer = Pacer(self.nominal_fps, realtime and kind == "file")
        self._first: np.ndarray | None = None
        if kind == "file":
            ok, first = cap.read()
            if not ok or first is None:
                cap.release()
                raise SourceError(f"{self.description}: no frames could be decoded; {H264_HINT}")
            self._first = first

    def _open_hint(self, target: int | str) -> str:
        if self.kind == "camera":
            return (
                f"{self.description}: cannot open the camera; check the cable, that no other "
                "program uses it, and that this user is in the 'video' group (ls /dev/video*)"
            )
        if self.kind == "file":
            return f"{self.description}: cannot open the video; {H264_HINT}"
        return f"{self.description}: cannot connect; check the URL, network and credentials"

    def read(self) -> Frame | None:
        if self._first is not None:
            image: np.ndarray = self._first
            self._first = None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.kind == "file" and self._loop and self._index > 0:
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, image = self._cap.read()
                if not ok or image is None:
                    return None
        self._pacer.wait()
        frame = Frame(
            index=self._index,
            t=time.monotonic(),
            image=fit_size(image, self._width, self._height),
        )
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()


def is_camera(uri: str) -> bool:
    return uri.isdigit() or uri.startswith("/dev/video")


def open_capture(
    uri: str, *, width: int, height: int, fps: float, loop: bool, realtime: bool
) -> CaptureSource:
    def make(target: int | str, kind: str) -> CaptureSource:
        return CaptureSource(
            target, kind, width=width, height=height, fps=fps, loop=loop, realtime=realtime
        )

    if uri.isdigit():
        return make(int(uri), "camera")
    if uri.startswith("/dev/video"):
        if not Path(uri).exists():
            raise SourceError(
                f"{uri}: no such camera device; check the cable and `ls /dev/video*`, "
                "then set source.uri to an existing device"
            )
        return make(uri, "camera")
    if " ! " in uri:
        return make(uri, "gstreamer")
    if "://" in uri:
        return make(uri, "stream")
    path = Path(uri)
    if not path.is_file():
        raise SourceError(f"{uri}: no such video file; check the path in source.uri")
    return make(str(path), "file")
