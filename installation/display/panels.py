"""One model's panel: its plain name, the live verdict, and how often it finds faces per group.

All positions are in 1080p reference pixels (scaled by `u` = screen height / 1080). The parts that
only change with the language (name, method, recall bars, small print) are drawn once into a
cached surface; per frame only the verdict block is drawn on top, and only when it changed.

Vertical plan of a panel at 1080p (900 px tall):
    20 name | 70 method (small print, 2 lines) | 150-330 verdict block | 350 rule | 362 title
    | 410.. group rows (label, then bar with its 95 % interval and the percentage)
    | small print at the bottom (test set and count, gap with its interval; NOTE_LINES lines)

A side whose bundle did not load gets an UnavailablePanel instead: a short, calm notice where the
verdict would be, on the same labels rules (its texts are checked like every other).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import pygame

from installation.display.palette import BG, BLUE, MUTED, ORANGE, PANEL, RGB, RULE, TEXT
from installation.display.texts import Texts
from installation.display.widgets import Drawn, Scaled, TextCache, bar, check_mark, cross_mark
from installation.inference.card import Card, GroupMetric
from installation.intervals import wilson_share
from installation.types import Verdict

logger = logging.getLogger(__name__)

MAIN_PX = 46  # body and labels: cap height 23 px at 1080p (>= 22 px, tested)
SMALL_PX = 30  # the small print (details layer)
VERDICT_PX = 96  # cap height 48 px
VERDICT_MIN_PX = 72
VERDICT_TOP = 150
RULE_Y = 350
ROWS_TOP = 412
NOTE_LINES = 5
METHOD_LINES = 2


def gap_interval(best: GroupMetric, worst: GroupMetric) -> tuple[float, float]:
    """95 % interval of best minus worst recall (Newcombe's hybrid score method from the two
    Wilson intervals): a gap is only called a gap when this excludes zero."""
    p1, p2 = best.shown, worst.shown
    l1, u1 = wilson_share(p1, best.count)
    l2, u2 = wilson_share(p2, worst.count)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


class Panel(Scaled):
    def __init__(
        self, rect: pygame.Rect, card: Card, texts: Texts, cache: TextCache, u: float
    ) -> None:
        self.rect = rect
        self.card = card
        self.texts = texts
        self.text = cache
        self.u = u
        self.pad = self.px(28)
        self.inner = rect.width - 2 * self.pad
        self._static: dict[str, tuple[pygame.Surface, list[Drawn]]] = {}
        self.drawn: list[Drawn] = []  # texts of the last draw, in screen coordinates

    def groups(self) -> list[GroupMetric]:
        return self.card.display_groups()

    def gap(self) -> tuple[int, int, int] | None:
        """The gap between the best and worst group in points with its 95 % interval, or None
        when there is no gap to call one: fewer than two groups, the card's report found none
        beyond noise, or (without that report) the interval includes zero."""
        groups = self.groups()
        gap_real = self.card.display.gap_real if self.card.display else None
        if len(groups) < 2 or gap_real is False:
            return None
        best = max(groups, key=lambda g: g.shown)
        worst = min(groups, key=lambda g: g.shown)
        measured = self.card.display.gap_ci95 if self.card.display else None
        # The report's bootstrap interval when the card has it (the same numbers as the
        # report), else one from the two groups' Wilson intervals.
        lo, hi = measured if measured is not None else gap_interval(best, worst)
        if gap_real is None and lo <= 0:
            return None
        return round((best.shown - worst.shown) * 100), round(lo * 100), round(hi * 100)

    def weakest(self) -> GroupMetric | None:
        """The group this model misses most, or None when there is none to name: no gap between
        groups beyond measurement noise (see `gap`)."""
        groups = self.groups()
        if not groups or self.gap() is None:
            return None
        return min(groups, key=lambda g: g.shown)

    # -- static part ---------------------------------------------------------------------

    def static(self) -> tuple[pygame.Surface, list[Drawn]]:
        lang = self.texts.language
        cached = self._static.get(lang)
        if cached is None:
            cached = self._render_static()
            self._static[lang] = cached
        return cached

    def _render_static(self) -> tuple[pygame.Surface, list[Drawn]]:
        t, pad, inner = self.texts, self.pad, self.inner
        surf = pygame.Surface(self.rect.size, pygame.SRCALPHA)
        pygame.draw.rect(surf, PANEL, surf.get_rect(), border_radius=self.px(22))
        box = pygame.Rect(pad, 0, inner, self.rect.height)
        drawn: list[Drawn] = []

        def put(layer: str, text: str, size: int, color: RGB = TEXT, **at: Any) -> Drawn:
            d = self.text.put(surf, layer, text, size, color=color, bg=PANEL, box=box, **at)
            drawn.append(d)
            return d

        put("label", t.model_name(self.card), self.px(MAIN_PX), topleft=(pad, self.px(20)))
        y = self.px(72)
        for line in self.method_lines():
            put("details", line, self.px(SMALL_PX), MUTED, topleft=(pad, y))
            y += self.px(34)
        y = self.px(RULE_Y)
        pygame.draw.line(surf, RULE, (pad, y), (self.rect.width - pad, y), max(self.px(2), 1))
        put("label", t.t("recall_title"), self.px(MAIN_PX), topleft=(pad, self.px(RULE_Y + 14)))
        self._group_rows(surf, put)
        y = self.note_top()
        for line in self.note_lines():
            put("details", line, self.px(SMALL_PX), MUTED, topleft=(pad, y))
            y += self.px(32)
        return surf.convert_alpha(), drawn

    def note_top(self) -> int:
        return self.rect.height - self.pad - self.px(32) * NOTE_LINES

    def _group_rows(self, surf: pygame.Surface, put: _Put) -> None:
        groups = self.groups()
        pad, inner = self.pad, self.inner
        y = self.px(ROWS_TOP)
        row = min(self.px(84), (self.note_top() - self.px(8) - y) // max(len(groups), 1))
        size = self.px(MAIN_PX)
        bar_h = max(self.px(18), 4)
        for g in groups:
            label = put("label", self.texts.group_label(g), size, topleft=(pad, y))
            # The percentage sits right of its bar; the bar's thin line is its 95 % interval
            # over the test faces (no "±": a spread over training seeds is no margin of error).
            pct_w = self.text.render(self.texts.t("bar_percent", pct=100), size).get_width()
            bar_rect = pygame.Rect(
                pad, label.rect.bottom + self.px(14), inner - pct_w - self.px(14), bar_h
            )
            bar(surf, bar_rect, g.shown, BLUE, interval=wilson_share(g.shown, g.count))
            pct = self.texts.t("bar_percent", pct=round(g.shown * 100))  # "79%", "79 %" in de / fr
            put("label", pct, size, midright=(pad + inner, bar_rect.centery))
            y += row

    def _note(self, means: bool) -> str:
        """The small print under the bars: test set and count, whether the bars are means over
        trainings, and the gap between groups with its interval (or that there is none)."""
        groups = self.groups()
        eval_set = self.card.display.eval_set if self.card.display else ""
        count, where = sum(g.count for g in groups), self.texts.eval_set(eval_set)
        if means:
            note = self.texts.t("recall_note_seeds", n=self.card.seeds, set=where, count=count)
        else:
            note = self.texts.t("recall_note", set=where, count=count)
        gap = self.gap()
        if gap is not None:
            pts, lo, hi = gap
            return f"{note} {self.texts.t('gap', pts=pts, lo=lo, hi=hi)}"
        if len(groups) >= 2:
            return f"{note} {self.texts.t('gap_unclear')}"
        return note

    def _means(self) -> bool:
        # Means over trainings: one model's bars on 15 faces per group are mostly luck.
        return self.card.seeds > 1 and any(g.recall_mean is not None for g in self.groups())

    def note_lines(self) -> list[str]:
        """The small print, wrapped to the panel: the layout has room for NOTE_LINES lines, and
        the test set and count come first, so they are never the part cut off."""
        return self.text.wrap(self._note(self._means()), self.px(SMALL_PX), self.inner)[:NOTE_LINES]

    def method_lines(self) -> list[str]:
        method = self.texts.model_method(self.card)
        return self.text.wrap(method, self.px(SMALL_PX), self.inner)[:METHOD_LINES]

    def fits(self) -> list[str]:
        """What would be cut off in the current language (tests check every language)."""
        cut = []
        for means in (True, False):
            lines = self.text.wrap(self._note(means), self.px(SMALL_PX), self.inner)
            if len(lines) > NOTE_LINES:
                cut.append(f"note ({len(lines)} lines): {lines[NOTE_LINES:]}")
        method = self.text.wrap(self.texts.model_method(self.card), self.px(SMALL_PX), self.inner)
        if len(method) > METHOD_LINES:
            cut.append(f"method ({len(method)} lines): {method[METHOD_LINES:]}")
        return cut

    # -- per frame -----------------------------------------------------------------------

    def verdict_rect(self) -> pygame.Rect:
        """The part of the panel that changes per frame (verdict or the attract line)."""
        top = self.rect.y + self.px(VERDICT_TOP - 8)
        return pygame.Rect(
            self.rect.x, top, self.rect.width, self.px(RULE_Y - 4) - (top - self.rect.y)
        )

    def draw(
        self, surface: pygame.Surface, verdict: Verdict | None, attract: bool, full: bool = True
    ) -> pygame.Rect:
        """Draw the panel (full) or only its verdict block over the cached panel; returns the
        rectangle that changed."""
        static, drawn = self.static()
        area = self.rect if full else self.verdict_rect()
        src = area.move(-self.rect.x, -self.rect.y)
        surface.blit(static, area, src)
        self.drawn = [d.moved(self.rect.x, self.rect.y) for d in drawn]
        if verdict is not None:
            self._verdict(surface, verdict)
        elif attract:
            self._weakest(surface)
        return area

    def _put(
        self, surface: pygame.Surface, layer: str, text: str, size: int, color: RGB, **at: Any
    ) -> Drawn:
        box = pygame.Rect(self.rect.x + self.pad, self.rect.y, self.inner, self.rect.height)
        d = self.text.put(surface, layer, text, size, color=color, bg=PANEL, box=box, **at)
        self.drawn.append(d)
        return d

    def _verdict(self, surface: pygame.Surface, verdict: Verdict) -> None:
        t, rect, pad = self.texts, self.rect, self.pad
        x, y = rect.x + pad, rect.y + self.px(VERDICT_TOP)
        r = self.px(46)
        color = BLUE if verdict.face else ORANGE
        # Colour is never the only cue: a tick or a cross and the word carry the verdict too.
        (check_mark if verdict.face else cross_mark)(surface, (x + r, y + r), r, color)
        word = t.t("face" if verdict.face else "no_face")
        room = self.inner - 2 * r - self.px(20)
        # Long words may shrink a little, never below the headline size.
        size = self.text.fit(word, self.px(VERDICT_PX), room, smallest=self.px(VERDICT_MIN_PX))
        self._put(surface, "verdict", word, size, color, midleft=(x + 2 * r + self.px(20), y + r))
        y += 2 * r + self.px(12)
        # The score relative to this model's own decision line (its threshold at the middle),
        # so the line and the bar always agree with the verdict word above them.
        conf = t.t("score_clear" if verdict.clear else "score_close")
        line = self._put(surface, "label", conf, self.px(MAIN_PX), TEXT, topleft=(x, y))
        track = pygame.Rect(x, line.rect.bottom + self.px(14), self.inner, self.px(24))
        threshold = 0.5  # Verdict.strength is 0.5 at the decision line
        bar(surface, track, verdict.strength, color, marker=threshold, marker_width=self.px(4))

    def _weakest(self, surface: pygame.Surface) -> None:
        """Attract mode: the group this model misses most, calmly, where the verdict goes (a
        statement about the model, so no warning colour on a group of people)."""
        g = self.weakest()
        if g is None:
            return
        x, y = self.rect.x + self.pad, self.rect.y + self.px(VERDICT_TOP)
        size = self.px(MAIN_PX)
        lead = self._put(surface, "label", self.texts.t("weakest"), size, MUTED, topleft=(x, y))
        label = self._put(
            surface,
            "label",
            self.texts.group_label(g),
            size,
            TEXT,
            topleft=(x, lead.rect.bottom + self.px(14)),
        )
        found = self.texts.t("weakest_found", pct=round(g.shown * 100))
        self._put(surface, "label", found, size, TEXT, topleft=(x, label.rect.bottom + self.px(10)))


class _Put(Protocol):  # the static part's text writer
    def __call__(self, layer: str, text: str, size: int, color: RGB = TEXT, **at: Any) -> Drawn: ...


class UnavailablePanel(Scaled):
    """The panel of a side whose bundle did not load: the kiosk runs on the other model, and the
    visitor reads, calmly, that this one is resting (staff get the error over MQTT). Only the
    language changes it, so it is always drawn whole."""

    def __init__(self, rect: pygame.Rect, texts: Texts, cache: TextCache, u: float) -> None:
        self.rect = rect
        self.texts = texts
        self.text = cache
        self.u = u
        self.pad = self.px(28)
        self.inner = rect.width - 2 * self.pad
        self.drawn: list[Drawn] = []  # texts of the last draw, in screen coordinates

    def verdict_rect(self) -> pygame.Rect:
        return self.rect  # nothing in it changes per frame

    def body_lines(self) -> tuple[list[str], int]:
        """The notice wrapped to the panel, and how many lines of it fit above its bottom."""
        size = self.px(MAIN_PX)
        lines = self.text.wrap(self.texts.t("model_unavailable_body"), size, self.inner)
        line_h = self.text.render("Hg", size).get_height() + self.px(6)
        top = self.px(VERDICT_TOP) + line_h + self.px(24)  # under the title
        return lines, max((self.rect.height - self.pad - top) // line_h, 0)

    def fits(self) -> list[str]:
        """What would be cut off in the current language (tests check every language)."""
        cut = []
        title = self.texts.t("model_unavailable_title")
        if self.text.render(title, self.px(MAIN_PX)).get_width() > self.inner:
            cut.append(f"title wider than the panel: {title!r}")
        lines, room = self.body_lines()
        if len(lines) > room:
            cut.append(f"notice ({len(lines)} lines, room for {room}): {lines[room:]}")
        return cut

    def draw(
        self, surface: pygame.Surface, verdict: Verdict | None, attract: bool, full: bool = True
    ) -> pygame.Rect:
        """The title where a verdict would be, in the panel's usual colours (a resting model is
        nothing to alarm anyone about), the notice under it; returns the rectangle drawn."""
        rect, size = self.rect, self.px(MAIN_PX)
        pygame.draw.rect(surface, BG, rect)
        pygame.draw.rect(surface, PANEL, rect, border_radius=self.px(22))
        box = pygame.Rect(rect.x + self.pad, rect.y, self.inner, rect.height)
        x = box.x
        self.drawn = []

        def put(layer: str, text: str, color: RGB, y: int) -> Drawn:
            at = {"topleft": (x, y)}
            d = self.text.put(surface, layer, text, size, color=color, bg=PANEL, box=box, **at)
            self.drawn.append(d)
            return d

        title = put(
            "label", self.texts.t("model_unavailable_title"), TEXT, rect.y + self.px(VERDICT_TOP)
        )
        lines, room = self.body_lines()
        y = title.rect.bottom + self.px(24)
        for line in lines[:room]:
            y = put("body", line, MUTED, y).rect.bottom + self.px(6)
        return rect
