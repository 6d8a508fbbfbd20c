"""Drawing helpers: cached text, bars, the guide-box brackets, and the palette.

Palette: Okabe-Ito (colour-blind safe). Verdicts also carry a word and a symbol, never colour
alone. Text is near-white on near-black (contrast > 15:1).
"""

from __future__ import annotations

from functools import lru_cache

import pygame

BG = (14, 17, 22)
PANEL = (28, 33, 41)
TEXT = (245, 245, 245)
MUTED = (176, 184, 194)
TRACK = (58, 66, 78)
BLUE = (86, 180, 233)  # Okabe-Ito sky blue: "face"
ORANGE = (230, 159, 0)  # Okabe-Ito orange: "no face"
YELLOW = (240, 228, 66)
WHITE = (255, 255, 255)


@lru_cache(maxsize=16)
def font(size: int) -> pygame.font.Font:
    # pygame's bundled FreeSans Bold: Latin-1 complete (äöüéèç), no system fonts needed.
    return pygame.font.Font(None, size)


def quit_pygame() -> None:
    """pygame.quit(), dropping cached Font objects first: one used after quit segfaults."""
    font.cache_clear()
    pygame.quit()


class TextCache:
    """Rendered text surfaces keyed by (text, size, colour): a kiosk redraws the same strings."""

    def __init__(self, max_items: int = 512) -> None:
        self._cache: dict[tuple[str, int, tuple[int, int, int]], pygame.Surface] = {}
        self._max = max_items

    def render(self, text: str, size: int, color: tuple[int, int, int] = TEXT) -> pygame.Surface:
        key = (text, size, color)
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= self._max:
                self._cache.clear()
            surf = font(size).render(text, True, color).convert_alpha()
            self._cache[key] = surf
        return surf

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
    color: tuple[int, int, int],
    marker: float | None = None,
) -> None:
    """A horizontal bar filled to `value` in [0, 1], with an optional tick (the threshold)."""
    radius = rect.height // 2
    pygame.draw.rect(surface, TRACK, rect, border_radius=radius)
    fill = rect.copy()
    fill.width = max(int(rect.width * min(max(value, 0.0), 1.0)), 0)
    if fill.width > 0:
        pygame.draw.rect(surface, color, fill, border_radius=radius)
    if marker is not None:
        x = rect.x + int(rect.width * marker)
        pygame.draw.line(surface, WHITE, (x, rect.y - 6), (x, rect.bottom + 5), 3)


def brackets(
    surface: pygame.Surface, rect: pygame.Rect, color: tuple[int, int, int], width: int = 6
) -> None:
    """Corner brackets of the guide box: framing, without hiding the face."""
    arm = max(rect.width // 5, 12)
    x0, y0, x1, y1 = rect.left, rect.top, rect.right, rect.bottom
    for (cx, cy), (dx, dy) in (
        ((x0, y0), (1, 1)),
        ((x1, y0), (-1, 1)),
        ((x0, y1), (1, -1)),
        ((x1, y1), (-1, -1)),
    ):
        pygame.draw.line(surface, color, (cx, cy), (cx + dx * arm, cy), width)
        pygame.draw.line(surface, color, (cx, cy), (cx, cy + dy * arm), width)


def check_mark(
    surface: pygame.Surface, center: tuple[int, int], r: int, color: tuple[int, int, int]
) -> None:
    x, y = center
    pygame.draw.circle(surface, color, center, r)
    pts = [(x - r * 0.45, y + r * 0.02), (x - r * 0.12, y + r * 0.35), (x + r * 0.5, y - r * 0.35)]
    pygame.draw.lines(surface, BG, False, pts, max(r // 4, 3))


def cross_mark(
    surface: pygame.Surface, center: tuple[int, int], r: int, color: tuple[int, int, int]
) -> None:
    x, y = center
    pygame.draw.circle(surface, color, center, r)
    d = r * 0.4
    w = max(r // 4, 3)
    pygame.draw.line(surface, BG, (x - d, y - d), (x + d, y + d), w)
    pygame.draw.line(surface, BG, (x - d, y + d), (x + d, y - d), w)
