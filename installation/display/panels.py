"""One model's panel: name and method, the live verdict, and the per-group recall from its card.

All positions are in 1080p reference pixels (scaled by `u` = screen height / 1080). The parts that
only change with the language (name, method, recall bars, gap, footnote) are drawn once into a
cached surface; per frame only the verdict block (icon, word, confidence bar) is drawn on top.

Vertical plan of a panel at 1080p (890 px tall):
    28 name | 92 method (2 lines) | 176-376 verdict block | 394 rule | 410 recall title
    | 462.. group rows | gap line | footnote (2 lines) at the bottom
"""

from __future__ import annotations

import logging

import pygame

from installation.display.palette import BLUE, MUTED, ORANGE, PANEL, RGB, RULE, TEXT
from installation.display.texts import Texts
from installation.display.widgets import TextCache, bar, check_mark, cross_mark
from installation.inference.card import Card, GroupMetric
from installation.types import Verdict

logger = logging.getLogger(__name__)

VERDICT_TOP = 176
RECALL_TOP = 394
ROWS_TOP = 462
NOTE_LINES = 2


class Panel:
    def __init__(
        self, rect: pygame.Rect, card: Card, texts: Texts, cache: TextCache, u: float
    ) -> None:
        self.rect = rect
        self.card = card
        self.texts = texts
        self.text = cache
        self.u = u
        self.pad = self.px(30)
        self.inner = rect.width - 2 * self.pad
        self._static: dict[str, pygame.Surface] = {}

    def px(self, v: float) -> int:
        return max(round(v * self.u), 1)

    def groups(self) -> list[GroupMetric]:
        return self.card.display_groups()

    def weakest(self) -> GroupMetric | None:
        """The group this model misses most, or None when there is none to name: no groups,
        or a card whose report found no gap between groups beyond measurement noise."""
        groups = self.groups()
        if not groups or (self.card.display and self.card.display.gap_real is False):
            return None
        return min(groups, key=lambda g: g.shown)

    # -- static part ---------------------------------------------------------------------

    def static(self) -> pygame.Surface:
        lang = self.texts.language
        cached = self._static.get(lang)
        if cached is None:
            cached = self._render_static()
            self._static[lang] = cached
        return cached

    def _blit_text(
        self, surf: pygame.Surface, text: str, size: int, pos: tuple[int, int], color: RGB = TEXT
    ) -> pygame.Surface:
        s = self.text.render(text, size, color)
        surf.blit(s, pos)
        return s

    def _render_static(self) -> pygame.Surface:
        t = self.texts
        rect, pad, inner = self.rect, self.pad, self.inner
        surf = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(surf, PANEL, surf.get_rect(), border_radius=self.px(22))
        name = t.model_name(self.card)
        self._blit_text(surf, name, self.text.fit(name, self.px(48), inner), (pad, self.px(28)))
        y = self.px(92)
        for line in self.text.wrap(t.model_method(self.card), self.px(30), inner)[:2]:
            self._blit_text(surf, line, self.px(30), (pad, y), MUTED)
            y += self.px(36)
        y = self.px(RECALL_TOP)
        pygame.draw.line(surf, RULE, (pad, y), (rect.width - pad, y), max(self.px(2), 1))
        title = t.t("recall_title")
        size = self.text.fit(title, self.px(34), inner)
        self._blit_text(surf, title, size, (pad, self.px(RECALL_TOP + 16)))
        self._group_rows(surf)
        return surf.convert_alpha()

    def _group_rows(self, surf: pygame.Surface) -> None:
        t, pad, inner = self.texts, self.pad, self.inner
        groups = self.groups()
        foot_top = self.rect.height - pad - self.px(64)
        gap_h = self.px(48)
        y = self.px(ROWS_TOP)
        row = min(self.px(78), (foot_top - gap_h - y) // max(len(groups), 1))
        label_size = min(self.px(32), int(row * 0.42))
        for g in groups:
            pct = self.text.render(f"{round(g.shown * 100)}%", label_size)
            pct_rect = pct.get_rect(topright=(pad + inner, y))
            surf.blit(pct, pct_rect)
            # No "±" here: a spread over training seeds is not a margin of error.
            right = pct_rect.left
            label = t.group_label(g)
            room = right - pad - self.px(12)
            self._blit_text(surf, label, self.text.fit(label, label_size, room), (pad, y))
            bar_rect = pygame.Rect(pad, y + int(label_size * 1.25), inner, max(self.px(16), 4))
            bar(surf, bar_rect, g.shown, BLUE)
            y += row
        gap_real = self.card.display.gap_real if self.card.display else None
        if len(groups) >= 2 and gap_real is not False:
            pts = round((max(g.shown for g in groups) - min(g.shown for g in groups)) * 100)
            self._blit_text(surf, t.t("gap", pts=pts), self.px(30), (pad, y + self.px(2)))
        elif gap_real is False:
            # The report's interval includes zero: the bars differ, but not measurably.
            parts = self.text.wrap(t.t("gap_unclear"), self.px(26), inner)[:2]
            for k, part in enumerate(parts):
                self._blit_text(surf, part, self.px(26), (pad, y + self.px(2 + 30 * k)))
        y = foot_top
        for line in self.note_lines():
            self._blit_text(surf, line, self.px(26), (pad, y), MUTED)
            y += self.px(32)

    def _note(self, means: bool) -> str:
        """The footnote's text: test set and count, and whether the bars are seed means."""
        groups = self.groups()
        eval_set = self.card.display.eval_set if self.card.display else ""
        count, where = sum(g.count for g in groups), self.texts.eval_set(eval_set)
        if means:
            return self.texts.t("recall_note_seeds", n=self.card.seeds, set=where, count=count)
        return self.texts.t("recall_note", set=where, count=count)

    def note_lines(self) -> list[str]:
        """The footnote under the bars (test set and count), wrapped to the panel. The layout
        has room for two lines; the count comes first, so it is never the part cut off."""
        # Means over trainings: one model's bars on 15 faces per group are mostly luck.
        means = self.card.seeds > 1 and any(g.recall_mean is not None for g in self.groups())
        return self.text.wrap(self._note(means), self.px(26), self.inner)[:NOTE_LINES]

    def note_fits(self) -> bool:
        """Whether the whole footnote fits in its NOTE_LINES lines (tests check every language)."""
        return all(
            len(self.text.wrap(self._note(means), self.px(26), self.inner)) <= NOTE_LINES
            for means in (True, False)
        )

    # -- per frame -----------------------------------------------------------------------

    def draw(self, surface: pygame.Surface, verdict: Verdict | None, attract: bool) -> None:
        surface.blit(self.static(), self.rect)
        if verdict is not None:
            self._verdict(surface, verdict)
        elif attract:
            self._weakest(surface)

    def _verdict(self, surface: pygame.Surface, verdict: Verdict) -> None:
        t, rect, pad = self.texts, self.rect, self.pad
        x, y = rect.x + pad, rect.y + self.px(VERDICT_TOP)
        r = self.px(44)
        color = BLUE if verdict.face else ORANGE
        # Colour is never the only cue: a tick or a cross and the word carry the verdict too.
        (check_mark if verdict.face else cross_mark)(surface, (x + r, y + r), r, color)
        word = t.t("face" if verdict.face else "no_face")
        room = self.inner - 2 * r - self.px(20)
        s = self.text.render(word, self.text.fit(word, self.px(88), room), color)
        surface.blit(s, s.get_rect(midleft=(x + 2 * r + self.px(20), y + r)))
        y += 2 * r + self.px(14)
        # The score relative to this model's own decision line (its threshold at the middle),
        # so the line and the bar always agree with the verdict word above them.
        conf = t.t("score_clear" if verdict.clear else "score_close")
        surface.blit(self.text.render(conf, self.text.fit(conf, self.px(32), self.inner)), (x, y))
        y += self.px(44)
        track = pygame.Rect(x, y, self.inner, self.px(24))
        threshold = 0.5  # Verdict.strength is 0.5 at the decision line
        bar(surface, track, verdict.strength, color, marker=threshold, marker_width=self.px(4))
        label = self.text.render(t.t("threshold"), self.px(26), MUTED)
        mx = track.x + int(track.width * threshold)
        lrect = label.get_rect(midtop=(mx, track.bottom + self.px(10)))
        lrect.clamp_ip(pygame.Rect(x, lrect.y, self.inner, lrect.height))
        surface.blit(label, lrect)

    def _weakest(self, surface: pygame.Surface) -> None:
        """Attract mode: the group this model misses most, large, where the verdict goes."""
        g = self.weakest()
        if g is None:
            return
        x, y = self.rect.x + self.pad, self.rect.y + self.px(VERDICT_TOP + 6)
        lead = self.texts.t("weakest")
        lead_s = self.text.render(lead, self.text.fit(lead, self.px(30), self.inner), MUTED)
        surface.blit(lead_s, (x, y))
        y += self.px(46)
        label = self.texts.group_label(g)
        size = self.text.fit(label, self.px(60), self.inner)
        surface.blit(self.text.render(label, size, ORANGE), (x, y))
        y += self.px(78)
        found = self.texts.t("weakest_found", pct=round(g.shown * 100))
        size = self.text.fit(found, self.px(36), self.inner)
        surface.blit(self.text.render(found, size), (x, y))


class UnavailablePanel:
    """The panel of a side whose bundle did not load: the kiosk runs on the other model, and
    the visitor reads why this side is empty (staff get the error over MQTT)."""

    def __init__(self, rect: pygame.Rect, texts: Texts, cache: TextCache, u: float) -> None:
        self.rect = rect
        self.texts = texts
        self.text = cache
        self.u = u

    def px(self, v: float) -> int:
        return max(round(v * self.u), 1)

    def draw(self, surface: pygame.Surface, verdict: Verdict | None, attract: bool) -> None:
        rect, pad = self.rect, self.px(30)
        inner = rect.width - 2 * pad
        pygame.draw.rect(surface, PANEL, rect, border_radius=self.px(22))
        y = rect.y + self.px(VERDICT_TOP)
        title = self.texts.t("model_unavailable_title")
        size = self.text.fit(title, self.px(44), inner)
        surface.blit(self.text.render(title, size, ORANGE), (rect.x + pad, y))
        y += size + self.px(24)
        for line in self.text.wrap(self.texts.t("model_unavailable_body"), self.px(32), inner):
            surface.blit(self.text.render(line, self.px(32), MUTED), (rect.x + pad, y))
            y += self.px(40)
