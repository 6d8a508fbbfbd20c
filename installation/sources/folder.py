"""A folder of images, read in name order: for tests, stills and recorded sessions."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from installation.sources.base import Pacer, SourceError, fit_size
from installation.types import Frame

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}


class FolderSource:
    is_live = False

    def __init__(
        self, folder: Path, *, width: int, height: int, fps: float, loop: bool, realtime: bool
    ) -> None:
        self.description = str(folder)
        self.nominal_fps = float(fps)
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(
                f"{folder}: no images (.png, .jpg, ...) in this folder; check source.uri"
            )
        self._width, self._height, self._loop = width, height, loop
        self._pos = 0
        self._index = 0
        self._pacer = Pacer(fps, realtime)
        self.unreadable = 0

    def read(self) -> Frame | None:
        for _ in range(len(self._files)):
            if self._pos >= len(self._files):
                if not self._loop:
                    return None
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.unreadable += 1
                logger.warning("%s: unreadable image, skipped", path)
                continue
            self._pacer.wait()
            frame = Frame(self._index, time.monotonic(), fit_size(image, self._width, self._height))
            self._index += 1
            return frame
        raise SourceError(f"{self.description}: none of the images can be read")

    def close(self) -> None:
        pass
