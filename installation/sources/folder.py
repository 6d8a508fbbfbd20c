"""A folder of images, read in natural name order (frame_2 before frame_10): stills, tests and
recorded sessions exported as images."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from installation.sources.base import Framer, Pacer, SourceError
from installation.types import Frame

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}


def _natural_key(path: Path) -> list[int | str]:
    # Digits compare as numbers: "frame_2" < "frame_10", as a recording's frames should.
    parts: list[int | str] = []
    for chunk in re.split(r"(\d+)", path.name):
        parts.append(int(chunk) if chunk.isdigit() else chunk.lower())
    return parts


class FolderSource:
    """Images as frames. Unreadable files are skipped (counted in `unreadable`) and logged."""

    is_live = False

    def __init__(
        self, folder: Path, *, width: int, height: int, fps: float, loop: bool, realtime: bool
    ) -> None:
        self.description = str(folder)
        self.nominal_fps = float(fps)
        try:
            entries = list(folder.iterdir())
        except OSError as exc:
            raise SourceError(f"{folder}: cannot list the folder ({exc.strerror})") from None
        self._files = sorted(
            (p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=_natural_key,
        )
        if not self._files:
            raise SourceError(
                f"{folder}: no images (.png, .jpg, ...) in this folder; check source.uri"
            )
        self._loop = loop
        self._pos = 0
        self._framer = Framer(width, height, Pacer(fps, realtime))
        self._folder = folder
        self.unreadable = 0  # times an image could not be decoded (each image logged once)
        self._warned: set[Path] = set()  # bounded by the folder's listing
        self.missing = 0  # images listed at open that were gone when their turn came
        # Decode the first readable image now, so a folder of broken files fails at open.
        self._first = self._next_image(allow_wrap=False)
        if self._first is None:
            raise SourceError(
                f"{folder}: none of its {len(self._files)} images can be decoded; "
                "save them as PNG or JPEG"
            )

    def _next_image(self, allow_wrap: bool) -> np.ndarray | None:
        tried = 0
        while tried < len(self._files):
            if self._pos >= len(self._files):
                if not allow_wrap:
                    return None
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            tried += 1
            # Read here, decode from memory: cv2.imread writes its own warning to stderr for
            # each file that is gone, one line per image on every retry of a vanished folder.
            try:
                data = np.fromfile(path, np.uint8)
            except OSError:
                self.missing += 1  # one line for the whole folder below, not one per image
                continue
            # gray / 16-bit -> BGR uint8; None for an empty or undecodable file
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if image is not None:
                return image
            self.unreadable += 1
            if path not in self._warned:  # a looping folder: once, not on every pass
                self._warned.add(path)
                logger.warning("%s: unreadable image, skipped (on every pass)", path)
        return None

    def read(self) -> Frame | None:
        if self._first is not None:
            image: np.ndarray | None = self._first
            self._first = None
        else:
            image = self._next_image(allow_wrap=self._loop)
        if image is None:
            if self._loop:
                # A looping folder never ends: its images vanished (a share unmounted, a sync
                # emptying it). The capture thread reports the camera unavailable and reopens
                # the folder with backoff, so it plays again once the images are back.
                raise SourceError(
                    f"{self._folder}: its images vanished or can no longer be read; "
                    "waiting for them to come back (check the folder in source.uri)"
                )
            return None
        return self._framer.frame(image)

    def shortfall(self) -> str | None:
        """After the end: why fewer frames came than the folder listed at open, else None."""
        if not (self.unreadable or self.missing):
            return None
        return (
            f"{self._folder}: {self._framer.count} of {len(self._files)} images read "
            f"({self.unreadable} unreadable, {self.missing} gone while reading)"
        )

    def close(self) -> None:
        pass  # nothing held open; the file list stays for shortfall()
