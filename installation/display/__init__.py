"""Pygame kiosk display. The pipeline never imports this; the kiosk wiring does."""

from installation.display.app import IDLE, DisplayApp, FrameInputs
from installation.display.texts import LANGUAGES, Texts
from installation.display.view import KioskView

__all__ = ["IDLE", "LANGUAGES", "DisplayApp", "FrameInputs", "KioskView", "Texts", "render_to_png"]


def render_to_png(view: KioskView, path: object, **draw_kwargs: object) -> None:
    """Draw one state offscreen and save it (docs, look tests)."""
    import pygame

    pygame.display.init()
    pygame.font.init()
    if pygame.display.get_surface() is None:
        pygame.display.set_mode((1, 1))
    surface = pygame.Surface(view.size)
    view.draw(surface, **draw_kwargs)  # type: ignore[arg-type]
    pygame.image.save(surface, str(path))
