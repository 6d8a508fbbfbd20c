"""Drawing helpers: fonts, cached text, bars, the guide-box brackets, verdict symbols."""

from __future__ import annotations

import logging
from functools import lru_cache

import pygame

from installation.display.palette import BG, RGB, TEXT, TRACK, WHITE

logger = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def font(size: int) -> pygame.font.Font:
    # pygame's bundled FreeSans Bold: covers äöüßéèàç and the em dash / ellipsis of the texts,
    # so a kiosk needs no system fonts.
    return pygame.font.Font(None, size)


def quit_pygame() -> None:
    """pygame.quit(), dropping cached Font objects first: one used after quit segfaults."""
    font.cache_clear()
    pygame.quit()


class TextCache:
    """Rendered text surfaces keyed by (text, size, colour): a kiosk redraws the same strings,
    and rendering a 1080p line of anti-aliased text costs ~0.1-0.5 ms, blitting it ~0.01 ms."""

    def __init__(self, max_items: int = 512) -> None:
        self._cache: dict[tuple[str, int, RGB], pygame.Surface] = {}
        self._max = max_items
        self.sizes_used: set[int] = set()  # pixel sizes drawn so far (legibility tests read it)

    def render(self, text: str, size: int, color: RGB = TEXT) -> pygame.Surface:
        key = (text, size, color)
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= self._max:
                self._cache.clear()
            surf = font(size).render(text, True, color).convert_alpha()
            self._cache[key] = surf
            self.sizes_used.add(size)
        return surf

    def fit(self, text: str, size: int, width: int, smallest: int = 8) -> int:
        """The largest pixel size <= `size` at which `text` fits in `width` (long translations)."""
        while size > smallest and font(size).size(text)[0] > width:
            size = max(int(size * 0.92), smallest)
        return size

    def wrap(self, text: str, size: int, width: int) -> list[str]:
        f = font(size)
        lines: list[str] = []
        line = ""
        for word in text.split():
            trial = f"{line} {word}".strip()
            if f.size(trial)[0] <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        if line:
            lines.append(line)
        return lines


def bar(
    surface: pygame.Surface,
    rect: pygame.Rect,
    value: float,
    color: RGB,
    *,
    marker: float | None = None,
    marker_width: int = 3,
) -> None:
    """A horizontal bar filled to `value` in [0, 1], with an optional tick (the threshold)."""
    radius = rect.height // 2
    pygame.draw.rect(surface, TRACK, rect, border_radius=radius)
    fill = rect.copy()
    fill.width = int(rect.width * min(max(value, 0.0), 1.0))
    if fill.width > 0:
        pygame.draw.rect(surface, color, fill, border_radius=min(radius, fill.width // 2))
    if marker is not None:
        x = rect.x + int(rect.width * marker)
        overhang = max(rect.height // 3, 4)
        pygame.draw.line(
            surface, WHITE, (x, rect.y - overhang), (x, rect.bottom + overhang), marker_width
        )


def brackets(surface: pygame.Surface, rect: pygame.Rect, color: RGB, width: int = 6) -> None:
    """Corner brackets of the guide box: framing, without hiding the face."""
    arm = max(rect.width // 5, 12)
    x0, y0, x1, y1 = rect.left, rect.top, rect.right - 1, rect.bottom - 1
    for (cx, cy), (dx, dy) in (
        ((x0, y0), (1, 1)),
        ((x1, y0), (-1, 1)),
        ((x0, y1), (1, -1)),
        ((x1, y1), (-1, -1)),
    ):
        # Rectangles, not lines: the corners stay square and the stroke sits inside the box.
        hx = cx if dx > 0 else cx - arm + 1
        vy = cy if dy > 0 else cy - arm + 1
        hy = cy if dy > 0 else cy - width + 1
        vx = cx if dx > 0 else cx - width + 1
        pygame.draw.rect(surface, color, (hx, hy, arm, width))
        pygame.draw.rect(surface, color, (vx, vy, width, arm))


def check_mark(surface: pygame.Surface, center: tuple[int, int], r: int, color: RGB) -> None:
    x, y = center
    pygame.draw.circle(surface, color, center, r)
    pts = [(x - r * 0.45, y + r * 0.02), (x - r * 0.12, y + r * 0.35), (x + r * 0.5, y - r * 0.35)]
    pygame.draw.lines(surface, BG, False, pts, max(r // 4, 3))


def cross_mark(surface: pygame.Surface, center: tuple[int, int], r: int, color: RGB) -> None:
    x, y = center
    pygame.draw.circle(surface, color, center, r)
    d = r * 0.4
    w = max(r // 4, 3)
    pygame.draw.line(surface, BG, (x - d, y - d), (x + d, y + d), w)
    pygame.draw.line(surface, BG, (x - d, y + d), (x + d, y - d), w)
