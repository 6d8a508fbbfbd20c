"""The capture thread: newest frame only, drop counting, reopen with backoff, status text, end.

Real files and folders go through OpenCV; the only fake is `FlakyCamera` (no camera here), used
to inject faults: a device that unplugs after N frames, or fails to open N times.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from installation.sources import Backoff, FrameSource, LatestFrameGrabber, SourceError, open_source
from installation.types import Frame, SourceState, SourceStatus
from tests.video_fixtures import frame_number, write_clip, write_folder
from tests.waiting import wait_until


class FlakyCamera:
    """Fault injection: delivers `good_reads` frames, then fails like an unplugged USB camera
    (raises SourceError, or returns None with `fail_with_none`). `good_reads=None`: never fails."""

    is_live = True
    nominal_fps = 100.0
    description = "fake camera"

    def __init__(
        self, good_reads: int | None, period: float = 0.002, fail_with_none: bool = False
    ) -> None:
        self.left = good_reads
        self.period = period
        self.fail_with_none = fail_with_none
        self.reads = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self.left is not None and self.left <= 0:
            if self.fail_with_none:
                return None
            raise SourceError("fake camera: unplugged")
        if self.left is not None:
            self.left -= 1
        time.sleep(self.period)
        self.reads += 1
        return Frame(self.reads - 1, time.monotonic(), np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self.closed = True


def _grabber(
    open_fn: Callable[[], FrameSource], lo: float = 0.05, hi: float = 0.2
) -> LatestFrameGrabber:
    return LatestFrameGrabber(
        open_fn, reopen_min_s=lo, reopen_max_s=hi, stop_event=threading.Event()
    )


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.5, 4.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5
    with pytest.raises(ValueError, match="reopen_min_s"):
        Backoff(2.0, 1.0)


def test_failed_opens_back_off_exponentially_then_recover() -> None:
    opens: list[float] = []
    statuses: list[SourceStatus] = []

    def open_fn() -> FrameSource:
        opens.append(time.monotonic())
        if len(opens) <= 3:
            raise SourceError("camera 0: cannot open the camera; check the cable")
        return FlakyCamera(good_reads=None)

    grabber = _grabber(open_fn, lo=0.05, hi=0.1)
    assert grabber.status().state == SourceState.CONNECTING
    grabber.start()
    ok = wait_until(
        lambda: statuses.append(grabber.status()) or grabber.latest() is not None, poll=0.005
    )
    grabber.stop()
    assert ok and not grabber.is_alive()
    assert len(opens) == 4 and grabber.opens == 1
    # Waits of at least 0.05, 0.1 and 0.1 s (capped): lower bounds, a busy CPU only adds.
    gaps = np.diff(opens)
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.095
    unavailable = [s for s in statuses if s.state == SourceState.UNAVAILABLE]
    assert unavailable
    assert all(
        re.fullmatch(r"camera unavailable, retrying (in \d+ s|now)", s.message) for s in unavailable
    )
    assert "check the cable" in (grabber.last_error or "")
    assert any(s.state == SourceState.OK for s in statuses)


def test_status_counts_down_and_stop_interrupts_a_long_wait() -> None:
    def never() -> FrameSource:
        raise SourceError("/dev/video0: no such camera device")

    grabber = _grabber(never, lo=30.0, hi=60.0)
    grabber.start()
    assert wait_until(lambda: grabber.status().state == SourceState.UNAVAILABLE)
    assert re.fullmatch(r"camera unavailable, retrying in (29|30) s", grabber.status().message)
    assert grabber.status().fps == 0.0
    t0 = time.monotonic()
    grabber.stop()
    assert not grabber.is_alive()
    assert time.monotonic() - t0 < 5  # the stop event wakes the 30 s wait


@pytest.mark.parametrize("fail_with_none", [False, True])
def test_lost_camera_is_reopened_and_frame_numbers_keep_growing(fail_with_none: bool) -> None:
    cameras: list[FlakyCamera] = []

    def open_fn() -> FrameSource:
        cameras.append(FlakyCamera(good_reads=5, fail_with_none=fail_with_none))
        return cameras[-1]

    grabber = _grabber(open_fn, lo=0.01, hi=0.02)
    grabber.start()
    taken: list[int] = []
    last = -1
    while len(taken) < 12:
        frame = grabber.wait_next(last, timeout=5)
        assert frame is not None
        taken.append(frame.index)
        last = frame.index
    grabber.stop()
    assert len(cameras) >= 3 and grabber.reopens >= 2
    assert all(c.closed for c in cameras)  # every lost source was released
    assert all(b > a for a, b in itertools.pairwise(taken))  # no restart at 0 after a reopen
    assert grabber.status().state != SourceState.ENDED  # a live source never "ends"


def test_a_crashing_open_function_does_not_kill_the_thread() -> None:
    calls = [0]

    def open_fn() -> FrameSource:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("driver bug")
        return FlakyCamera(good_reads=None)

    grabber = _grabber(open_fn, lo=0.01)
    grabber.start()
    assert wait_until(lambda: grabber.latest() is not None)
    assert grabber.is_alive()
    grabber.stop()
    assert "driver bug" in (grabber.last_error or "")


def test_a_driver_that_raises_at_every_open_logs_one_traceback_not_one_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def open_fn() -> FrameSource:
        raise RuntimeError("driver bug")

    grabber = _grabber(open_fn, lo=0.005, hi=0.01)
    with caplog.at_level(logging.WARNING, logger="installation.sources.capture"):
        grabber.start()
        assert wait_until(lambda: grabber.failed_attempts >= 20)
        grabber.stop()
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1 and "driver bug" in caplog.text


def test_slow_consumer_gets_the_newest_frame_and_every_drop_is_counted() -> None:
    camera = FlakyCamera(good_reads=None, period=0.002)
    grabber = _grabber(lambda: camera)
    grabber.start()
    taken: list[int] = []
    last = -1
    for _ in range(5):
        frame = grabber.wait_next(last, timeout=5)
        assert frame is not None
        taken.append(frame.index)
        last = frame.index
        time.sleep(0.05)  # a busy pipeline
    status = grabber.status()
    assert status.state == SourceState.OK and status.fps > 0
    grabber.stop()
    newest = grabber.latest()
    assert newest is not None
    published = newest.index + 1
    # Every frame was either judged, dropped, or is the newest one nobody took yet.
    untaken_newest = 0 if newest.index in taken else 1
    assert grabber.status().dropped_frames == published - len(taken) - untaken_newest
    assert grabber.status().dropped_frames > 0
    assert any(b - a > 1 for a, b in itertools.pairwise(taken))


def test_wait_next_times_out_without_a_newer_frame() -> None:
    def never() -> FrameSource:
        raise SourceError("no camera")

    grabber = _grabber(never, lo=10.0, hi=10.0)
    grabber.start()
    assert grabber.wait_next(-1, timeout=0.05) is None
    assert grabber.latest() is None
    grabber.stop()


def test_a_recording_without_loop_ends(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=3)
    grabber = _grabber(lambda: open_source(str(clip), width=320, height=240))
    grabber.start()
    grabber.join(timeout=10)
    assert not grabber.is_alive()
    status = grabber.status()
    assert status.state == SourceState.ENDED and "end of recording" in status.message
    newest = grabber.latest()
    assert newest is not None and frame_number(newest.image) == 2
    assert grabber.wait_next(newest.index, timeout=0.05) is None
    grabber.stop()


def test_a_looping_folder_plays_on_in_real_time(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "imgs", frames=3)
    grabber = _grabber(
        lambda: open_source(str(folder), width=160, height=120, fps=60, loop=True, realtime=True)
    )
    grabber.start()
    frame = None
    assert wait_until(lambda: (f := grabber.latest()) is not None and f.index >= 7)
    frame = grabber.latest()
    grabber.stop()
    assert frame is not None and frame.image.shape == (120, 160, 3)
    assert frame_number(frame.image) == frame.index % 3  # looped through the 3 images
    assert grabber.status().state == SourceState.OK


def test_a_source_that_never_opens_reports_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp4"
    grabber = _grabber(lambda: open_source(str(missing)), lo=0.02, hi=0.05)
    grabber.start()
    assert wait_until(lambda: grabber.opens == 0 and grabber.last_error is not None)
    assert wait_until(lambda: grabber.status().state == SourceState.UNAVAILABLE)
    grabber.stop()
    assert str(missing) in (grabber.last_error or "")
    assert grabber.latest() is None


def test_a_long_outage_is_logged_once_not_at_every_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone.mp4"
    grabber = _grabber(lambda: open_source(str(missing)), lo=0.005, hi=0.01)
    with caplog.at_level(logging.DEBUG, logger="installation.sources.capture"):
        grabber.start()
        assert wait_until(lambda: grabber.failed_attempts >= 20)
        grabber.stop()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(warned) == 1 and str(missing) in warned[0].getMessage()
    assert len(retried) >= 20  # each retry is still there at debug level


def test_a_new_error_during_an_outage_is_warned_again(caplog: pytest.LogCaptureFixture) -> None:
    errors = iter(["first: cable unplugged"] * 5 + ["second: permission denied"] * 100)

    def failing() -> FrameSource:
        raise SourceError(next(errors))

    grabber = _grabber(failing, lo=0.005, hi=0.01)
    with caplog.at_level(logging.WARNING, logger="installation.sources.capture"):
        grabber.start()
        assert wait_until(lambda: grabber.failed_attempts >= 10)
        grabber.stop()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert warned[0].startswith("first") and warned[1].startswith("second")
    assert "attempt 6" in warned[1]


def test_a_looping_folder_whose_images_vanish_recovers_when_they_return(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "imgs", frames=3)
    away = tmp_path / "away"
    grabber = _grabber(
        lambda: open_source(str(folder), width=160, height=120, fps=60, loop=True, realtime=True),
        lo=0.05,
        hi=0.1,
    )
    grabber.start()
    assert wait_until(lambda: grabber.status().state == SourceState.OK)
    folder.rename(away)  # the share went away, or someone emptied the folder
    folder.mkdir()
    # Not "the recording has ended" for good: unavailable, and retried.
    assert wait_until(lambda: grabber.status().state == SourceState.UNAVAILABLE)
    assert grabber.status().state != SourceState.ENDED
    assert "no images" in (grabber.last_error or "") or "vanished" in (grabber.last_error or "")
    for image in away.iterdir():
        image.rename(folder / image.name)
    assert wait_until(lambda: grabber.status().state == SourceState.OK)
    before = grabber.latest()
    assert before is not None
    assert wait_until(lambda: (f := grabber.latest()) is not None and f.index > before.index + 3)
    grabber.stop()
    assert grabber.reopens >= 1


@pytest.mark.parametrize("change", ["delete", "truncate", "rewrite"])
def test_a_video_deleted_or_changed_while_playing_is_noticed(tmp_path: Path, change: str) -> None:
    # Linux keeps a deleted file readable through the open descriptor, and a truncation or a
    # copy over the file (cp keeps the inode) leaves the decoder's buffers: OpenCV alone looped
    # on silently from what was opened.
    clip = write_clip(tmp_path / "c.avi", frames=30, fourcc="MJPG")
    grabber = _grabber(
        lambda: open_source(str(clip), width=320, height=240, loop=True, realtime=True),
        lo=0.05,
        hi=0.1,
    )
    grabber.start()
    assert wait_until(lambda: grabber.status().state == SourceState.OK)
    if change == "delete":
        clip.unlink()
    elif change == "truncate":
        with clip.open("r+b") as f:
            f.truncate(clip.stat().st_size // 2)
    else:
        other = write_clip(tmp_path / "other.avi", frames=12, fourcc="MJPG")
        clip.write_bytes(other.read_bytes())
    assert wait_until(lambda: "deleted, replaced or changed" in (grabber.last_error or ""))
    if change == "delete":
        write_clip(clip, frames=10, fourcc="MJPG")  # put back
    if change != "truncate":  # the file there now plays
        assert wait_until(lambda: grabber.status().state == SourceState.OK)
        assert wait_until(lambda: grabber.reopens >= 1)
    grabber.stop()
