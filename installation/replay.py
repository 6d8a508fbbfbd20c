"""`bias-mirror replay`: the kiosk pipeline, headless, over a recording.

Writes one JSON line per processed frame and prints a JSON summary. Everything but the `ms`
timings is deterministic for a given file and config: frames are read in order, none is dropped,
and `t` is the position in the recording (frame index / nominal fps), not the wall clock.

Memory stays constant over any length of stream: the summary keeps sums and fixed latency
histograms, never a value per frame. Exit codes (README, "Command line"): 0 done; 1 internal
error (a bug: traceback); 2 a user error (source, config, bundle, report path, options);
3 the source ended early (truncated or corrupt file, images gone): the report holds the frames
that were read and the summary says `"complete": false`; 130 interrupted (Ctrl-C): the report
holds the frames done so far and the summary says `"interrupted": true`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from installation.pipeline import Pipeline
from installation.runtime import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SHORT,
    EXIT_USER,
    USER_ERRORS,
    ReportError,
    build_runtime,
    report_user_error,
)
from installation.sources import FrameSource, open_source
from installation.stats.histogram import LatencyHistogram
from installation.types import SIDES, Frame, FrameResult

logger = logging.getLogger(__name__)


def partial_path(path: Path) -> Path:
    """Where the report is written until the replay has succeeded (then renamed over `path`)."""
    return path.with_name(f".{path.name}.partial")


def check_report_path(path: Path, source_uri: str) -> None:
    """Refuse a report path the replay would destroy or cannot rename onto: a folder, a device
    or pipe (`/dev/null`), or the recording being replayed."""
    if path.is_dir():
        raise ReportError(f"--report {path} is a folder; name a file in it, e.g. {path}/run.jsonl")
    if path.exists() and not path.is_file():
        raise ReportError(
            f"--report {path} is not a regular file (a device or pipe would be replaced by the "
            "report); name a file, e.g. run.jsonl"
        )
    src = Path(source_uri.strip()).expanduser()
    try:
        same = path.exists() and src.exists() and path.samefile(src)
    except OSError:
        same = False
    if same:
        raise ReportError(
            f"--report {path} is the recording being replayed; the report would replace it. "
            "Name another file, e.g. run.jsonl"
        )


def open_report(path: Path) -> IO[str]:
    """Open the report's partial file before any work is done, so a bad folder fails fast;
    an existing report at `path` is replaced only when the replay succeeds."""
    try:
        return partial_path(path).open("w", encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"cannot write the report {path} ({exc.strerror}); "
            "choose a path in an existing, writable folder"
        ) from None


def report_line(result: FrameResult, index: int, fps: float, names: dict[str, str]) -> str:
    """One JSON line; no image, crop or latent ever goes into it."""
    line: dict[str, Any] = {
        "frame": index,
        "t": round(index / fps, 4) if fps > 0 else None,
        "region": result.region.as_list(),
        "present": result.present,  # someone in the box (occupancy or either model's face)
        "occupied": result.occupied,  # the occupancy detector alone
    }
    for side in SIDES:
        pred = result.predictions[side]
        line[side] = {
            "model": names[side],
            "p_face": round(pred.p_face, 6),
            "face": pred.face,  # this frame alone, at the card's threshold
            "verdict": result.found(side),  # the stable verdict the screen shows
            "ms": round(pred.ms, 4),
        }
    return json.dumps(line, separators=(",", ":"))


@dataclass
class ReplayStats:
    frames: int = 0
    seconds: float = 0.0
    faces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    p_sum: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SIDES, 0.0))
    # Fixed-size histograms: p50 / p95 without one float per frame (constant memory).
    ms: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {s: LatencyHistogram() for s in SIDES}
    )
    agree: int = 0
    present: int = 0
    missed_by_both: int = 0
    verdict_changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    _last: dict[str, bool] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C: the figures cover the frames done so far
    shortfall: str | None = None  # the source ended early: why (truncated, corrupt, ...)

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        verdicts = []
        for side in SIDES:
            pred = result.predictions[side]
            self.faces[side] += pred.face
            self.p_sum[side] += pred.p_face
            self.ms[side].add(pred.ms)
            verdicts.append(pred.face)
            shown = result.found(side)
            self.verdict_changes[side] += side in self._last and self._last[side] != shown
            self._last[side] = shown
        self.agree += verdicts[0] == verdicts[1]
        self.present += result.present
        self.missed_by_both += result.missed_by_both

    def summary(self, names: dict[str, str], backend: str, report: Path) -> dict[str, Any]:
        n = max(self.frames, 1)
        models = {}
        for side in SIDES:
            models[side] = {
                "name": names[side],
                "face_rate": round(self.faces[side] / n, 4),
                "mean_p_face": round(self.p_sum[side] / n, 4),
                # Upper edge of the histogram bin (8 % wide) holding the percentile.
                "ms_p50": self.ms[side].percentile(50),
                "ms_p95": self.ms[side].percentile(95),
                # How often the verdict on screen flipped (a still face should not flicker).
                "verdict_changes": self.verdict_changes[side],
            }
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.frames / self.seconds, 1) if self.seconds > 0 else None,
            "models": models,
            "agreement_rate": round(self.agree / n, 4),
            "present_frames": self.present,
            "missed_by_both_frames": self.missed_by_both,
            "backend": backend,
            "report": str(report),
            "complete": not self.interrupted and self.shortfall is None,
            "interrupted": self.interrupted,
            "shortfall": self.shortfall,
        }


def run_replay(
    pipeline: Pipeline,
    source: FrameSource,
    out: IO[str],
    names: dict[str, str],
    max_frames: int | None = None,
) -> ReplayStats:
    """Process every frame of `source` in order; write one line per frame to `out`.

    Ctrl-C ends the loop (the stats say `interrupted`); a source that ends before it has
    delivered what it held sets `shortfall`."""
    stats = ReplayStats()
    fps = source.nominal_fps
    t0 = time.perf_counter()
    try:
        i = 0
        while max_frames is None or i < max_frames:
            read = source.read()
            if read is None:
                stats.shortfall = source.shortfall()
                break
            # The recording's own clock (frames are read faster than real time): presence and
            # verdict smoothing see the visit as the camera did, and the report is repeatable.
            frame = Frame(read.index, i / fps, read.image) if fps > 0 else read
            result = pipeline.process(frame)
            # One write per line: an interrupt never leaves half a line behind.
            out.write(report_line(result, i, fps, names) + "\n")
            stats.add(result)
            i += 1
    except KeyboardInterrupt:
        stats.interrupted = True
    stats.seconds = time.perf_counter() - t0
    return stats


def _user_error(exc: BaseException) -> int:
    report_user_error(exc)
    return EXIT_USER


def replay_main(
    source_uri: str, report: Path, config_path: Path | None, max_frames: int | None
) -> int:
    if max_frames is not None and max_frames < 1:
        print("error: --max-frames must be at least 1", file=sys.stderr)
        return EXIT_USER
    partial = partial_path(report)
    try:
        try:
            check_report_path(report, source_uri)
            out = open_report(report)
            with out:
                runtime = build_runtime(config_path, keep_frame=False)
                cfg = runtime.config.source
                source = open_source(
                    source_uri, width=cfg.width, height=cfg.height, fps=cfg.fps, loop=False
                )
                names = {s: c.card.name for s, c in runtime.classifiers.items()}
                try:
                    stats = run_replay(runtime.pipeline, source, out, names, max_frames)
                finally:
                    source.close()
                    runtime.pipeline.close()
        except USER_ERRORS as exc:
            return _user_error(exc)
        except KeyboardInterrupt:
            # Before the first frame (loading models, opening the source): nothing to report.
            print("interrupted before the first frame; no report written", file=sys.stderr)
            return EXIT_INTERRUPTED
        if stats.frames == 0:
            if stats.interrupted:
                print("interrupted before the first frame; no report written", file=sys.stderr)
                return EXIT_INTERRUPTED
            print(f"error: {source_uri}: no frames could be read", file=sys.stderr)
            return EXIT_USER
        # Only now does the new report replace an old one: a typo in SOURCE loses nothing.
        os.replace(partial, report)
    finally:
        partial.unlink(missing_ok=True)
    print(json.dumps(stats.summary(names, runtime.backend, report), indent=2))
    if stats.interrupted:
        print(
            f"interrupted: {report} holds the {stats.frames} frames done so far",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if stats.shortfall is not None:
        print(
            f"warning: {stats.shortfall}; {report} holds the {stats.frames} frames read",
            file=sys.stderr,
        )
        return EXIT_SHORT
    return EXIT_OK
