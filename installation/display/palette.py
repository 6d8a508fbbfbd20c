"""Colours of the kiosk screen, and the WCAG contrast check they are held to.

Okabe-Ito hues (safe for the common colour-vision deficiencies): sky blue means "face", orange
means "no face", yellow marks the rarity meter. Colour is never the only cue: every verdict also
has a word and a symbol (tick / cross). All text colours reach WCAG AA (4.5:1) on BG and PANEL.
"""

from __future__ import annotations

RGB = tuple[int, int, int]

BG: RGB = (14, 17, 22)
PANEL: RGB = (28, 33, 41)
RULE: RGB = (70, 78, 90)
TEXT: RGB = (245, 245, 245)
MUTED: RGB = (184, 192, 202)
TRACK: RGB = (58, 66, 78)
BLUE: RGB = (86, 180, 233)  # Okabe-Ito sky blue: "face"
ORANGE: RGB = (230, 159, 0)  # Okabe-Ito orange: "no face"
YELLOW: RGB = (240, 228, 66)  # Okabe-Ito yellow: rarity, notices
WHITE: RGB = (255, 255, 255)

# Pairs that carry text: (foreground, background). Checked by the tests against WCAG AA.
TEXT_PAIRS: dict[str, tuple[RGB, RGB]] = {
    f"{fg_name} on {bg_name}": (fg, bg)
    for fg_name, fg in (
        ("TEXT", TEXT),
        ("MUTED", MUTED),
        ("BLUE", BLUE),
        ("ORANGE", ORANGE),
        ("YELLOW", YELLOW),
    )
    for bg_name, bg in (("BG", BG), ("PANEL", PANEL))
}


def _linear(channel: int) -> float:
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: RGB) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""
    r, g, b = (_linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio, 1 (same) .. 21 (black on white)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
