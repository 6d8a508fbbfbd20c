"""The kiosk screen: the screen's headline, live mirror with the guide box, one panel per model,
and under the mirror the body text (or the rarity meter) and the small print.

Layout is computed from the screen size (reference 1920x1080, unit u = height / 1080): a header
band with the headline (and the language keys and camera notice on the right), a panel on each
side and the mirror between them. Attract mode keeps the live image but blurred and dimmed to a
soft impression of the room (nobody is recognisable), so the screen still reacts when someone
walks up. A kiosk running on one model (the other's bundle did not load) shows a resting notice
on that side and tells no comparison (wording's solo_* screens).

Redraw on change: the screen is five regions (header, two panels, mirror, text under the
mirror), each redrawn only when what it shows changed; a new camera frame alone redraws the
mirror. `dirty` lists the rectangles the last draw changed, for pygame.display.update.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from installation.display.mirror import Mirror
from installation.display.palette import BG, MUTED, RGB, TEXT, YELLOW
from installation.display.panels import MAIN_PX, SMALL_PX, Panel, UnavailablePanel
from installation.display.texts import Texts
from installation.display.widgets import Drawn, Scaled, TextCache, bar
from installation.display.wording import VERDICT_SCREENS, Copy, copy_for, screen_of
from installation.heatmap import Heatmaps
from installation.inference.card import Card
from installation.paths import TEXTS_DIR
from installation.types import SIDES, FrameResult, Region, SourceState, SourceStatus

logger = logging.getLogger(__name__)

HEADLINE_PX = 64  # cap height 32 px at 1080p
PAUSED_PX = 88
TOP = 140  # header band
HEADLINE_LINES = 2
CENTRE_NOTE_LINES = 4


class KioskView(Scaled):
    def __init__(
        self,
        size: tuple[int, int],
        cards: dict[str, Card],
        texts_dir: Path = TEXTS_DIR,
        language: str = "en",
        mirror: bool = True,
    ) -> None:
        if not any(side in cards for side in SIDES):
            raise ValueError(f"KioskView needs a card for at least one of {SIDES}")
        self.size = size
        self.cards = cards
        self.texts = Texts(texts_dir, language)
        self.text = TextCache()
        w, h = size
        self.u = h / 1080.0
        self.margin = self.px(40)
        top = self.px(TOP)
        pw = int(w * 0.27)
        self.panel_rects = {
            "left": pygame.Rect(self.margin, top, pw, h - top - self.margin),
            "right": pygame.Rect(w - self.margin - pw, top, pw, h - top - self.margin),
        }
        # A side without a card (its bundle did not load) shows a notice instead of a model.
        self.panels: dict[str, Panel | UnavailablePanel] = {
            side: Panel(self.panel_rects[side], cards[side], self.texts, self.text, self.u)
            if side in cards
            else UnavailablePanel(self.panel_rects[side], self.texts, self.text, self.u)
            for side in SIDES
        }
        column = w - 2 * (self.margin * 2 + pw)
        # 4:3 camera image, centred between the panels; room below it for the body text and
        # the small print.
        vh = min(int(column * 3 / 4), h - top - self.px(430))
        vw = min(column, vh * 4 // 3)
        self.video_rect = pygame.Rect((w - vw) // 2, top, vw, vh)
        self.mirror_view = Mirror(self.video_rect, self.text, self.u, mirror, self.px(MAIN_PX))
        self.header_rect = pygame.Rect(0, 0, w, top)
        v = self.video_rect
        self.under_rect = pygame.Rect(v.x, v.bottom, vw, h - v.bottom)
        self.dirty: list[pygame.Rect] = []
        self._target: pygame.Surface | None = None
        self._keys: dict[str, Any] = {}
        self._frame: np.ndarray | None = None
        self._drawn: dict[str, list[Drawn]] = {}
        self.overflow: list[str] = []  # texts the last draw had to cut (tests require none)

    @property
    def mirror(self) -> bool:
        return self.mirror_view.mirror

    @property
    def frame_rect(self) -> pygame.Rect:
        return self.mirror_view.frame_rect

    def guide_rect(self, region: Region, frame_size: tuple[int, int]) -> pygame.Rect:
        return self.mirror_view.guide_rect(region, frame_size)

    # -- language ------------------------------------------------------------------------

    @property
    def language(self) -> str:
        return self.texts.language

    @language.setter
    def language(self, lang: str) -> None:
        self.texts.load(lang)

    def t(self, key: str, **fmt: object) -> str:
        return self.texts.t(key, **fmt)

    def drawn(self) -> list[Drawn]:
        """Every text on the screen as last drawn, with its layer, size, colours and box."""
        out = [d for part in self._drawn.values() for d in part]
        return out + [d for p in self.panels.values() for d in p.drawn] + self.mirror_view.drawn

    # -- drawing -------------------------------------------------------------------------

    def draw(
        self,
        surface: pygame.Surface,
        *,
        frame: np.ndarray | None,
        result: FrameResult | None,
        status: SourceStatus,
        attract: bool,
        paused: bool = False,
        notice: str | None = None,
        fps_text: str | None = None,
        heatmaps: Heatmaps | None = None,
    ) -> dict[str, float]:
        """Draw what changed since the last draw on the same surface (everything on another
        surface); returns the ms spent on video, panels and the rest, and sets `dirty`."""
        t0 = time.perf_counter()
        live = status.state == SourceState.OK and frame is not None
        screen = screen_of(live=live, status=status, attract=attract, paused=paused, result=result)
        show = screen in VERDICT_SCREENS
        maps = heatmaps if show else None
        copy = copy_for(self.texts, screen, result, self.cards.get("right"), maps is not None)
        lang = self.language
        # Overlays that cross regions (staff notice, fps counter) and the paused screen are
        # drawn whole; so is any surface other than the one drawn last.
        layout = (screen == "paused", notice, fps_text)
        full = surface is not self._target or self._keys.get("layout") != layout
        if full:
            self._keys = {"layout": layout}
            self._drawn = {}
            self.overflow = []
            for p in self.panels.values():
                p.drawn = []
            self.mirror_view.drawn = []
            self._target = surface
            surface.fill(BG)
        self.dirty = [surface.get_rect()] if full else []
        if screen == "paused":
            if full:
                self._paused(surface, copy)
            return {"video": 0.0, "panels": 0.0, "overlay": (time.perf_counter() - t0) * 1e3}
        # The mirror: every new camera frame (the only region that changes at the camera rate).
        region = result.region if result is not None else None
        video_key = (screen, status.state, region, id(maps), lang if maps is not None else None)
        if full or frame is not self._frame or self._keys.get("video") != video_key:
            self._keys["video"], self._frame = video_key, frame
            rect = self.mirror_view.draw(
                surface,
                frame if live else None,
                result,
                soft=attract,
                heatmaps=maps,
                caption=self.t("looks_title"),
            )
            self.dirty.append(rect)
        t1 = time.perf_counter()
        for side in SIDES:
            judged = show and result is not None and side in result.predictions
            verdict = result.verdict(side) if judged and result is not None else None
            panel = self.panels[side]
            sig = None
            if verdict is not None:
                # The bar moves in whole pixels: a change smaller than one is not redrawn.
                sig = (verdict.face, verdict.clear, round(verdict.strength * panel.inner))
            key = (lang, sig, screen == "attract")
            if full or self._keys.get(side) != key:
                self._keys[side] = key
                self.dirty.append(panel.draw(surface, verdict, screen == "attract", full=full))
        t2 = time.perf_counter()
        if full or self._keys.get("header") != (lang, copy.headline):
            self._keys["header"] = (lang, copy.headline)
            self._header(surface, copy)
            self.dirty.append(self.header_rect)
        under_key = (lang, copy)
        if full or self._keys.get("under") != under_key:
            self._keys["under"] = under_key
            self._under(surface, copy)
            self.dirty.append(self.under_rect)
        if notice:
            self.dirty.append(self._banner(surface, notice))
        if fps_text:
            s = self.text.render(fps_text, self.px(SMALL_PX), MUTED)
            rect = s.get_rect(bottomright=(self.size[0] - 8, self.size[1] - 4))
            surface.fill(BG, rect)
            surface.blit(s, rect)
            self.dirty.append(rect)
        if full:
            self.dirty = [surface.get_rect()]
        t3 = time.perf_counter()
        return {"video": (t1 - t0) * 1e3, "panels": (t2 - t1) * 1e3, "overlay": (t3 - t2) * 1e3}

    def _put(
        self,
        region: str,
        layer: str,
        text: str,
        size: int,
        color: RGB,
        *,
        box: pygame.Rect,
        **at: Any,
    ) -> Drawn:
        """Draw on the current target surface, on the screen background, and note it."""
        assert self._target is not None
        d = self.text.put(self._target, layer, text, size, color=color, bg=BG, box=box, **at)
        self._drawn.setdefault(region, []).append(d)
        return d

    # -- header --------------------------------------------------------------------------

    def _header(self, surface: pygame.Surface, copy: Copy) -> None:
        surface.fill(BG, self.header_rect)
        self._drawn["header"] = []
        m, w = self.margin, self.size[0]
        chrome = self.px(MAIN_PX)
        box = pygame.Rect(m, 0, w - 2 * m, self.header_rect.height)
        # The language keys and the camera notice: on every screen, top right.
        hint = self._put(
            "header",
            "chrome",
            self.t("languages_hint"),
            chrome,
            MUTED,
            box=box,
            topright=(w - m, self.px(18)),
        )
        note = self._put(
            "header",
            "chrome",
            self.t("camera_notice"),
            chrome,
            TEXT,
            box=box,
            topright=(w - m, hint.rect.bottom + self.px(10)),
        )
        room = pygame.Rect(m, 0, min(hint.rect.left, note.rect.left) - self.px(40) - m, box.h)
        size = self.px(HEADLINE_PX)
        lines = self._lines(copy.headline, size, room.width, HEADLINE_LINES)
        line_h = self.text.render("Hg", size).get_height()
        y = (self.header_rect.height - line_h * len(lines)) // 2
        for line in lines:
            self._put("header", "headline", line, size, TEXT, box=room, topleft=(m, y))
            y += line_h

    # -- under the mirror ----------------------------------------------------------------

    def note_top(self) -> int:
        return self.size[1] - self.margin - self.px(34) * CENTRE_NOTE_LINES

    def _under(self, surface: pygame.Surface, copy: Copy) -> None:
        surface.fill(BG, self.under_rect)
        self._drawn["under"] = []
        v = self.under_rect
        bottom = self.note_top() - self.px(12) if copy.details else v.bottom - self.margin
        area = pygame.Rect(v.x, v.y + self.px(16), v.width, bottom - v.y - self.px(16))
        size = self.px(MAIN_PX)
        if copy.rarity is not None:
            self._meter(surface, copy, area)
        elif copy.body:
            line_h = self.text.render("Hg", size).get_height() + self.px(10)
            most = (area.height + self.px(10)) // line_h
            lines = self._lines(copy.body, size, area.width, most)
            self._lines_at(area, [(ln, size, TEXT, "body") for ln in lines])
        small = self.px(SMALL_PX)
        notes = self.note_lines(copy)
        box = pygame.Rect(v.x, self.note_top(), v.width, self.size[1] - self.note_top())
        y = box.y
        for line in notes:
            self._put("under", "details", line, small, MUTED, box=box, topleft=(v.x, y))
            y += self.px(34)

    def _lines(self, text: str, size: int, width: int, most: int) -> list[str]:
        """`text` wrapped to `width`; what does not fit in `most` lines is cut and reported."""
        lines = self.text.wrap(text, size, width)
        if len(lines) > most:
            self.overflow.append(f"{text!r} needs {len(lines)} lines, has room for {most}")
        return lines[:most]

    def note_lines(self, copy: Copy) -> list[str]:
        """The centre's small print: as many of its sentences as fit, whole, in order."""
        small, width = self.px(SMALL_PX), self.under_rect.width
        lines: list[str] = []
        for k in range(len(copy.details), 0, -1):
            lines = self.text.wrap(" ".join(copy.details[:k]), small, width)
            if len(lines) <= CENTRE_NOTE_LINES:
                return lines
        return []

    def _meter(self, surface: pygame.Surface, copy: Copy, area: pygame.Rect) -> None:
        """The rarity meter, named for the model whose training faces it compares with."""
        r = copy.rarity
        assert r is not None
        size, x = self.px(MAIN_PX), area.x
        label = self._put("under", "label", r.model, size, MUTED, box=area, topleft=(x, area.y))
        # The bar beside its label, so the sentences below have room for two lines each.
        left = label.rect.right + self.px(20)
        track = pygame.Rect(left, 0, area.right - left, self.px(24))
        track.centery = label.rect.centery
        bar(surface, track, r.value, YELLOW)
        y = label.rect.bottom + self.px(12)
        for text in (r.text, r.note):
            for line in self._lines(text, size, area.width, 2):
                d = self._put("under", "body", line, size, TEXT, box=area, topleft=(x, y))
                y = d.rect.bottom + self.px(2)
            y += self.px(8)

    def _lines_at(self, area: pygame.Rect, lines: list[tuple[str, int, RGB, str]]) -> None:
        """Centred lines from the top of `area`, right under the mirror."""
        heights = [self.text.render(text, size).get_height() for text, size, _, _ in lines]
        gap = self.px(10)
        y = area.y + self.px(8)
        for (text, size, color, layer), h in zip(lines, heights, strict=True):
            self._put("under", layer, text, size, color, box=area, midtop=(area.centerx, y))
            y += h + gap

    # -- whole-screen states and overlays ------------------------------------------------

    def _paused(self, surface: pygame.Surface, copy: Copy) -> None:
        """Nothing of the camera is shown while staff have paused the exhibit."""
        screen = surface.get_rect()
        self._header(surface, copy.__class__(copy.screen, "", None, None, ()))
        big, size = self.px(PAUSED_PX), self.px(MAIN_PX)
        head = self.text.render(copy.headline, big)
        total = head.get_height() + self.px(20) + self.text.render("Hg", size).get_height()
        y = screen.centery - total // 2
        d = self._put(
            "paused",
            "headline",
            copy.headline,
            big,
            TEXT,
            box=screen,
            midtop=(screen.centerx, y),
        )
        self._put(
            "paused",
            "body",
            copy.body or "",
            size,
            MUTED,
            box=screen,
            midtop=(screen.centerx, d.rect.bottom + self.px(20)),
        )

    def _banner(self, surface: pygame.Surface, notice: str) -> pygame.Rect:
        """A staff notice over the bottom of the screen, on a solid backing."""
        screen = surface.get_rect()
        d = self._put(
            "banner",
            "body",
            notice,
            self.px(MAIN_PX),
            YELLOW,
            box=screen,
            midbottom=(self.size[0] // 2, self.size[1] - self.px(14)),
        )
        back = d.rect.inflate(self.px(44), self.px(18))
        pygame.draw.rect(surface, BG, back)
        surface.blit(self.text.render(notice, d.size, YELLOW), d.rect)
        return back
