"""Frame sources by URI, and the capture thread that keeps only the newest frame."""

from __future__ import annotations

from pathlib import Path

from installation.sources.base import FrameSource, SourceError, mask_credentials
from installation.sources.capture import LatestFrameGrabber
from installation.sources.folder import FolderSource
from installation.sources.opencv_source import open_capture

__all__ = ["FrameSource", "LatestFrameGrabber", "SourceError", "mask_credentials", "open_source"]


def open_source(
    uri: str,
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 30,
    loop: bool = False,
    realtime: bool = False,
) -> FrameSource:
    """Camera index or /dev/videoN, video file, image folder, rtsp:// URL, GStreamer pipeline
    (contains ' ! '), or 'demo' (the generated demo clip). Raises SourceError."""
    if uri == "demo":
        from installation.sources.demo import demo_clip_path

        uri = str(demo_clip_path())
    if Path(uri).is_dir():
        return FolderSource(
            Path(uri), width=width, height=height, fps=fps, loop=loop, realtime=realtime
        )
    return open_capture(uri, width=width, height=height, fps=fps, loop=loop, realtime=realtime)
