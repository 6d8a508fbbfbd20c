"""The kiosk screen: live mirror with the guide box, one panel per model, the rarity meter.

Layout is computed from the screen size (reference 1920x1080, unit u = height / 1080). Static
parts of each panel (name, method, per-group recall from the card) are drawn once per language
into a cached surface; per frame only the video, verdicts, confidence bars and meter change.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pygame

from installation.display.texts import Texts
from installation.display.widgets import (
    BG,
    BLUE,
    MUTED,
    ORANGE,
    PANEL,
    TEXT,
    WHITE,
    YELLOW,
    TextCache,
    bar,
    brackets,
    check_mark,
    cross_mark,
)
from installation.inference.card import Card
from installation.paths import TEXTS_DIR
from installation.types import FrameResult, Prediction, SourceState, SourceStatus

SIDES = ("left", "right")


class KioskView:
    def __init__(
        self,
        size: tuple[int, int],
        cards: dict[str, Card],
        texts_dir: Path = TEXTS_DIR,
        language: str = "en",
        mirror: bool = True,
    ) -> None:
        self.size = size
        self.cards = cards
        self.texts = Texts(texts_dir)
        self.mirror = mirror
        self._language = language
        self.text = TextCache()
        w, h = size
        self.u = h / 1080.0
        u = self.u
        self.margin = int(40 * u)
        pw = int(w * 0.25)
        top = int(150 * u)
        self.panel_rects = {
            "left": pygame.Rect(self.margin, top, pw, h - top - self.margin),
            "right": pygame.Rect(w - self.margin - pw, top, pw, h - top - self.margin),
        }
        vx = self.margin * 2 + pw
        vw = w - 2 * vx
        vh = min(int(vw * 3 / 4), int(h * 0.62))
        self.video_rect = pygame.Rect(vx, top, vw, vh)
        self._static: dict[tuple[str, str], pygame.Surface] = {}
        self._frame_rect = self.video_rect.copy()

    # -- language ------------------------------------------------------------------------

    @property
    def language(self) -> str:
        return self._language

    @language.setter
    def language(self, lang: str) -> None:
        if lang not in self.texts.languages:
            raise ValueError(f"unknown language {lang!r}")
        self._language = lang

    def t(self, key: str, **fmt: object) -> str:
        return self.texts.t(self._language, key, **fmt)

    def px(self, v: float) -> int:
        return max(int(v * self.u), 1)

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
    ) -> dict[str, float]:
        t0 = time.perf_counter()
        surface.fill(BG)
        if paused:
            # Nothing of the camera is shown while paused.
            self._centered(
                surface,
                surface.get_rect(),
                [(self.t("paused_title"), 72, TEXT), (self.t("paused_body"), 36, MUTED)],
            )
            return {"video": 0.0, "panels": 0.0, "overlay": (time.perf_counter() - t0) * 1e3}
        self._header(surface)
        live = status.state == SourceState.OK and frame is not None
        if live and frame is not None:
            self._video(surface, frame, blur=attract)
        else:
            self._no_video(surface, status)
        t1 = time.perf_counter()
        show = live and not attract and result is not None
        for side in SIDES:
            pred = result.predictions.get(side) if (show and result is not None) else None
            self._panel(surface, side, pred)
        t2 = time.perf_counter()
        if live and attract:
            self._attract(surface)
        elif show and result is not None:
            self._guide_box(surface, result, frame)
            self._meter(surface, result)
        elif live:
            self._below_video(surface, [(self.t("step_in"), 40, TEXT)])
        if notice:
            self._banner(surface, notice)
        if fps_text:
            s = self.text.render(fps_text, self.px(22), MUTED)
            surface.blit(
                s, s.get_rect(bottomright=(surface.get_width() - 8, surface.get_height() - 4))
            )
        t3 = time.perf_counter()
        return {"video": (t1 - t0) * 1e3, "panels": (t2 - t1) * 1e3, "overlay": (t3 - t2) * 1e3}

    def _header(self, surface: pygame.Surface) -> None:
        m = self.margin
        title = self.text.render(self.t("title"), self.px(64))
        surface.blit(title, (m, self.px(28)))
        sub = self.text.render(self.t("subtitle"), self.px(30), MUTED)
        surface.blit(sub, (m, self.px(28) + title.get_height() + self.px(8)))
        hint = self.text.render(self.t("languages_hint"), self.px(24), MUTED)
        surface.blit(hint, hint.get_rect(topright=(surface.get_width() - m, self.px(36))))

    def _video(self, surface: pygame.Surface, frame: np.ndarray, blur: bool) -> None:
        fh, fw = frame.shape[:2]
        box = self.video_rect
        scale = min(box.width / fw, box.height / fh)
        vw, vh = int(fw * scale), int(fh * scale)
        if blur:
            # Attract mode: a soft, dim impression of the room, no recognisable person.
            small = cv2.resize(
                frame, (max(vw // 24, 1), max(vh // 24, 1)), interpolation=cv2.INTER_AREA
            )
            img: np.ndarray = (
                cv2.resize(small, (vw, vh), interpolation=cv2.INTER_LINEAR) * 0.45
            ).astype(np.uint8)
        else:
            img = cv2.resize(frame, (vw, vh), interpolation=cv2.INTER_LINEAR)
        if self.mirror:
            img = cv2.flip(img, 1)
        img = np.ascontiguousarray(img)
        surf = pygame.image.frombuffer(img.data, (vw, vh), "BGR")
        self._frame_rect = pygame.Rect(0, 0, vw, vh)
        self._frame_rect.center = box.center
        self._frame_rect.top = box.top
        surface.blit(surf, self._frame_rect)

    def _no_video(self, surface: pygame.Surface, status: SourceStatus) -> None:
        pygame.draw.rect(surface, PANEL, self.video_rect, border_radius=self.px(16))
        key = {
            SourceState.UNAVAILABLE: "camera_unavailable",
            SourceState.ENDED: "recording_ended",
        }.get(status.state, "camera_connecting")
        lines = [(self.t(key), 40, YELLOW if key == "camera_unavailable" else TEXT)]
        self._centered(surface, self.video_rect, lines)

    def _guide_box(
        self, surface: pygame.Surface, result: FrameResult, frame: np.ndarray | None
    ) -> None:
        if frame is None:
            return
        fh, fw = frame.shape[:2]
        r = result.region
        sx = self._frame_rect.width / fw
        sy = self._frame_rect.height / fh
        x = fw - (r.x + r.w) if self.mirror else r.x  # the image is flipped, so is the box
        rect = pygame.Rect(
            self._frame_rect.x + int(x * sx),
            self._frame_rect.y + int(r.y * sy),
            int(r.w * sx),
            int(r.h * sy),
        )
        brackets(surface, rect, BLUE if result.present else WHITE, self.px(6))

    def _panel_static(self, side: str) -> pygame.Surface:
        key = (side, self._language)
        cached = self._static.get(key)
        if cached is not None:
            return cached
        rect = self.panel_rects[side]
        surf = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(surf, PANEL, surf.get_rect(), border_radius=self.px(20))
        card = self.cards[side]
        pad = self.px(28)
        inner = rect.width - 2 * pad
        y = pad
        surf.blit(self.text.render(card.name, self.px(44)), (pad, y))
        y += self.px(54)
        for line in self.text.wrap(card.method, self.px(24), inner)[:2]:
            surf.blit(self.text.render(line, self.px(24), MUTED), (pad, y))
            y += self.px(28)
        # Verdict + confidence are drawn per frame into the gap [y0, y0 + 200u).
        y = self.px(330)
        pygame.draw.line(surf, (70, 78, 90), (pad, y), (rect.width - pad, y), 2)
        y += self.px(22)
        surf.blit(self.text.render(self.t("recall_title"), self.px(32)), (pad, y))
        y += self.px(50)
        groups = card.display_groups()
        row = min(self.px(74), (rect.height - y - self.px(90)) // max(len(groups), 1))
        for g in groups:
            label = self.text.render(g.label, self.px(28), TEXT)
            pct = self.text.render(f"{round(g.recall * 100)}%", self.px(28), TEXT)
            surf.blit(label, (pad, y))
            surf.blit(pct, pct.get_rect(topright=(rect.width - pad, y)))
            bar(surf, pygame.Rect(pad, y + self.px(32), inner, self.px(16)), g.recall, BLUE)
            y += row
        sets = card.display.eval_set if card.display else "?"
        count = sum(g.count for g in groups)
        note = self.t("recall_note", set=self.texts.eval_set(self._language, sets), count=count)
        y = rect.height - pad - self.px(56)
        for line in self.text.wrap(note, self.px(22), inner)[:2]:
            surf.blit(self.text.render(line, self.px(22), MUTED), (pad, y))
            y += self.px(26)
        surf = surf.convert_alpha()
        self._static[key] = surf
        return surf

    def _panel(self, surface: pygame.Surface, side: str, pred: Prediction | None) -> None:
        rect = self.panel_rects[side]
        surface.blit(self._panel_static(side), rect)
        if pred is None:
            return
        pad = self.px(28)
        y = rect.y + self.px(150)
        r = self.px(38)
        color = BLUE if pred.face else ORANGE
        (check_mark if pred.face else cross_mark)(surface, (rect.x + pad + r, y + r), r, color)
        word = self.text.render(self.t("face" if pred.face else "no_face"), self.px(72), color)
        surface.blit(word, (rect.x + pad + 2 * r + self.px(20), y + r - word.get_height() // 2))
        y += 2 * r + self.px(26)
        conf = self.text.render(self.t("confidence", pct=round(pred.p_face * 100)), self.px(28))
        surface.blit(conf, (rect.x + pad, y))
        y += self.px(38)
        track = pygame.Rect(rect.x + pad, y, rect.width - 2 * pad, self.px(22))
        bar(surface, track, pred.p_face, color, marker=self.cards[side].threshold)

    def _meter(self, surface: pygame.Surface, result: FrameResult) -> None:
        if result.rarity is None:
            self._below_video(
                surface, [(self.t("step_in"), 40, TEXT)] if not result.present else []
            )
            return
        v = self.video_rect
        y = v.bottom + self.px(28)
        surface.blit(self.text.render(self.t("rarity_title"), self.px(34)), (v.x, y))
        y += self.px(50)
        bar(surface, pygame.Rect(v.x, y, v.width, self.px(28)), result.rarity, YELLOW)
        y += self.px(44)
        pct = round(result.rarity * 100)
        surface.blit(self.text.render(self.t("rarity_text", pct=pct), self.px(30)), (v.x, y))
        y += self.px(42)
        surface.blit(self.text.render(self.t("rarity_note"), self.px(24), MUTED), (v.x, y))

    def _below_video(
        self, surface: pygame.Surface, lines: list[tuple[str, int, tuple[int, int, int]]]
    ) -> None:
        v = self.video_rect
        area = pygame.Rect(v.x, v.bottom + self.px(20), v.width, self.px(120))
        self._centered(surface, area, lines)

    def _attract(self, surface: pygame.Surface) -> None:
        v = self.video_rect
        inner = v.width - self.px(80)
        lines: list[tuple[str, int, tuple[int, int, int]]] = [(self.t("attract_title"), 64, TEXT)]
        lines += [
            (ln, 32, TEXT) for ln in self.text.wrap(self.t("attract_body"), self.px(32), inner)
        ]
        self._centered(surface, v, lines)
        self._below_video(
            surface, [(self.t("attract_invite"), 34, BLUE), (self.t("privacy"), 24, MUTED)]
        )

    def _banner(self, surface: pygame.Surface, notice: str) -> None:
        s = self.text.render(notice, self.px(30), YELLOW)
        rect = s.get_rect(midbottom=(surface.get_width() // 2, surface.get_height() - self.px(12)))
        pygame.draw.rect(
            surface, PANEL, rect.inflate(self.px(40), self.px(16)), border_radius=self.px(10)
        )
        surface.blit(s, rect)

    def _centered(
        self,
        surface: pygame.Surface,
        area: pygame.Rect,
        lines: list[tuple[str, int, tuple[int, int, int]]],
    ) -> None:
        surfs = [self.text.render(text, self.px(size), color) for text, size, color in lines]
        gap = self.px(14)
        total = sum(s.get_height() for s in surfs) + gap * max(len(surfs) - 1, 0)
        y = area.centery - total // 2
        for s in surfs:
            surface.blit(s, s.get_rect(midtop=(area.centerx, y)))
            y += s.get_height() + gap
