"""Pygame kiosk display. The pipeline never imports this; the kiosk wiring does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from installation.display.app import IDLE, DisplayApp, FrameInputs
from installation.display.texts import Texts, TextsError
from installation.display.view import KioskView

__all__ = [
    "IDLE",
    "DisplayApp",
    "FrameInputs",
    "KioskView",
    "Texts",
    "TextsError",
    "render_to_png",
]


def render_to_png(view: KioskView, path: Path, **draw_kwargs: Any) -> None:
    """Draw one state offscreen (keyword arguments of `KioskView.draw`) and save it as PNG."""
    import pygame

    pygame.display.init()
    pygame.font.init()
    if pygame.display.get_surface() is None:
        # convert_alpha() in the text cache needs a display mode, even a 1x1 dummy one.
        pygame.display.set_mode((1, 1))
    surface = pygame.Surface(view.size)
    view.draw(surface, **draw_kwargs)
    pygame.image.save(surface, str(path))
