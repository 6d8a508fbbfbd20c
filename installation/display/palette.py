"""Colours of the kiosk screen, and the WCAG contrast check they are held to.

Okabe-Ito hues (safe for the common colour-vision deficiencies): sky blue means "face", orange
means "no face", yellow marks the rarity meter. Colour is never the only cue: every verdict also
has a word and a symbol (tick / cross). All text colours reach WCAG AA (4.5:1) on BG and PANEL.
"""

from __future__ import annotations

import math

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


# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB: how a colour looks
# with protanopia, deuteranopia or tritanopia (the tests hold the verdict colours to it).
_CVD: dict[str, tuple[tuple[float, float, float], ...]] = {
    "protan": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deutan": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
    "tritan": (
        (1.255528, -0.076749, -0.178779),
        (-0.078411, 0.930809, 0.147602),
        (0.004733, 0.691367, 0.303900),
    ),
}


def _encode(c: float) -> int:
    c = min(max(c, 0.0), 1.0)
    v = c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
    return round(v * 255)


def simulate_cvd(rgb: RGB, kind: str) -> RGB:
    """The colour as seen with a colour-vision deficiency: "protan", "deutan" or "tritan"."""
    lin = [_linear(c) for c in rgb]
    r, g, b = (sum(m * v for m, v in zip(row, lin, strict=True)) for row in _CVD[kind])
    return _encode(r), _encode(g), _encode(b)


def _lab(rgb: RGB) -> tuple[float, float, float]:
    r, g, b = (_linear(c) for c in rgb)
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(a: RGB, b: RGB) -> float:
    """CIE76 colour difference (about 2: just noticeable; above 20: clearly different)."""
    la, lb = _lab(a), _lab(b)
    return math.dist(la, lb)
