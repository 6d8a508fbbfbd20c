"""Stable verdicts: what the screen and the stats say a model decided, frame after frame.

One model's raw per-frame decision (`Prediction.face`, the logit against the card's threshold)
flickers on a still face: sensor noise moves the logit by a few tenths, and a face near the
threshold flipped Face / No face 13 times in 4 s. `VerdictTracker` takes the median logit of the
last `window` frames and changes its verdict only when that median crosses the threshold by more
than `margin` logits (hysteresis). The evaluation numbers on the cards are per image, at the
threshold itself; only the live verdict is smoothed.

`Verdict.margin` (median logit minus threshold logit) is what the screen shows as the model's
score: relative to its own decision line, so "Face" never comes with "sure it's a face: 2 %".
"""

from __future__ import annotations

import statistics
from collections import deque

from installation.types import Verdict

DEFAULT_WINDOW = 5  # judged frames: 0.5 s at the kiosk's 10 a second; a turned head does not
# flip the verdict, a visitor who leaves flips it after 3 frames
DEFAULT_MARGIN = 1.5  # logits: a still face's logit moves by 0.4-1.0 (sd) frame to frame, the
# median of 5 by about half that; simulated at sd 0.8 right at the threshold, 1.5 leaves at most one
# flip in 10 s once the window is full (1.0 left up to 4)


class VerdictTracker:
    """Median of the last `window` logits, with hysteresis of `margin` around the threshold."""

    def __init__(
        self, threshold_logit: float, window: int = DEFAULT_WINDOW, margin: float = DEFAULT_MARGIN
    ) -> None:
        if window < 1 or margin < 0:
            raise ValueError(f"window must be >= 1 and margin >= 0, got {window}, {margin}")
        self.threshold_logit = threshold_logit
        self.margin = margin
        self._logits: deque[float] = deque(maxlen=window)
        self._face: bool | None = None

    def reset(self) -> None:
        self._logits.clear()
        self._face = None

    def update(self, logit: float) -> Verdict:
        self._logits.append(logit)
        # statistics.median: a few floats, ~50x cheaper per frame than numpy's array round trip.
        m = float(statistics.median(self._logits)) - self.threshold_logit
        if self._face is None or len(self._logits) < (self._logits.maxlen or 1):
            # A fresh visit has no verdict to hold on to: the plain threshold decides until the
            # window is full, so the screen agrees with the card's numbers (made at the threshold).
            self._face = m >= 0
        elif self._face and m < -self.margin:
            self._face = False
        elif not self._face and m >= self.margin:
            self._face = True
        clear = m >= self.margin if self._face else m < -self.margin
        return Verdict(face=self._face, margin=m, clear=clear)
