"""Typed values that flow one way through the runtime.

The pipeline produces them; the display, `replay` and the stats publisher consume them. Nothing here
is ever persisted or sent as is: `FrameResult.frame` and `Prediction.latent` stay in memory.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from installation.logits import sigmoid

ImageU8 = npt.NDArray[np.uint8]  # H x W x 3, BGR as OpenCV delivers it unless named otherwise

# The screen languages: one file each in assets/texts/, keys 1/2/3 on the kiosk in this order.
Language = Literal["en", "de", "fr"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

# The two models side by side on the screen, in the stats and in replay reports.
Side = Literal["left", "right"]
SIDES: tuple[Side, ...] = get_args(Side)


def require_sides(per_side: Mapping[str, object], who: str, what: str) -> None:
    """Raise ValueError unless `per_side` has an entry for every side."""
    missing = [side for side in SIDES if side not in per_side]
    if missing:
        raise ValueError(f"{who} needs {what} for {missing}; got {sorted(per_side)}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame. `t` is `time.monotonic()` at capture."""

    index: int
    t: float
    image: ImageU8


@dataclass(frozen=True, slots=True)
class Region:
    """The crop both models judge, in pixels of the source frame."""

    x: int
    y: int
    w: int
    h: int
    source: str = "guide_box"  # "guide_box" or "detector"

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One model's verdict on one crop."""

    p_face: float  # sigmoid(logit) in [0, 1]
    face: bool  # p_face >= the card's threshold
    logit: float
    ms: float  # invoke latency incl. quantize / dequantize
    latent: npt.NDArray[np.float32] | None = None  # [latent_dim], DB-VAE only; never leaves RAM


@dataclass(frozen=True, slots=True)
class Verdict:
    """One model's smoothed decision (installation.verdicts.VerdictTracker)."""

    face: bool
    margin: float  # median logit - threshold logit (> 0: above the model's decision line)
    clear: bool  # the median is beyond the hysteresis band, on the verdict's side

    @property
    def strength(self) -> float:
        """The margin squashed to (0, 1), 0.5 at the decision line: a bar for the screen."""
        return sigmoid(self.margin)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the pipeline knows about one processed frame."""

    frame_index: int
    t_capture: float  # monotonic
    t_done: float  # monotonic
    region: Region
    predictions: dict[str, Prediction]  # keyed "left" / "right"
    rarity: float | None = None  # percentile in [0, 1] vs. training faces, from the DB-VAE latent
    stage_ms: dict[str, float] = field(default_factory=dict)
    frame: ImageU8 | None = None  # for the live mirror only; never stored or sent
    crop: ImageU8 | None = None  # [64, 64, 3] model input, for the heatmaps only; never stored
    # Stable per-model verdicts (smoothed, with hysteresis): what the screen and stats use.
    # Empty when no tracker ran; then the raw per-frame decisions stand in.
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    occupied: bool = False  # motion / occupancy in the guide box, independent of both models
    # A visit that occupancy (or the Haar detector) started is still going on. A model's face
    # counts as presence only within one: it carries a visitor who stood still so long that they
    # faded into the learnt background, but never starts a visit in an empty box. True for a
    # result made without the pipeline (no detector ran): then the models' faces stand in.
    in_visit: bool = True

    def verdict(self, side: str) -> Verdict:
        """The model's stable verdict on `side`; a result made without trackers (no smoothing
        ran) stands in its raw decision, shown as a clear one."""
        v = self.verdicts.get(side)
        if v is not None:
            return v
        face = self.predictions[side].face
        return Verdict(face=face, margin=2.0 if face else -2.0, clear=True)

    def found(self, side: str) -> bool:
        """Whether the model on `side` finds a face (its stable verdict when there is one);
        False for a side that did not judge (its bundle did not load)."""
        return side in self.predictions and self.verdict(side).face

    @property
    def present(self) -> bool:
        """Someone is in the box: the occupancy detector says so, or either model sees a face
        during a visit the detector started. A visitor whom both models miss is still a visitor;
        a face a model sees in the empty box is not one."""
        return self.occupied or (self.in_visit and any(self.found(s) for s in self.predictions))

    @property
    def missed_by_both(self) -> bool:
        """A visitor is in the box and neither model finds their face."""
        return self.present and not any(self.found(s) for s in self.predictions)


class SourceState(enum.Enum):
    OK = "ok"
    CONNECTING = "connecting"
    UNAVAILABLE = "unavailable"
    ENDED = "ended"


# The retained state's `camera` word (docs/mqtt.md), one per source state: "lost" while it is
# being reopened, "ended" when a recording without `loop` is over; both are problems for staff.
CAMERA_WORDS: dict[SourceState, str] = {
    SourceState.OK: "ok",
    SourceState.CONNECTING: "ok",
    SourceState.UNAVAILABLE: "lost",
    SourceState.ENDED: "ended",
}
CAMERA_PROBLEMS: tuple[str, ...] = ("lost", "ended")


@dataclass(frozen=True, slots=True)
class SourceStatus:
    state: SourceState
    message: str = ""
    dropped_frames: int = 0
    fps: float = 0.0
