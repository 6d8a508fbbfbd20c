"""The display loop (Pygame Zero style): events -> tick -> draw -> flip -> clock.

Runs on the main thread. Keys 1/2/3 switch the language; Ctrl+Shift+Q quits (staff only; Esc
does nothing on a public kiosk). The loop waits on the shared stop event and always calls
pygame.quit() on the way out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from installation.config import DisplayConfig
from installation.display.view import KioskView
from installation.display.widgets import quit_pygame
from installation.heatmap import Heatmaps
from installation.types import LANGUAGES, FrameResult, SourceState, SourceStatus

logger = logging.getLogger(__name__)

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@dataclass(frozen=True)
class FrameInputs:
    frame: np.ndarray | None
    result: FrameResult | None
    status: SourceStatus
    attract: bool
    paused: bool = False
    notice: str | None = None
    frame_t: float | None = None  # capture time (monotonic) of `frame`, for the latency figure
    heatmaps: Heatmaps | None = None  # where each model looks, for the current visitor


IDLE = FrameInputs(None, None, SourceStatus(SourceState.CONNECTING), attract=True)
# A screen with nothing new is still redrawn this often, so the draw rate that staff see stays
# above zero while the loop is alive (a frozen loop then shows as 0).
HEARTBEAT_S = 1.0


def _unchanged(a: FrameInputs, b: FrameInputs) -> bool:
    """Nothing to redraw: the same camera frame, result and maps (by identity), same states."""
    return (
        a.frame is b.frame
        and a.frame_t == b.frame_t
        and a.result is b.result
        and a.heatmaps is b.heatmaps
        and a.status == b.status
        and (a.attract, a.paused, a.notice) == (b.attract, b.paused, b.notice)
    )


LANGUAGE_KEYS = {"1": "en", "2": "de", "3": "fr"}


class DisplayApp:
    def __init__(
        self, cfg: DisplayConfig, view_factory: Callable[[tuple[int, int]], KioskView]
    ) -> None:
        self.cfg = cfg
        self._view_factory = view_factory
        self.view: KioskView | None = None
        self.render_ms: deque[float] = deque(maxlen=2048)
        self.latency_ms: deque[float] = deque(maxlen=2048)
        self.frames = 0  # loop turns (screen refreshes at display.fps)
        self.redraws = 0  # of those, turns that drew: only when something changed
        # Camera frames that reached the screen, and the capture times of the first and the last
        # (their rate is the screen's real frame rate: turns that draw nothing new show nothing).
        self.shown = 0
        self.shown_span: tuple[float, float] | None = None
        self.heatmap_updates = 0  # set by the kiosk when it stops (bench)
        self._language: str = cfg.language
        self._on_language: Callable[[str], None] | None = None

    def set_language(self, lang: str, visit: bool = False) -> None:
        """Switch language (keys or a staff command); tells the listener once.

        `visit`: a visitor's key, or the switch back when their visit ended. Logged at debug
        level only: a timestamped line in the journal would say when someone stood at the
        exhibit and what they chose (no per-visitor trace is kept). Staff's at info."""
        if lang not in LANGUAGES or lang == self._language:
            return
        self._language = lang
        if self.view is not None:
            self.view.language = lang
        logger.log(logging.DEBUG if visit else logging.INFO, "language: %s", lang)
        if self._on_language is not None:
            self._on_language(lang)

    @property
    def language(self) -> str:
        return self._language

    def handle_key(
        self, key_name: str, ctrl: bool, shift: bool, stop_event: threading.Event
    ) -> None:
        if key_name in LANGUAGE_KEYS:
            self.set_language(LANGUAGE_KEYS[key_name], visit=True)
        elif key_name == "q" and ctrl and shift:
            logger.info("staff quit (Ctrl+Shift+Q)")
            stop_event.set()

    @property
    def shown_fps(self) -> float:
        """Camera frames drawn per second of camera time (0 before two were drawn)."""
        if self.shown_span is None or self.shown < 2:
            return 0.0
        first, last = self.shown_span
        return (self.shown - 1) / (last - first) if last > first else 0.0

    def _pace(self, clock: Any, news: threading.Event | None, turn_started: float) -> None:
        """Until the next turn: a frame period after this one started, or a new result."""
        if news is None:
            clock.tick(self.cfg.fps)
            return
        remaining = 1.0 / self.cfg.fps - (time.monotonic() - turn_started)
        if remaining > 0:
            news.wait(remaining)
        # Cleared after the wait: a result that comes later sets it again; one that came in
        # between is read by the turn that follows at once.
        news.clear()
        clock.tick()  # only measures the rate (show_fps)

    def run(
        self,
        tick: Callable[[], FrameInputs],
        on_language: Callable[[str], None],
        stop_event: threading.Event,
        *,
        max_frames: int | None = None,
        on_frame: Callable[[float, float | None], None] | None = None,
        news: threading.Event | None = None,
    ) -> None:
        """The loop turns `display.fps` times a second; given `news` (set by the pipeline on each
        new result) it also turns as soon as a result comes, so a judged frame reaches the
        screen in a millisecond or two instead of waiting up to a frame period for the clock."""
        import pygame

        self._on_language = on_language
        # Read by SDL when the window's surface is made: without it SDL may draw every update
        # through OpenGL, which a software OpenGL (no GPU, a VM, Xvfb) does on the CPU, for the
        # whole window each time (75-85 % of a core at 1080p here, against about a tenth).
        os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "1" if self.cfg.gl_framebuffer else "0"
        pygame.display.init()
        pygame.font.init()
        try:
            flags = pygame.FULLSCREEN if self.cfg.fullscreen else 0
            size = (self.cfg.width, self.cfg.height)
            screen = pygame.display.set_mode(size, flags)
            pygame.display.set_caption("Bias Mirror")
            pygame.mouse.set_visible(False)
            self.view = self._view_factory(screen.get_size())
            self.view.language = self._language
            clock = pygame.time.Clock()
            last_frame_t: float | None = None
            drawn: tuple[FrameInputs, str] | None = None
            drawn_at = 0.0
            while not stop_event.is_set():
                turn_started = time.monotonic()
                for event in pygame.event.get():
                    if event.type == pygame.QUIT:
                        stop_event.set()
                    elif event.type == pygame.KEYDOWN:
                        mods = event.mod
                        self.handle_key(
                            pygame.key.name(event.key),
                            bool(mods & pygame.KMOD_CTRL),
                            bool(mods & pygame.KMOD_SHIFT),
                            stop_event,
                        )
                inputs = tick()
                t0 = time.perf_counter()
                fps_text = f"{clock.get_fps():.0f} fps" if self.cfg.show_fps else None
                if (
                    drawn is not None
                    and fps_text is None
                    and drawn[1] == self._language
                    and _unchanged(drawn[0], inputs)
                    and time.monotonic() - drawn_at < HEARTBEAT_S
                ):
                    # Nothing changed: no draw, no update (a quarter of a core saved at 60 fps).
                    self.frames += 1
                    if max_frames is not None and self.frames >= max_frames:
                        break
                    self._pace(clock, news, turn_started)
                    continue
                drawn, drawn_at = (inputs, self._language), time.monotonic()
                self.redraws += 1
                self.view.draw(
                    screen,
                    frame=inputs.frame,
                    result=inputs.result,
                    status=inputs.status,
                    attract=inputs.attract,
                    paused=inputs.paused,
                    notice=inputs.notice,
                    fps_text=fps_text,
                    heatmaps=inputs.heatmaps,
                )
                if self.view.dirty:
                    # Only what changed goes to the screen (usually just the mirror).
                    pygame.display.update(self.view.dirty)
                render_ms = (time.perf_counter() - t0) * 1e3
                latency = None
                if inputs.frame_t is not None and inputs.frame_t != last_frame_t:
                    # First time this camera frame reaches the screen.
                    latency = (time.monotonic() - inputs.frame_t) * 1e3
                    last_frame_t = inputs.frame_t
                    self.shown += 1
                    first = inputs.frame_t if self.shown_span is None else self.shown_span[0]
                    self.shown_span = (first, inputs.frame_t)
                    self.latency_ms.append(latency)
                self.render_ms.append(render_ms)
                if on_frame is not None:
                    on_frame(render_ms, latency)
                self.frames += 1
                if max_frames is not None and self.frames >= max_frames:
                    break
                self._pace(clock, news, turn_started)
        finally:
            quit_pygame()
