"""Is someone standing in the guide box? Decided without the two face models.

The exhibit is about faces the models miss, so presence must not come from their verdicts: a
visitor whom both models miss would otherwise be ignored (told to step into the frame, then shown
the attract screen) and not counted by the stats. `OccupancyDetector` compares the guide box with a
slowly learnt picture of the empty box (frame differencing against a running-average background):

* The box is shrunk to 32x32 grey ([32, 32] float32): enough to see a person, far too coarse to
  recognise one, and ~0.1 ms per frame. The background is that image, averaged over time.
* Occupied = the share of cells that differ from the background by more than `DIFF_LEVEL` grey
  levels (after removing the frame-wide brightness change of auto-exposure) is at least
  `occupancy_min`; it clears again below half that share (hysteresis: no flicker at the edge).
* The background learns fast while the box is empty (time constant `EMPTY_TAU_S`, so lighting
  drift is absorbed) and slowly while it is occupied (`OCCUPIED_TAU_S`, so a visitor who stands
  still stays "present"; whoever stays longer is present while either model sees their face).
* When someone arrives, the empty box is remembered; the moment the box looks like it again, the
  visit is over (a long visit has by then seeped into the background and would otherwise leave
  a "ghost" there).
* `vacated` marks the frame on which the detector saw the visitor go (the box looks empty again,
  or it cleared right after motion), as opposed to a visitor who stood still so long that they
  faded into the background: the pipeline lets a model's face carry a visit on through such a
  fade, but never past a departure (a model that takes the empty wall for a face must not keep
  a visit going, or start one).
* A box that stays "occupied" with nothing moving in it for `STILL_RELEARN_S` (an object put
  down) is learnt as the new empty box. A visitor sways, blinks and breathes: `MOTION_LEVEL` is
  far below that and above sensor noise.

Only the running background (32x32 numbers of the empty box) is kept, in RAM; no frame or crop.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import numpy.typing as npt

from installation.types import ImageU8, Region

logger = logging.getLogger(__name__)

CELLS = 32  # the box is judged as CELLS x CELLS grey cells
DIFF_LEVEL = 22.0  # grey levels (0-255) a cell must change by to count: above sensor noise
EMPTY_TAU_S = 3.0  # background time constant while nobody is there
OCCUPIED_TAU_S = 120.0  # ... and while someone is (a still visitor fades out only after minutes)
RELEASE_RATIO = 0.5  # occupied clears below this share of occupancy_min
MOTION_LEVEL = 4.0  # grey levels a cell changes by between two frames to count as motion
MOTION_MIN = 0.01  # share of cells that must move: ~10 of 1,024 (noise moves < 1 in 1,000)
STILL_RELEARN_S = 15.0  # occupied without motion this long: relearn the empty box
LEAVE_MOTION_S = 2.0  # a clear this soon after motion is a departure, not a fade
GAP_RELEARN_S = 5.0  # no frame for this long (camera lost, paused): relearn the empty box


class OccupancyDetector:
    """Motion / occupancy in the guide box. Not thread-safe: the pipeline thread calls `update`.

    Times are the frames' own (`Frame.t`): monotonic seconds in the kiosk, the position in the
    recording in `replay`, so a replay is deterministic.
    """

    def __init__(self, occupancy_min: float = 0.12) -> None:
        if not 0 < occupancy_min <= 1:
            raise ValueError(
                f"occupancy_min must be in (0, 1], got {occupancy_min}; "
                "fix region.occupancy_min in the config"
            )
        self.occupancy_min = occupancy_min
        self._bg: npt.NDArray[np.float32] | None = None  # [CELLS, CELLS], the empty box
        self._prev: npt.NDArray[np.float32] | None = None  # [CELLS, CELLS], the last frame
        self._empty: npt.NDArray[np.float32] | None = None  # [CELLS, CELLS], box before arrival
        self._t = 0.0
        self._last_motion = 0.0
        self.occupied = False
        self.occupancy = 0.0  # share of changed cells in the last frame, in [0, 1]
        self.vacated = False  # this frame: the visitor left (not: faded into the background)

    def reset(self) -> None:
        """Forget the background (a new source: another camera, another recording)."""
        self._bg = self._prev = self._empty = None
        self.occupied, self.occupancy, self.vacated = False, 0.0, False

    def update(self, frame_bgr: ImageU8, box: Region, t: float) -> bool:
        """One frame at time `t` (s); returns whether the box is occupied."""
        cells = _cells(frame_bgr, box)
        self.vacated = False
        prev = self._prev
        if (
            self._bg is None
            or prev is None
            or self._bg.shape != cells.shape
            or not 0 <= t - self._t <= GAP_RELEARN_S  # a jump: camera back, recording looped
        ):
            self._learn(cells, t)
            return False
        self._prev = cells
        step = cells - prev
        step -= _median(step)  # auto-exposure shifts every cell alike: not a visitor
        if float(np.mean(np.abs(step) > MOTION_LEVEL)) >= MOTION_MIN:
            self._last_motion = t
        self.occupancy = _changed(cells, self._bg)
        release = self.occupancy_min * RELEASE_RATIO
        if self.occupied:
            gone = self._empty is not None and _changed(cells, self._empty) < release
            if gone or self.occupancy < release:
                # Cleared with the empty box back, or right after motion: someone walked off. A
                # slow clear with nothing moving is a still visitor fading into the background.
                self.vacated = gone or t - self._last_motion <= LEAVE_MOTION_S
                self._learn(cells, t)  # the empty box again: start from it, no ghost
                return False
        elif self.occupancy >= self.occupancy_min:
            self.occupied = True
            self._empty = self._bg.copy()
        if self.occupied and t - self._last_motion > STILL_RELEARN_S:
            logger.debug("guide box occupied but still for %.0f s: relearning it", STILL_RELEARN_S)
            self._learn(cells, t)
            return False
        dt = t - self._t
        self._t = t
        tau = OCCUPIED_TAU_S if self.occupied else EMPTY_TAU_S
        alpha = 1.0 - math.exp(-dt / tau)
        self._bg += np.float32(alpha) * (cells - self._bg)
        return self.occupied

    def _learn(self, cells: npt.NDArray[np.float32], t: float) -> None:
        self._bg, self._prev, self._empty = cells.copy(), cells, None
        self._t = self._last_motion = t
        self.occupied, self.occupancy = False, 0.0


def _changed(cells: npt.NDArray[np.float32], ref: npt.NDArray[np.float32]) -> float:
    """Share of cells that differ from `ref` by more than DIFF_LEVEL, after removing the change
    every cell shares (auto-exposure)."""
    diff = cells - ref
    diff -= _median(diff)
    return float(np.mean(np.abs(diff) > DIFF_LEVEL))


def _median(cells: npt.NDArray[np.float32]) -> float:
    """Median of the CELLS x CELLS values (an even count: the mean of the middle two), by one
    partition: np.median's general path costs more than the partition itself here."""
    flat = cells.ravel()
    mid = flat.size // 2
    part = np.partition(flat, (mid - 1, mid))
    return float(part[mid - 1] + part[mid]) / 2.0


def _cells(frame_bgr: ImageU8, box: Region) -> npt.NDArray[np.float32]:
    h, w = frame_bgr.shape[:2]
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.w, w), min(box.y + box.h, h)
    # Every k-th pixel first, leaving >= 4 per cell side to average: the area resize and the
    # grey conversion then touch 1/k^2 of the box (a 400 px box: 0.25 ms -> 0.05 ms per frame).
    k = max(1, min(y1 - y0, x1 - x0) // (4 * CELLS))
    patch = frame_bgr[y0:y1:k, x0:x1:k]
    if patch.size == 0:
        raise ValueError(f"guide box {box.as_list()} lies outside the {w}x{h} frame")
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (CELLS, CELLS), interpolation=cv2.INTER_AREA)  # [32, 32] uint8
    return np.asarray(small, dtype=np.float32)
