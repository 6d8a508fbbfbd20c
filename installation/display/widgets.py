"""Drawing helpers: fonts, cached text, bars, the guide-box brackets, verdict symbols."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pygame

from installation.display.palette import BG, RGB, TEXT, TRACK, WHITE


class Scaled:
    """Lengths given at the 1080p reference, scaled by `u` (screen height / 1080)."""

    u: float

    def px(self, v: float) -> int:
        return max(round(v * self.u), 1)


logger = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def font(size: int) -> pygame.font.Font:
    # pygame's bundled FreeSans Bold: covers äöüßéèàç and the em dash / ellipsis of the texts,
    # so a kiosk needs no system fonts.
    return pygame.font.Font(None, size)


@lru_cache(maxsize=64)
def cap_height(size: int) -> int:
    """Height in pixels of a capital H at this font size, measured from the rendered glyph
    (the legibility rule is stated in cap height, not in the nominal font size)."""
    return int(font(size).render("H", True, WHITE).get_bounding_rect().height)


def quit_pygame() -> None:
    """pygame.quit(), dropping cached Font objects first: one used after quit segfaults."""
    font.cache_clear()
    cap_height.cache_clear()
    pygame.quit()


# What a piece of text is on the screen: the main layer (headline, body, labels, the verdict
# word, the camera notice and language keys as "chrome") or the small print ("details").
LAYERS = ("headline", "verdict", "body", "label", "chrome", "details")


@dataclass(frozen=True)
class Drawn:
    """One piece of text as drawn: what it said, at which size and colours, where it landed and
    the box it had to stay inside (the tests read these to check words, type size, contrast and
    overflow on every screen)."""

    layer: str
    text: str
    size: int
    fg: RGB
    bg: RGB
    rect: pygame.Rect
    box: pygame.Rect

    def moved(self, dx: int, dy: int) -> Drawn:
        return Drawn(
            self.layer,
            self.text,
            self.size,
            self.fg,
            self.bg,
            self.rect.move(dx, dy),
            self.box.move(dx, dy),
        )


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

    def put(
        self,
        surface: pygame.Surface,
        layer: str,
        text: str,
        size: int,
        *,
        color: RGB,
        bg: RGB,
        box: pygame.Rect,
        **anchor: Any,
    ) -> Drawn:
        """Draw `text` at the anchor (e.g. topleft=(x, y)) and say what was drawn where."""
        s = self.render(text, size, color)
        rect = s.get_rect(**anchor)
        surface.blit(s, rect)
        return Drawn(layer, text, size, color, bg, rect, box)

    def fit(self, text: str, size: int, width: int, smallest: int = 8) -> int:
        """The largest pixel size <= `size` at which `text` fits in `width` (long translations)."""
        while size > smallest and font(size).size(text)[0] > width:
            size = max(int(size * 0.92), smallest)
        return size

    def wrap(self, text: str, size: int, width: int) -> list[str]:
        f = font(size)
        lines: list[str] = []
        line = ""
        for word in unbreakable_words(text):
            trial = f"{line} {word}".strip()
            if f.size(trial)[0] <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        if line:
            lines.append(line)
        return lines


# French sets a space before ? ! : ; » and %, and after «; a line must never begin with the mark
# (a lone "?" under a question). Those spaces join their neighbours into one word for wrapping;
# they are drawn as plain spaces (the bundled font has no glyph for U+00A0).
_GLUED = re.compile(r" (?=[?!:;»%])|(?<=«) ")
_JOIN = "\x00"  # a placeholder no screen text contains; str.split() does not split on it


def unbreakable_words(text: str) -> list[str]:
    """The words a line may break between: whitespace-separated, except that a space before
    ? ! : ; » % or after « belongs to the word beside it."""
    return [w.replace(_JOIN, " ") for w in _GLUED.sub(_JOIN, text).split()]


def bar(
    surface: pygame.Surface,
    rect: pygame.Rect,
    value: float,
    color: RGB,
    *,
    marker: float | None = None,
    marker_width: int = 3,
    interval: tuple[float, float] | None = None,
) -> None:
    """A horizontal bar filled to `value` in [0, 1], with an optional tick (the threshold) and
    an optional thin line over [lo, hi] (a 95 % interval, with end caps)."""
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
    if interval is not None:
        lo, hi = (rect.x + int(rect.width * min(max(v, 0.0), 1.0)) for v in interval)
        w = max(rect.height // 6, 2)
        y = rect.centery
        pygame.draw.line(surface, WHITE, (lo, y), (hi, y), w)
        for x in (lo, hi):
            pygame.draw.line(surface, WHITE, (x, rect.y + 2), (x, rect.bottom - 3), w)


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
