"""Frame sources by URI, and the capture thread that keeps only the newest frame.

`open_source()` is the one entry point; `LatestFrameGrabber` runs a source on its own thread
for the kiosk; `replay` reads a source synchronously, frame by frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

from installation.sources.base import FrameSource, SourceError, mask_credentials
from installation.sources.capture import Backoff, LatestFrameGrabber
from installation.sources.folder import FolderSource
from installation.sources.opencv_source import CaptureSource, has_gstreamer, open_capture

logger = logging.getLogger(__name__)

__all__ = [
    "Backoff",
    "CaptureSource",
    "FolderSource",
    "FrameSource",
    "LatestFrameGrabber",
    "SourceError",
    "has_gstreamer",
    "mask_credentials",
    "open_source",
]


def open_source(
    uri: str,
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 30,
    loop: bool = False,
    realtime: bool = False,
) -> FrameSource:
    """Open a frame source. Raises SourceError naming the URI and the fix.

    uri: camera index ('0'), /dev/videoN, video file, image folder, rtsp:// or http(s):// URL,
    GStreamer pipeline (contains ' ! '), or 'demo' (the generated demo clip).
    width, height: frames are scaled (centre-cropped to that aspect first) to this size when the
    source delivers another one. fps: requested camera rate, and the pace of image folders.
    loop: restart files and folders at their end (kiosk); False ends them (replay).
    realtime: pace files and folders at their frame rate (kiosk); False reads as fast as possible.
    """
    uri = uri.strip()
    if not uri:
        raise SourceError("source.uri is empty; set a camera index, file, folder, URL or 'demo'")
    if uri == "demo":
        from installation.sources.demo import demo_clip_path

        try:
            uri = str(demo_clip_path())
        except OSError as exc:  # the cache folder: not creatable, read-only, full
            where = f" ({exc.filename})" if exc.filename else ""
            raise SourceError(
                f"demo: the demo clip cannot be made in the cache folder{where}: "
                f"{exc.strerror or exc}; set XDG_CACHE_HOME to a writable folder"
            ) from None
    if Path(uri).expanduser().is_dir():
        return FolderSource(
            Path(uri).expanduser(),
            width=width,
            height=height,
            fps=fps,
            loop=loop,
            realtime=realtime,
        )
    source = open_capture(uri, width=width, height=height, fps=fps, loop=loop, realtime=realtime)
    logger.debug("opened %s (%s, %.1f fps)", source.description, source.kind, source.nominal_fps)
    return source
