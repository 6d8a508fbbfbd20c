"""The detector's second view: the centre of the crop, zoomed back to the input size.

A face model judges a 64x64 crop of the guide box. Measured on in-the-wild faces (wider-demog
half B), the shipped models find most faces when the face fills 0.7-1.0 of the crop and fewer
when it fills half of it, which is where a visitor 0.5-0.7 m from the camera stands. A bundle
whose card sets `zoom` (e.g. 0.7) is judged on two views of the same crop, as a multi-scale face
detector is: the crop, and its centre (`zoom` of the side: 45x45 pixels at 0.7) resized back to
64x64; the face logit is the larger of the two. The card's threshold is set on that same score
(2 % of the validation non-faces, each judged on its own two views), so the false-positive
rate it states still holds. One home for the view, used by the kiosk and by model_export's
evaluation, so both judge exactly the same pixels.

A card may also set `flip_average`: each view is judged as it is and as its left-right mirror
image, and the two face logits are averaged (test-time augmentation; the models are trained on
mirrored faces half the time, so either image is as much a face to them, and the average of
two looks is steadier than one). Its threshold is set on that averaged score as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# A zoom outside this range is a mistake: below it the view is a few pixels blown up; 1.0 is
# the crop itself.
ZOOM_MIN, ZOOM_MAX = 0.4, 0.95


def check_zoom(zoom: float | None) -> None:
    """None (the crop alone) or a share of the crop's side in [ZOOM_MIN, ZOOM_MAX]."""
    if zoom is not None and not (ZOOM_MIN <= zoom <= ZOOM_MAX):
        raise ValueError(
            f"zoom {zoom}: the second view is the centre of the crop, a share of its side "
            f"from {ZOOM_MIN} to {ZOOM_MAX} (e.g. 0.7); leave it out for the crop alone"
        )


def zoom_view(crop: np.ndarray, zoom: float) -> np.ndarray:
    """uint8 [S, S, 3] -> uint8 [S, S, 3]: the centred square of side round(S * zoom), resized
    back to S x S (bilinear; an upscale, so no area averaging to do)."""
    side = crop.shape[0]
    s = round(side * zoom)
    o = (side - s) // 2
    out: np.ndarray = cv2.resize(
        crop[o : o + s, o : o + s], (side, side), interpolation=cv2.INTER_LINEAR
    )
    return out


def flip_views(x: np.ndarray) -> np.ndarray:
    """uint8 [..., S, S, 3] -> the same images mirrored left to right (a contiguous copy)."""
    return np.ascontiguousarray(x[..., ::-1, :])


def mirrored_corners(
    corners: Sequence[tuple[int, int]], patch: int, side: int
) -> list[tuple[int, int]]:
    """The (y, x) corners of the same squares in the mirrored image: x -> side - x - patch."""
    return [(y, side - x - patch) for y, x in corners]


def combine(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """float [N] logits of images and of their mirror images -> the face logits [N] the card's
    `flip_average` scores with: their mean."""
    out: np.ndarray = (plain + mirrored) / 2.0
    return out


def zoom_views(x: np.ndarray, zoom: float) -> np.ndarray:
    """uint8 [N, S, S, 3] -> their zoomed views, uint8 [N, S, S, 3]."""
    if len(x) == 0:
        out: np.ndarray = x.copy()
    else:
        out = np.stack([zoom_view(img, zoom) for img in x])
    return out


@dataclass(frozen=True)
class Views:
    """How a bundle judges a crop, from its card: the crop alone, or also its zoomed centre
    (`zoom`), each view alone or averaged with its mirror image (`flip_average`). One value
    carried from the export's options to the card, and from the card to every scorer."""

    zoom: float | None = None
    flip_average: bool = False

    def __post_init__(self) -> None:
        check_zoom(self.zoom)

    @classmethod
    def of_card(cls, card: Mapping[str, Any]) -> Views:
        """The views a card's fields (card.json as read) set; absent keys: the crop alone."""
        return cls(card.get("zoom"), bool(card.get("flip_average", False)))

    @property
    def count(self) -> int:
        """Images judged per crop: a zoom and a mirror image each double it."""
        return (1 if self.zoom is None else 2) * (2 if self.flip_average else 1)

    def card_fields(self) -> dict[str, Any]:
        """The card keys that record these views (none for the crop alone)."""
        return {
            **({"zoom": self.zoom} if self.zoom is not None else {}),
            **({"flip_average": True} if self.flip_average else {}),
        }

    def score(self, logits: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        """uint8 [N, S, S, 3] -> the face logits [N] as the kiosk scores them, given `logits`
        (images -> their logits [N]): each view's logit, averaged with its mirror image's
        with flip_average; with a zoom, the larger of the crop's and its zoomed view's."""

        def view(v: np.ndarray) -> np.ndarray:
            own = logits(v)
            return combine(own, logits(flip_views(v))) if self.flip_average else own

        out = view(x)
        if self.zoom is not None:
            out = np.maximum(out, view(zoom_views(x, self.zoom)))
        return out


CROP_ALONE = Views()  # the crop judged once: a card that sets neither key
