"""The `stats` MQTT payload: one model that the kiosk writes, the monitor reads and
docs/mqtt.md documents (its JSON schema is generated from this module; a test keeps them equal).

On the wire, the figures withheld below k sessions (`WITHHELD`) are left out, not sent as null,
so a dashboard tests for their presence. The reader is strict (no string where a number
belongs, no Infinity or NaN) because the payload comes from the network; unknown keys are
accepted, so an older monitor reads a newer kiosk's stats (a breaking change bumps `schema`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

STATS_SCHEMA: Final = 1
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC, whole seconds: nothing finer leaves the device

# Named types: each is one entry of the JSON schema's $defs (and PerSide[Count] reads as such).
IsoSecond = TypeAliasType(
    "IsoSecond",
    Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")],
)
Count = TypeAliasType("Count", Annotated[int, Field(ge=0)])
Amount = TypeAliasType("Amount", Annotated[float, Field(ge=0)])  # a non-negative sum or time
Rate = TypeAliasType("Rate", Annotated[float, Field(ge=0, le=1)])
T = TypeVar("T")


def iso_second(epoch: float) -> str:
    """Epoch seconds -> the payload's UTC timestamp (sub-seconds dropped)."""
    return time.strftime(ISO_FORMAT, time.gmtime(epoch))


def epoch_of(text: str) -> float:
    """The payload's UTC timestamp -> epoch seconds; ValueError for an impossible date."""
    t = dt.datetime.strptime(text, ISO_FORMAT)
    return t.replace(tzinfo=dt.timezone.utc).timestamp()


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)


class PerSide(_Wire, Generic[T]):
    """One value per model, keyed by its side of the screen."""

    left: T = Field(description="The model on the left of the screen.")
    right: T = Field(description="The model on the right of the screen.")


class Interval(_Wire):
    start: IsoSecond = Field(description="When the interval began (UTC, whole seconds).")
    end: IsoSecond = Field(description="When it ended; the next interval's start.")
    seconds: float = Field(ge=0, description="Its length on the monotonic clock.")


class Fps(_Wire):
    camera: float | None = Field(
        ge=0, description="What the source reports; null before the source reported."
    )
    process: float = Field(ge=0, description="Frames judged per second over the interval.")
    render: float = Field(ge=0, description="Frames drawn per second over the interval.")


class Percentiles(_Wire):
    p50: float | None = Field(ge=0, description="Median in ms; null when nothing was timed.")
    p95: float | None = Field(ge=0, description="95th percentile in ms; null likewise.")


class ModelRates(_Wire):
    face_rate: Rate = Field(description="Share of present frames where the model found a face.")
    mean_p_face: Rate = Field(description="Mean face probability over present frames.")


class Released(_Wire):
    """Sums over the intervals that were released (k sessions or more) since the start, so
    differencing two cumulative blocks cannot reveal a withheld interval."""

    intervals: Count = Field(description="Intervals released so far.")
    present_frames: Count = Field(description="Frames with a visitor in the box.")
    faces: PerSide[Count] = Field(description="Of those, frames where each model found a face.")
    p_face_sum: PerSide[Amount] = Field(
        description="Sum of each model's face probability over those frames (3 decimals)."
    )
    disagreements: Count = Field(description="Present frames where the two models disagreed.")
    missed_frames: Count = Field(description="Present frames where neither model found a face.")
    sessions_ended: Count = Field(description="Sessions ended in intervals with k or more.")
    sessions_missed_by_both: Count = Field(
        description="Of those, sessions in which neither model ever found the visitor's face."
    )
    dwell_s: float = Field(ge=0, description="Summed dwell of those sessions, in seconds.")


class Cumulative(_Wire):
    since: IsoSecond = Field(description="Start of this kiosk process; a restart starts anew.")
    frames: Count = Field(description="Frames judged since `since`.")
    sessions: Count = Field(description="Visitor sessions released since `since`.")
    dropped_frames: Count = Field(description="Frames the source dropped since `since`.")
    errors: dict[str, Count] = Field(description="Faults by kind since `since`.")
    released: Released = Field(description="Sums over the released intervals only.")


class StatsPayload(_Wire):
    """One closed stats interval of one kiosk (topic `<prefix>/<installation_id>/stats`)."""

    schema_version: Literal[1] = Field(
        STATS_SCHEMA, alias="schema", description="Payload schema version."
    )
    seq: int = Field(
        ge=1,
        description="Interval number since start; consumers drop repeats of "
        "(cumulative.since, seq) and see a gap where one was lost.",
    )
    interval: Interval = Field(description="The interval these figures cover.")
    k_min_sessions: int = Field(ge=1, description="Sessions needed to release rates (privacy).")
    sessions: Count = Field(
        description="Visitor sessions released in this interval: 0 while fewer than k have "
        "gathered since the last release, then all of them at once (privacy)."
    )
    sessions_ended: Count = Field(
        description="Sessions ended, released together with `sessions` (0 until then)."
    )
    frames: Count = Field(description="Frames judged (by each model that loaded).")
    present_frames: Count = Field(
        description="Frames with a visitor in the box, released together with `sessions`."
    )
    fps: Fps = Field(description="Frame rates of the source, the judging and the drawing.")
    dropped_frames: Count = Field(description="Frames the source dropped in the interval.")
    inference_ms: PerSide[Percentiles] = Field(description="Per-model invoke latency.")
    render_ms_p95: float | None = Field(
        None,
        ge=0,
        description="95th percentile of drawing one frame, ms; absent without a display, and "
        "withheld like the rates (a visitor on screen takes longer to draw, so the timing of a "
        "quiet interval would tell whether one person came).",
    )
    latency_ms_p95: float | None = Field(
        None,
        ge=0,
        description="95th percentile of capture-to-screen latency, ms; absent and withheld "
        "likewise.",
    )
    backend: str = Field(description="Inference backend, e.g. 'litert-cpu'.")
    errors: dict[str, Count] = Field(description="Faults by kind in the interval.")
    uptime_s: Count = Field(description="Seconds since the kiosk process started.")
    cpu_temp_c: float | None = Field(
        None, description="CPU temperature; null where no thermal zone is readable."
    )
    rss_mb: float | None = Field(None, ge=0, description="Resident memory of the kiosk, MiB.")
    queue_dropped: Count = Field(
        0, description="Intervals dropped from a full outage queue since start."
    )
    models: PerSide[ModelRates] | None = Field(
        None, description="Per-model rates over present frames; withheld below k sessions."
    )
    disagreement_rate: Rate | None = Field(
        None, description="Share of present frames where the models disagreed; withheld below k."
    )
    missed_by_both_rate: Rate | None = Field(
        None, description="Share of present frames neither model found a face in; withheld too."
    )
    mean_dwell_s: float | None = Field(
        None, ge=0, description="Mean dwell of the ended sessions; withheld below k ended."
    )
    sessions_missed_by_both: Count | None = Field(
        None,
        description="Ended sessions in which neither model ever found the visitor's face; "
        "withheld like mean_dwell_s.",
    )
    cumulative: Cumulative = Field(description="Counters since the kiosk process started.")

    def to_json(self) -> str:
        """The payload as sent: `schema` by that name, withheld figures left out."""
        absent = {name for name in WITHHELD if getattr(self, name) is None}
        return self.model_dump_json(by_alias=True, exclude=absent)


# Released only with k sessions (ended sessions for the last two); absent, never null, below.
WITHHELD = (
    "models",
    "disagreement_rate",
    "missed_by_both_rate",
    "mean_dwell_s",
    "sessions_missed_by_both",
    "render_ms_p95",
    "latency_ms_p95",
)


def stats_json_schema() -> dict[str, Any]:
    """The JSON schema docs/mqtt.md shows for the payload (what the monitor validates)."""
    return StatsPayload.model_json_schema(by_alias=True)
