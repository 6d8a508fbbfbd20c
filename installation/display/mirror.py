"""The live mirror: the camera image, the guide box, and where each model looks.

This is the only part of the screen that changes with every camera frame, so it is drawn on its
own (the rest of the screen is redrawn only when what it says changes).
"""

from __future__ import annotations

import logging
import sys

import cv2
import numpy as np
import pygame

from installation.display.palette import BG, BLUE, PANEL, TEXT, WHITE, YELLOW
from installation.display.widgets import Drawn, Scaled, TextCache, brackets
from installation.heatmap import Heatmaps, heat_image
from installation.types import FrameResult, Region

logger = logging.getLogger(__name__)

NATIVE_UP_TO = 1.15  # a frame that would be enlarged by less than this is shown 1:1


# The heatmap overlays' transparent colour: a magenta in no palette, text or greyed crop.
_KEY = (255, 0, 254)
FRAME = 8  # px at 1080p: how much wider the heatmap's frame of background is than the map


def soft_tiny(frame: np.ndarray, vw: int, vh: int, mirror: bool) -> np.ndarray:
    """BGR uint8 [H, W, 3] -> the attract screen's room, [vh // 40, vw // 40, 3], dimmed.

    Averaged down in two steps: a bilinear reduction to 4x the tiny size (each of its pixels
    reads 4 of the frame's), then an area average of those (16 per tiny pixel). One area
    average straight from the frame's size reads every pixel and took 0.73 ms of CPU a frame at
    640x480 here, 2 % of a core at 30 fps for as long as nobody is in the box; the two steps
    take 0.07 ms and differ from it by at most 2 of 255 levels, in an image dimmed and blurred
    to 24x18 pixels."""
    tw, th = max(vw // 40, 1), max(vh // 40, 1)
    fh, fw = frame.shape[:2]
    if fw > 4 * tw and fh > 4 * th:
        frame = cv2.resize(frame, (4 * tw, 4 * th), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
    if mirror:
        small = cv2.flip(small, 1)
    out: np.ndarray = cv2.convertScaleAbs(small, alpha=0.35)
    return out


def screen_order(surface: pygame.Surface) -> int | None:
    """The OpenCV conversion from BGR to `surface`'s own pixel layout: COLOR_BGR2BGRA where its
    bytes are B, G, R, unused (SDL's usual 32-bit XRGB8888 on a little-endian machine),
    COLOR_BGR2RGBA where they are R, G, B, unused; None for any other format (16 or 24 bits,
    per-pixel alpha, big-endian)."""
    if (
        surface.get_bitsize() != 32
        or surface.get_flags() & pygame.SRCALPHA
        or surface.get_masks()[3]
    ):
        return None
    if sys.byteorder != "little":
        return None
    # A channel's byte in memory is its shift / 8 on a little-endian machine.
    bytes_at = tuple(shift // 8 for shift in surface.get_shifts()[:3])  # R, G, B
    if bytes_at == (2, 1, 0):
        return cv2.COLOR_BGR2BGRA
    if bytes_at == (0, 1, 2):
        return cv2.COLOR_BGR2RGBA
    return None


class Mirror(Scaled):
    def __init__(
        self, rect: pygame.Rect, cache: TextCache, u: float, mirror: bool, label_px: int
    ) -> None:
        self.rect = rect
        self.text = cache
        self.u = u
        self.mirror = mirror
        self.label_px = label_px
        self.frame_rect = rect.copy()  # where the last frame landed on screen
        # The surface and frame rectangle of the last image drawn: while a new frame lands in the
        # same place, the box around it is still plain background and is not filled again
        # (a fill of the whole box is a third of the mirror's cost per frame).
        self._placed: tuple[pygame.Surface, pygame.Rect] | None = None
        self._last_region: Region | None = None
        self._heat_of: Heatmaps | None = None
        self._video_surf: pygame.Surface | None = None  # the live image, in the screen's format
        self._order_of: tuple[pygame.Surface, int | None] | None = None  # screen, its layout
        self._heat_size = self.px(200)
        self._heat_surfs: dict[str, pygame.Surface] = {}
        self._captions: dict[
            str,
            tuple[
                object,
                tuple[pygame.Surface, pygame.Rect, pygame.Rect, list[Drawn]],
            ],
        ] = {}
        self.drawn: list[Drawn] = []

    def draw(
        self,
        surface: pygame.Surface,
        frame: np.ndarray | None,
        result: FrameResult | None,
        *,
        soft: bool,
        heatmaps: Heatmaps | None,
        caption: str,
    ) -> pygame.Rect:
        """Draw the mirror (or an empty box when there is no image); returns its rectangle."""
        self.drawn = []
        if frame is None:
            surface.fill(BG, self.rect)
            pygame.draw.rect(surface, PANEL, self.rect, border_radius=self.px(22))
            self._placed = None
            return self.rect
        if result is not None:
            self._last_region = result.region
        where = self._place(frame)
        placed = self._placed
        if placed is None or placed[0] is not surface or placed[1] != where:
            surface.fill(BG, self.rect)
            self._placed = (surface, where)
        self._video(surface, frame, soft, where)
        if not soft:
            # Overlays stay inside the mirror's box: a detector box partly outside the frame
            # must not paint over the header, which is redrawn only when its text changes.
            clip = surface.get_clip()
            surface.set_clip(self.rect.clip(clip))
            try:
                self._guide_box(surface, result, frame)
                if heatmaps is not None:
                    self._heatmaps(surface, heatmaps, caption)
            finally:
                surface.set_clip(clip)
        return self.rect

    def _place(self, frame: np.ndarray) -> pygame.Rect:
        """Where a frame of this size lands: scaled to fit the box, top-centred."""
        fh, fw = frame.shape[:2]
        box = self.rect
        scale = min(box.width / fw, box.height / fh)
        if 1.0 <= scale < NATIVE_UP_TO:
            # Nearly the camera's own size: shown pixel for pixel, crisp and with no resize
            # (about 1 ms a frame, 3 % of a core at 30 fps).
            scale = 1.0
        where = pygame.Rect(0, 0, max(int(fw * scale), 1), max(int(fh * scale), 1))
        where.midtop = box.midtop
        return where

    def _video(
        self, surface: pygame.Surface, frame: np.ndarray, soft: bool, where: pygame.Rect
    ) -> None:
        # frame: BGR uint8 [H, W, 3] from OpenCV. Flip and any bilinear resize in OpenCV:
        # pygame.transform.scale is nearest neighbour (blocky faces) and was slower, 1.2 against
        # ~1 ms for 640x480 -> 720x540 on a 2-core x86; smoothscale took 4.5 ms.
        vw, vh = where.size
        if soft:
            # Attract mode: a soft, dim impression of the room, no recognisable person (dimmed
            # and mirrored while tiny: 1/1600 of the pixels).
            frame = soft_tiny(frame, vw, vh, self.mirror)
        elif self.mirror:
            # Flipped at the camera's size, before any enlarging: fewer pixels to move.
            frame = cv2.flip(frame, 1)
        self.frame_rect = where.copy()
        if self._order_of is None or self._order_of[0] is not surface:
            self._order_of = (surface, screen_order(surface))  # asked once per screen surface
        order = self._order_of[1]
        if order is None:  # a screen format other than 32-bit B,G,R,X or R,G,B,X: Pygame converts
            img = frame
            if frame.shape[:2] != (vh, vw):
                img = cv2.resize(frame, (vw, vh), interpolation=cv2.INTER_LINEAR)
            img = np.ascontiguousarray(img)
            surface.blit(pygame.image.frombuffer(img.data, (vw, vh), "BGR"), self.frame_rect)
            return
        # The image is written straight into a surface in the screen's own pixel format, so the
        # blit is a plain copy: handing Pygame OpenCV's 24-bit BGR made the blit convert every
        # pixel (the same pixels in 0.50 against 0.68 ms a frame for 640x480 -> 800x600, and
        # 0.13 against 0.17 ms for the 1:1 image of a 640x480 camera at 1080p).
        video = self._video_surf
        if (
            video is None
            or video.get_size() != (vw, vh)
            or video.get_masks() != surface.get_masks()
        ):
            video = self._video_surf = pygame.Surface((vw, vh), 0, surface)
        # [vh, pitch / 4, 4] uint8 over the surface's memory, its rows' padding cut off; the
        # buffer locks `video` while this array lives
        view = np.asarray(video.get_buffer()).reshape(vh, video.get_pitch() // 4, 4)[:, :vw]
        if frame.shape[:2] == (vh, vw):  # shown 1:1 (a 640x480 camera at 1080p)
            cv2.cvtColor(frame, order, dst=view)
        else:
            # 4 channels before enlarging: fewer pixels to convert than after.
            four = cv2.cvtColor(frame, order)
            cv2.resize(four, (vw, vh), dst=view, interpolation=cv2.INTER_LINEAR)
        del view  # unlocks `video` for the blit
        surface.blit(video, self.frame_rect)

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
        self._spills(rect)

    def _spills(self, rect: pygame.Rect) -> None:
        """An overlay that reaches past the image (a box partly outside the frame): the next
        frame's blit does not cover it, so that draw fills the whole box again."""
        if not self.frame_rect.contains(rect):
            self._placed = None

    def _heatmaps(self, surface: pygame.Surface, hm: Heatmaps, caption: str) -> None:
        """Where each model looks, in the live image's lower corners on its own panel's side:
        the crop it judged, dimmed to grey, with yellow where covering the picture moved its
        face score the most (installation.heatmap). Mirrored like the live image.

        Each frame (30 a second) blits the framed map (opaque, in the screen's pixel format)
        and its caption (keyed, composed once per caption and place). A new map (6 a second)
        costs only its own framed surface: the whole overlay keyed and RLE-encoded anew for
        each map cost 0.87 ms a side, more than its cheaper blits saved. The map's frame is part
        of its surface rather than filled under it each frame: 0.2 ms a frame less for both."""
        size = self._heat_size
        if self._heat_of is not hm:  # new maps (frame indices restart when a source reopens)
            self._heat_surfs = {
                side: self._heat_surface(hm, side, size, surface) for side in hm.maps
            }
            self._heat_of = hm
        for side, framed in self._heat_surfs.items():
            label, label_at, frame_box, drawn = self._caption(side, (size, size), caption)
            surface.blit(framed, frame_box)
            surface.blit(label, label_at)
            self._spills(frame_box.union(label_at))
            self.drawn.extend(drawn)

    def _caption(
        self, side: str, size: tuple[int, int], caption: str
    ) -> tuple[pygame.Surface, pygame.Rect, pygame.Rect, list[Drawn]]:
        """(the caption on its rounded backing, where it goes, the framed map's place, the
        caption's texts), all in screen coordinates; composed once per side, caption, map size
        and image place."""
        f = self.frame_rect
        key = (side, caption, size, (f.x, f.y, f.width, f.height))
        cached = self._captions.get(side)
        if cached is not None and cached[0] == key:
            return cached[1]
        rect, back, half, lines = self._heat_layout(side, size, caption)
        # Opaque, with a colour key outside the rounded backing: RLE-encoded once, then the
        # cheapest blit there is, 30 times a second.
        label = pygame.Surface(back.size)
        label.fill(_KEY)
        dx, dy = -back.x, -back.y
        pygame.draw.rect(label, BG, label.get_rect(), border_radius=self.px(8))
        # The caption is a main-layer label (full size) on a solid backing over the image,
        # wrapped to its half of the image.
        line_h = self.text.render(caption, self.label_px).get_height()
        y = back.y + self.px(4)
        drawn: list[Drawn] = []
        for line in lines:
            at = {"topleft": (back.x + self.px(8) + dx, y + dy)}
            if side == "right":
                at = {"topright": (back.right - self.px(8) + dx, y + dy)}
            d = self.text.put(
                label, "label", line, self.label_px, color=TEXT, bg=BG, box=half.move(dx, dy), **at
            )
            drawn.append(d.moved(-dx, -dy))
            y += line_h
        label.set_colorkey(_KEY, pygame.RLEACCEL)
        frame = self.px(FRAME)
        value = (label, back, rect.inflate(frame, frame), drawn)
        self._captions[side] = (key, value)
        return value

    def _heat_layout(
        self, side: str, size: tuple[int, int], caption: str
    ) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, list[str]]:
        """(map rectangle, caption backing, caption's box, caption lines) for one side, in
        screen coordinates; worked out only when its overlay is composed."""
        f, pad = self.frame_rect, self.px(14)
        rect = pygame.Rect((0, 0), size)
        half = pygame.Rect(0, f.y, f.width // 2 - 2 * pad, f.height)
        if side == "left":
            rect.bottomleft = (f.x + pad, f.bottom - pad)
            half.left = f.x + pad
        else:
            rect.bottomright = (f.right - pad, f.bottom - pad)
            half.right = f.right - pad
        lines = self.text.wrap(caption, self.label_px, half.width - self.px(16))
        line_h = self.text.render(caption, self.label_px).get_height()
        width = max(self.text.render(ln, self.label_px).get_width() for ln in lines)
        back = pygame.Rect(0, 0, width + self.px(16), line_h * len(lines) + self.px(8))
        back.bottom = rect.y - self.px(4)
        if side == "left":
            back.left = rect.left
        else:
            back.right = rect.right
        return rect, back, half, lines

    def _heat_surface(
        self, hm: Heatmaps, side: str, size: int, target: pygame.Surface
    ) -> pygame.Surface:
        # Blended at the crop's own size (64 px: what the model saw), then enlarged once:
        # ~10x fewer pixels than blending at screen size, 8 times a second per model.
        n = hm.crop.shape[0]
        grey = cv2.cvtColor(hm.crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        heat = heat_image(hm.maps[side], n)[..., None]  # [n, n, 1] in [0, 1]
        base = np.repeat(grey[..., None] * 0.6, 3, axis=2)
        img = base * (1 - 0.8 * heat) + np.array(YELLOW, np.float32) * 0.8 * heat
        small = np.clip(img, 0, 255).astype(np.uint8)
        out = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        if self.mirror:
            out = cv2.flip(out, 1)
        out = np.ascontiguousarray(out)
        # The map on its frame of background (the `frame_box` of `_caption`: the map's rectangle
        # inflated by FRAME), in the target's pixel format: each frame's blit is one plain copy.
        frame = self.px(FRAME)
        framed = pygame.Surface((size + frame, size + frame)).convert(target)
        framed.fill(BG)
        framed.blit(pygame.image.frombuffer(out.data, (size, size), "RGB"), (frame // 2,) * 2)
        return framed
