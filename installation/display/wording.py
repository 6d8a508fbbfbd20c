"""What each screen says, apart from how it is drawn: its state, headline, body and small print.

Museum label practice: one headline and a short body on the main layer (what to do, what is going
on, so what), in plain words; method names, test sets, counts and intervals only in the details
layer. Nothing here judges the visitor: a face the models miss is the models' failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from installation.display.texts import Texts
from installation.inference.card import Card
from installation.types import SIDES, FrameResult, SourceState, SourceStatus

# Every state a screen can be in (the tests draw each one in every language at every size).
SCREENS = (
    "attract",
    "step_in",
    "both_found",
    "one_found",
    "missed_both",
    "solo_found",  # solo_*: one model only, the other's bundle did not load
    "solo_missed",
    "camera_unavailable",
    "camera_connecting",
    "recording_ended",
    "paused",
)
# The screens with a visitor in the box and the models' verdicts on the panels.
VERDICT_SCREENS = ("both_found", "one_found", "missed_both", "solo_found", "solo_missed")
_NO_VIDEO = {
    SourceState.UNAVAILABLE: "camera_unavailable",
    SourceState.ENDED: "recording_ended",
}


@dataclass(frozen=True)
class Rarity:
    """The rarity meter: named for the right-hand model, with the count it is a percentile of."""

    value: float
    model: str
    text: str
    note: str


@dataclass(frozen=True)
class Copy:
    screen: str
    headline: str
    body: str | None  # None where the rarity meter takes the body's place
    rarity: Rarity | None
    details: tuple[str, ...]  # the centre's small print (the panels carry their own)


def screen_of(
    *, live: bool, status: SourceStatus, attract: bool, paused: bool, result: FrameResult | None
) -> str:
    if paused:
        return "paused"
    if not live:
        return _NO_VIDEO.get(status.state, "camera_connecting")
    if attract:
        return "attract"
    if result is None or not result.present:
        # Presence comes from the box, not from the models: a visitor whom both models miss is
        # present, and is told that it is the models' failure, never to step in.
        return "step_in"
    judged = [side for side in SIDES if side in result.predictions]
    found = sum(result.found(side) for side in judged)
    if len(judged) == 1:
        # One model only (the other's bundle did not load): there is nothing to compare, so
        # no "only one model" or "neither model"; its panel says why it is empty.
        return "solo_found" if found else "solo_missed"
    return ("missed_both", "one_found", "both_found")[found]


def copy_for(
    texts: Texts,
    screen: str,
    result: FrameResult | None,
    right_card: Card | None,
    heatmaps: bool,
) -> Copy:
    headline = texts.t({"paused": "paused_title", "attract": "attract_title"}.get(screen, screen))
    body_key = {"attract": "attract_body", "paused": "paused_body"}.get(screen, f"{screen}_body")
    body = texts.t(body_key) if texts.has(body_key) else None
    details: list[str] = []
    rarity = None
    if screen in VERDICT_SCREENS:
        details.append(texts.t("threshold_note"))
        # The meter is the right-hand model's; without it (bundle not loaded) there is none.
        count = right_card.training_data.get("faces") if right_card is not None else None
        if (
            right_card is not None
            and result is not None
            and result.rarity is not None
            and isinstance(count, int)
        ):
            # A percentile is shown with the number of faces it is a percentile of; a card that
            # does not say how many faces its model learned from gets no meter.
            rarity = Rarity(
                value=round(result.rarity, 2),  # the bar moves in whole percent
                model=texts.model_name(right_card),
                text=texts.t("rarity_text", pct=_percent_below(result.rarity), count=count),
                note=texts.t("rarity_note"),
            )
            body = None
            details.append(texts.t("rarity_details"))
        if heatmaps:
            details.append(texts.t("heat_details"))
    return Copy(screen, headline, body, rarity, tuple(details))


def _percent_below(rarity: float) -> int:
    """Whole percent for "rarer than N % of the faces", kept within 0-99: rounding 0.999 up
    would claim the face is rarer than all of them, which a percentile cannot say."""
    return min(max(int(rarity * 100), 0), 99)
