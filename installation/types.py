"""Typed values that flow one way through the runtime.

The pipeline produces them; the display, `replay` and the stats publisher consume them. Nothing here
is ever persisted or sent as is: `FrameResult.frame` and `Prediction.latent` stay in memory.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

ImageU8 = npt.NDArray[np.uint8]  # H x W x 3, BGR as OpenCV delivers it unless named otherwise


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

    @property
    def present(self) -> bool:
        """Someone is in the box: either model sees a face in the crop."""
        return any(p.face for p in self.predictions.values())


class SourceState(enum.Enum):
    OK = "ok"
    CONNECTING = "connecting"
    UNAVAILABLE = "unavailable"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    state: SourceState
    message: str = ""
    dropped_frames: int = 0
    fps: float = 0.0
