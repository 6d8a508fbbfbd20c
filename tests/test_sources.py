"""Sources through real OpenCV files and folders; the capture thread with fault injection."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.sources import LatestFrameGrabber, SourceError, mask_credentials, open_source
from installation.sources.demo import FPS, SECONDS, demo_clip_path
from installation.types import Frame, SourceState
from tests.video_fixtures import write_clip, write_folder


def test_video_file_reads_every_frame_then_ends(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=10)
    src = open_source(str(clip), width=320, height=240)
    frames = [f for f in iter(src.read, None)]
    src.close()
    assert [f.index for f in frames] == list(range(10))
    assert frames[0].image.shape == (240, 320, 3)
    assert src.nominal_fps == pytest.approx(12.0)
    assert not src.is_live


def test_video_file_loops_for_the_kiosk(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", frames=4, fourcc="MJPG")
    src = open_source(str(clip), width=320, height=240, loop=True)
    frames = [src.read() for _ in range(10)]
    src.close()
    assert all(f is not None for f in frames)
    assert frames[4] is not None and frames[0] is not None
    # The 5th frame is the first again (frame numbers are burnt into the image).
    assert np.abs(frames[4].image.astype(int) - frames[0].image.astype(int)).mean() < 3


def test_frames_resized_to_the_configured_size(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=2, size=(320, 240))
    src = open_source(str(clip), width=640, height=480)
    frame = src.read()
    src.close()
    assert frame is not None and frame.image.shape == (480, 640, 3)


def test_realtime_paces_files(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=7, fps=30.0)
    src = open_source(str(clip), width=320, height=240, realtime=True)
    frames = [f for f in iter(src.read, None)]
    src.close()
    # 7 frames at 30 fps span 6 periods; the pacing shows in the capture times.
    assert frames[-1].t - frames[0].t == pytest.approx(6 / 30, abs=0.05)


def test_image_folder(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "imgs", frames=3)
    (folder / "notes.txt").write_text("not an image")
    (folder / "zz_broken.png").write_bytes(b"not a png")
    src = open_source(str(folder), width=160, height=120)
    frames = [f for f in iter(src.read, None)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 20, 40]
    assert src.unreadable == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p / "missing.mp4", "no such video file"),
        (lambda p: p / "empty_dir", "no images"),
        (lambda p: Path("/dev/video99"), "no such camera device"),
        (lambda p: p / "garbage.mp4", "H.264"),
    ],
)
def test_bad_sources_name_the_problem(tmp_path: Path, make, words: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 1000)
    target = make(tmp_path)
    with pytest.raises(SourceError) as err:
        open_source(str(target))
    assert words in str(err.value)
    assert str(target) in str(err.value)


def test_rtsp_credentials_are_masked() -> None:
    assert (
        mask_credentials("rtsp://staff:s3cret@10.0.0.5/stream")
        == "rtsp://staff:***@10.0.0.5/stream"
    )


def test_demo_clip_is_generated_and_deterministic(tmp_path: Path) -> None:
    a = demo_clip_path(tmp_path / "a")
    b = demo_clip_path(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    cap = cv2.VideoCapture(str(a))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FPS * SECONDS
    ok, img = cap.read()
    cap.release()
    assert ok and img.shape == (480, 640, 3)
    # A corrupt cache file is replaced, not trusted.
    a.write_bytes(b"broken")
    assert demo_clip_path(tmp_path / "a").read_bytes() == b.read_bytes()


# -- capture thread ------------------------------------------------------------------------


class FlakyCamera:
    """Fault injection: the only fake (no camera here). Fails `fail_reads` times after
    `good_reads` frames, like an unplugged USB camera."""

    is_live = True
    nominal_fps = 100.0
    description = "fake camera"

    def __init__(self, good_reads: int, period: float = 0.005) -> None:
        self.left = good_reads
        self.period = period
        self.index = 0

    def read(self) -> Frame | None:
        if self.left <= 0:
            raise SourceError("fake camera: unplugged")
        self.left -= 1
        time.sleep(self.period)
        self.index += 1
        return Frame(self.index, time.monotonic(), np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        pass


def test_grabber_reopens_with_backoff_and_reports_unavailable() -> None:
    opens: list[float] = []

    def open_fn() -> FlakyCamera:
        # 1st open works, then the camera is unplugged: opens 2 and 3 fail, 4 works again.
        opens.append(time.monotonic())
        if len(opens) in (2, 3):
            raise SourceError("fake camera: not found")
        return FlakyCamera(good_reads=5)

    stop = threading.Event()
    grabber = LatestFrameGrabber(open_fn, reopen_min_s=0.05, reopen_max_s=0.2, stop_event=stop)
    grabber.start()
    seen_unavailable = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(opens) < 4:
        st = grabber.status()
        seen_unavailable |= (
            st.state == SourceState.UNAVAILABLE and "camera unavailable" in st.message
        )
        time.sleep(0.005)
    grabber.stop()
    assert len(opens) >= 4
    assert seen_unavailable
    gaps = np.diff(opens[1:4])  # open 2 -> 3 -> 4: both waits follow a failed open
    assert gaps[1] > gaps[0] * 1.5  # exponential backoff
    assert not grabber.is_alive()


def test_grabber_keeps_only_the_newest_frame_and_counts_drops() -> None:
    stop = threading.Event()
    grabber = LatestFrameGrabber(
        lambda: FlakyCamera(good_reads=10_000, period=0.002),
        reopen_min_s=0.05,
        reopen_max_s=0.1,
        stop_event=stop,
    )
    grabber.start()
    taken = []
    last = -1
    for _ in range(5):
        frame = grabber.wait_next(last, timeout=2)
        assert frame is not None
        taken.append(frame.index)
        last = frame.index
        time.sleep(0.05)  # a slow consumer
    grabber.stop()
    assert taken == sorted(taken)
    assert grabber.status().dropped_frames >= 10
    assert all(b - a > 1 for a, b in itertools.pairwise(taken))


def test_grabber_ends_with_a_recording(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=3)
    stop = threading.Event()
    grabber = LatestFrameGrabber(
        lambda: open_source(str(clip)), reopen_min_s=0.05, reopen_max_s=0.1, stop_event=stop
    )
    grabber.start()
    grabber.join(timeout=5)
    assert grabber.status().state == SourceState.ENDED
    assert grabber.latest() is not None
