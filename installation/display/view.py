"""The kiosk screen: live mirror with the guide box, one panel per model, the rarity meter.

Layout is computed from the screen size (reference 1920x1080, unit u = height / 1080): a header,
a panel on each side (25 % of the width) and the video between them, the meter under the video.
Attract mode keeps the live image but blurred and dimmed to a soft impression of the room (nobody
is recognisable), so the screen still reacts when someone walks up.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pygame

from installation.display.palette import BG, BLUE, MUTED, PANEL, RGB, TEXT, WHITE, YELLOW
from installation.display.panels import Panel, UnavailablePanel
from installation.display.texts import Texts
from installation.display.widgets import TextCache, bar, brackets
from installation.heatmap import Heatmaps, heat_image
from installation.inference.card import Card
from installation.paths import TEXTS_DIR
from installation.types import (
    SIDES,
    FrameResult,
    Region,
    SourceState,
    SourceStatus,
)

logger = logging.getLogger(__name__)

Line = tuple[str, int, RGB]  # text, size in 1080p reference pixels, colour


class KioskView:
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
        self.mirror = mirror
        self.text = TextCache()
        w, h = size
        self.u = h / 1080.0
        self.margin = self.px(40)
        top = self.px(150)
        pw = int(w * 0.25)
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
        vx = self.margin * 2 + pw
        vw = w - 2 * vx
        # 4:3 camera image; leave room below it for the rarity meter (~280 px at 1080p).
        vh = min(int(vw * 3 / 4), h - top - self.px(290))
        self.video_rect = pygame.Rect(vx, top, vw, vh)
        self.frame_rect = self.video_rect.copy()  # where the last frame landed on screen
        self._last_region: Region | None = None
        self._heat_of: Heatmaps | None = None
        self._heat_size = self.px(190)
        self._heat_surfs: dict[str, pygame.Surface] = {}

    # -- language ------------------------------------------------------------------------

    @property
    def language(self) -> str:
        return self.texts.language

    @language.setter
    def language(self, lang: str) -> None:
        self.texts.load(lang)

    def t(self, key: str, **fmt: object) -> str:
        return self.texts.t(key, **fmt)

    def px(self, v: float) -> int:
        return max(round(v * self.u), 1)

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
        """Draw one screen; returns the ms spent on video, panels and the overlays."""
        t0 = time.perf_counter()
        surface.fill(BG)
        if paused:
            # Nothing of the camera is shown while staff have paused the exhibit.
            lines = [(self.t("paused_title"), 80, TEXT), (self.t("paused_body"), 40, MUTED)]
            self._centered(surface, surface.get_rect(), lines)
            self._camera_notice(surface, self.px(40))
            return {"video": 0.0, "panels": 0.0, "overlay": (time.perf_counter() - t0) * 1e3}
        if result is not None:
            self._last_region = result.region
        live = status.state == SourceState.OK and frame is not None
        if live and frame is not None:
            self._video(surface, frame, soft=attract)
        else:
            self._no_video(surface, status)
        t1 = time.perf_counter()
        # Verdicts only while someone is in the box: an empty room gets no "Missed".
        show = live and not attract and result is not None and result.present
        for side in SIDES:
            judged = show and result is not None and side in result.predictions
            verdict = result.verdict(side) if judged and result is not None else None
            self.panels[side].draw(surface, verdict, attract)
        t2 = time.perf_counter()
        self._header(surface)
        if live and attract:
            self._attract(surface)
        elif live and frame is not None:
            self._guide_box(surface, result, frame)
            if show and heatmaps is not None:
                self._heatmaps(surface, heatmaps)
            self._under_video(surface, result)
        if notice:
            self._banner(surface, notice)
        if fps_text:
            s = self.text.render(fps_text, self.px(26), MUTED)
            surface.blit(s, s.get_rect(bottomright=(self.size[0] - 8, self.size[1] - 4)))
        t3 = time.perf_counter()
        return {"video": (t1 - t0) * 1e3, "panels": (t2 - t1) * 1e3, "overlay": (t3 - t2) * 1e3}

    def _header(self, surface: pygame.Surface) -> None:
        m = self.margin
        title = self.text.render(self.t("title"), self.px(68))
        surface.blit(title, (m, self.px(26)))
        sub = self.t("subtitle")
        room = self.size[0] - 2 * m - self.px(460)
        sub_s = self.text.render(sub, self.text.fit(sub, self.px(34), room), MUTED)
        surface.blit(sub_s, (m, self.px(26) + title.get_height() + self.px(6)))
        hint = self.text.render(self.t("languages_hint"), self.px(28), MUTED)
        hint_rect = hint.get_rect(topright=(self.size[0] - m, self.px(40)))
        surface.blit(hint, hint_rect)
        self._camera_notice(surface, hint_rect.bottom + self.px(12))

    def _camera_notice(self, surface: pygame.Surface, y: int) -> None:
        """On every screen: the camera is on, and nothing it sees is kept."""
        note = self.text.render(self.t("camera_notice"), self.px(28), TEXT)
        surface.blit(note, note.get_rect(topright=(self.size[0] - self.margin, y)))

    def _video(self, surface: pygame.Surface, frame: np.ndarray, soft: bool) -> None:
        # frame: BGR uint8 [H, W, 3] from OpenCV. Bilinear resize + flip in OpenCV, then hand the
        # buffer to pygame: 1.7 ms for 640x480 -> 800x600 on a 2-core x86, against 1.2 ms for
        # pygame.transform.scale (nearest neighbour: blocky faces) and 4.5 ms for smoothscale.
        fh, fw = frame.shape[:2]
        box = self.video_rect
        scale = min(box.width / fw, box.height / fh)
        vw, vh = max(int(fw * scale), 1), max(int(fh * scale), 1)
        if soft:
            # Attract mode: a soft, dim impression of the room, no recognisable person.
            small = cv2.resize(
                frame, (max(vw // 40, 1), max(vh // 40, 1)), interpolation=cv2.INTER_AREA
            )
            img = cv2.resize(small, (vw, vh), interpolation=cv2.INTER_LINEAR)
            img = cv2.convertScaleAbs(img, alpha=0.35)
        else:
            img = cv2.resize(frame, (vw, vh), interpolation=cv2.INTER_LINEAR)
        if self.mirror:
            img = cv2.flip(img, 1)
        img = np.ascontiguousarray(img)
        surf = pygame.image.frombuffer(img.data, (vw, vh), "BGR")
        self.frame_rect = pygame.Rect(0, 0, vw, vh)
        self.frame_rect.midtop = box.midtop
        surface.blit(surf, self.frame_rect)

    def _no_video(self, surface: pygame.Surface, status: SourceStatus) -> None:
        pygame.draw.rect(surface, PANEL, self.video_rect, border_radius=self.px(22))
        key = {
            SourceState.UNAVAILABLE: "camera_unavailable",
            SourceState.ENDED: "recording_ended",
        }.get(status.state, "camera_connecting")
        color = YELLOW if key == "camera_unavailable" else TEXT
        self._centered(surface, self.video_rect, [(self.t(key), 44, color)])

    def guide_rect(self, region: Region, frame_size: tuple[int, int]) -> pygame.Rect:
        """Screen rectangle of a frame-pixel region, mirrored with the image when mirroring."""
        fw, fh = frame_size
        fr = self.frame_rect
        sx, sy = fr.width / fw, fr.height / fh
        x = fw - (region.x + region.w) if self.mirror else region.x  # flipped image, flipped box
        left, right = fr.x + round(x * sx), fr.x + round((x + region.w) * sx)
        top, bottom = fr.y + round(region.y * sy), fr.y + round((region.y + region.h) * sy)
        return pygame.Rect(left, top, right - left, bottom - top)

    def _guide_box(
        self, surface: pygame.Surface, result: FrameResult | None, frame: np.ndarray
    ) -> None:
        region = result.region if result is not None else self._last_region
        if region is None:
            return
        rect = self.guide_rect(region, (frame.shape[1], frame.shape[0]))
        present = result is not None and result.present
        brackets(surface, rect, BLUE if present else WHITE, self.px(8))

    def _heatmaps(self, surface: pygame.Surface, hm: Heatmaps) -> None:
        """Where each model looks, in the live image's lower corners on its own panel's side:
        the crop it judged, dimmed to grey, with yellow where covering the picture moved its
        face score the most (installation.heatmap). Mirrored like the live image."""
        size = self._heat_size
        if self._heat_of is not hm:  # new maps (frame indices restart when a source reopens)
            self._heat_surfs = {side: self._heat_surface(hm, side, size) for side in hm.maps}
            self._heat_of = hm
        f, pad = self.frame_rect, self.px(14)
        caption = self.t("looks_title")
        cap_size = self.text.fit(caption, self.px(26), size)
        for side, surf in self._heat_surfs.items():
            rect = surf.get_rect()
            if side == "left":
                rect.bottomleft = (f.x + pad, f.bottom - pad)
            else:
                rect.bottomright = (f.right - pad, f.bottom - pad)
            cap = self.text.render(caption, cap_size, TEXT)
            back = pygame.Rect(rect.x, rect.y - cap.get_height() - self.px(8), size, 0)
            back.height = rect.bottom - back.y
            pygame.draw.rect(surface, BG, back.inflate(self.px(8), self.px(8)))
            surface.blit(cap, (rect.x, back.y))
            surface.blit(surf, rect)

    def _heat_surface(self, hm: Heatmaps, side: str, size: int) -> pygame.Surface:
        crop = cv2.resize(hm.crop, (size, size), interpolation=cv2.INTER_LINEAR)  # RGB
        grey = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        heat = heat_image(hm.maps[side], size)[..., None]  # [size, size, 1] in [0, 1]
        base = np.repeat(grey[..., None] * 0.6, 3, axis=2)
        img = base * (1 - 0.8 * heat) + np.array(YELLOW, np.float32) * 0.8 * heat
        out = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
        if self.mirror:
            out = np.ascontiguousarray(out[:, ::-1])
        return pygame.image.frombuffer(out.data, (size, size), "RGB").copy()

    def _under_video(self, surface: pygame.Surface, result: FrameResult | None) -> None:
        """What the visitor reads under the mirror. Presence comes from the box, not from the
        models: a visitor whom both models miss is told that it is the models' failure."""
        if result is None or not result.present:
            self._below_video(surface, [(self.t("step_in"), 44, TEXT)])
            return
        meter_card = self.cards.get("right")
        count = meter_card.training_data.get("faces") if meter_card is not None else None
        if result.rarity is not None and isinstance(count, int):
            # A percentile is shown with the number of faces it is a percentile of; a card that
            # does not say how many faces its model learned from gets no meter.
            self._meter(surface, result.rarity, count)
            return
        if any(side not in result.predictions for side in SIDES):
            return  # one model only: there is no comparison to tell (its panel says why)
        left, right = result.found("left"), result.found("right")
        key = "both_found" if left and right else "one_found" if left or right else "missed_both"
        width = self.video_rect.width
        lines = self.text.wrap(self.t(key), self.px(36), width)[:3]
        self._below_video(surface, [(ln, 36, TEXT) for ln in lines])

    def _meter(self, surface: pygame.Surface, rarity: float, count: int) -> None:
        v = self.video_rect
        y = v.bottom + self.px(26)
        # Named for the model whose training data it measures (the right-hand one's latent).
        model = self.texts.model_name(self.cards["right"])
        title = self.t("rarity_title", model=model)
        surface.blit(self.text.render(title, self.text.fit(title, self.px(36), v.width)), (v.x, y))
        y += self.px(52)
        bar(surface, pygame.Rect(v.x, y, v.width, self.px(30)), rarity, YELLOW)
        y += self.px(48)
        text = self.t("rarity_text", pct=round(rarity * 100), count=count, model=model)
        surface.blit(self.text.render(text, self.text.fit(text, self.px(34), v.width)), (v.x, y))
        y += self.px(48)
        for line in self.text.wrap(self.t("rarity_note"), self.px(28), v.width)[:2]:
            surface.blit(self.text.render(line, self.px(28), MUTED), (v.x, y))
            y += self.px(34)

    def _below_video(self, surface: pygame.Surface, lines: list[Line]) -> None:
        v = self.video_rect
        area = pygame.Rect(v.x, v.bottom + self.px(20), v.width, self.px(140))
        self._centered(surface, area, lines)

    def _attract(self, surface: pygame.Surface) -> None:
        v = self.video_rect
        inner = v.width - self.px(100)
        title = self.t("attract_title")
        lines: list[Line] = [(title, self._fit_ref(title, 72, inner), TEXT)]
        body = self.text.wrap(self.t("attract_body"), self.px(38), inner)
        lines += [(ln, 38, TEXT) for ln in body]
        self._centered(surface, v, lines)
        invite = self.text.wrap(self.t("attract_invite"), self.px(38), v.width)
        self._below_video(
            surface, [(ln, 38, BLUE) for ln in invite] + [(self.t("privacy"), 28, MUTED)]
        )

    def _fit_ref(self, text: str, ref_size: int, width: int) -> int:
        """Like TextCache.fit, but in reference pixels (for `_centered`)."""
        return round(self.text.fit(text, self.px(ref_size), width) / self.u)

    def _banner(self, surface: pygame.Surface, notice: str) -> None:
        s = self.text.render(notice, self.px(32), YELLOW)
        rect = s.get_rect(midbottom=(self.size[0] // 2, self.size[1] - self.px(14)))
        pygame.draw.rect(
            surface, PANEL, rect.inflate(self.px(44), self.px(18)), border_radius=self.px(12)
        )
        surface.blit(s, rect)

    def _centered(self, surface: pygame.Surface, area: pygame.Rect, lines: list[Line]) -> None:
        surfs = [self.text.render(text, self.px(size), color) for text, size, color in lines]
        gap = self.px(12)
        total = sum(s.get_height() for s in surfs) + gap * max(len(surfs) - 1, 0)
        y = area.centery - total // 2
        for s in surfs:
            surface.blit(s, s.get_rect(midtop=(area.centerx, y)))
            y += s.get_height() + gap
