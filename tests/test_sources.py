"""Sources through real OpenCV files and folders, the bad-URI messages, and the demo clip."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.region import RegionFinder
from installation.sources import SourceError, has_gstreamer, mask_credentials, open_source
from installation.sources.base import fit_size
from installation.sources.demo import FPS, FRAMES, demo_clip_path
from tests.video_fixtures import frame_number, write_clip, write_empty_clip, write_folder


def _read_all(uri: str, **kw: object) -> list:  # type: ignore[type-arg]
    src = open_source(uri, **kw)  # type: ignore[arg-type]
    try:
        return list(iter(src.read, None))
    finally:
        src.close()


def test_video_file_reads_every_frame_in_order_then_ends(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=10)
    src = open_source(str(clip), width=320, height=240)
    assert src.nominal_fps == pytest.approx(12.0)
    assert not src.is_live
    assert src.description == str(clip)
    frames = list(iter(src.read, None))
    assert src.read() is None  # stays ended
    src.close()
    assert [f.index for f in frames] == list(range(10))
    assert [frame_number(f.image) for f in frames] == list(range(10))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert all(b.t >= a.t for a, b in itertools.pairwise(frames))


def test_video_file_loops_for_the_kiosk(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", frames=4, fourcc="MJPG")
    src = open_source(str(clip), width=320, height=240, loop=True)
    frames = [src.read() for _ in range(10)]
    src.close()
    assert [frame_number(f.image) for f in frames if f is not None] == [0, 1, 2, 3] * 2 + [0, 1]
    assert [f.index for f in frames if f is not None] == list(range(10))  # indices keep growing


def test_frames_are_scaled_only_when_the_size_differs(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=2, size=(320, 240))
    big = _read_all(str(clip), width=640, height=480)
    assert big[0].image.shape == (480, 640, 3)
    same = np.zeros((240, 320, 3), np.uint8)
    assert fit_size(same, 320, 240) is same  # no copy on the replay path


def test_other_aspect_ratios_are_centre_cropped_not_stretched() -> None:
    wide = np.full((180, 320, 3), 255, np.uint8)  # 16:9
    wide[:, 40:280] = 100  # the centred 4:3 window (240 x 180)
    out = fit_size(wide, 160, 120)
    assert out.shape == (120, 160, 3)
    assert (out == 100).all()
    tall = np.full((400, 300, 3), 30, np.uint8)  # the centred 4:3 window is rows 87..312
    tall[:80] = tall[-80:] = 255  # stretching would show these bands
    assert (fit_size(tall, 64, 48) == 30).all()


def test_realtime_paces_files_and_folders(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=7, fps=30.0)
    frames = _read_all(str(clip), width=320, height=240, realtime=True)
    # 7 frames at 30 fps span at least 6 periods (a lower bound: a busy CPU only adds time).
    assert frames[-1].t - frames[0].t >= 6 / 30 - 0.01
    folder = write_folder(tmp_path / "imgs", frames=5)
    stills = _read_all(str(folder), width=160, height=120, fps=40.0, realtime=True)
    assert stills[-1].t - stills[0].t >= 4 / 40 - 0.01


def test_image_folder_in_natural_order_skipping_broken_files(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "imgs", frames=12, names="f{i}", ext="jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / "f5.png").write_bytes(b"not a png")  # sorts between f5.jpg and f6.jpg
    src = open_source(str(folder), width=160, height=120, fps=15)
    assert src.nominal_fps == 15 and not src.is_live
    frames = list(iter(src.read, None))
    assert [frame_number(f.image) for f in frames] == list(range(12))  # f10 after f9
    assert src.unreadable == 1  # type: ignore[attr-defined]


def test_image_folder_loops_and_scales(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "imgs", frames=3, size=(320, 240))
    src = open_source(str(folder), width=160, height=120, loop=True)
    frames = [src.read() for _ in range(7)]
    src.close()
    assert all(f is not None and f.image.shape == (120, 160, 3) for f in frames)


def _bad(tmp_path: Path, case: str) -> str:
    if case == "missing file":
        return str(tmp_path / "missing.mp4")
    if case == "empty folder":
        (tmp_path / "empty_dir").mkdir()
        return str(tmp_path / "empty_dir")
    if case == "broken images":
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "a.png").write_bytes(b"\x89PNG nope")
        return str(tmp_path / "broken")
    if case == "garbage video":
        (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 1000)
        return str(tmp_path / "garbage.mp4")
    if case == "zero frames":
        return str(write_empty_clip(tmp_path / "zero.mp4"))
    if case == "zero bytes":
        (tmp_path / "zero_bytes.avi").touch()
        return str(tmp_path / "zero_bytes.avi")
    if case == "no device":
        return "/dev/video99"
    if case == "camera index":
        return "63"
    return "rtsp://staff:s3cret@127.0.0.1:9/stream"  # refused at once on the loopback


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing file", "no such video file"),
        ("empty folder", "no images"),
        ("broken images", "can be decoded"),
        ("garbage video", "mp4v or MJPG"),
        ("zero frames", "no frames could be decoded"),
        ("zero bytes", "empty"),
        ("no device", "no such camera device"),
        ("camera index", "check the cable"),
        ("unreachable stream", "cannot connect"),
    ],
)
def test_bad_sources_get_one_clear_error(tmp_path: Path, case: str, words: str) -> None:
    uri = _bad(tmp_path, case)
    with pytest.raises(SourceError) as err:
        open_source(uri)
    message = str(err.value)
    assert words in message
    assert mask_credentials(uri) in message or f"camera {uri}" in message
    assert "s3cret" not in message


def test_gstreamer_pipeline_without_gstreamer_says_so() -> None:
    uri = "rtspsrc location=rtsp://u:pw@cam/x ! decodebin ! videoconvert ! appsink"
    with pytest.raises(SourceError) as err:
        open_source(uri)
    expected = "no GStreamer support" if not has_gstreamer() else "GStreamer cannot start"
    assert expected in str(err.value)
    assert "u:***@cam" in str(err.value) and ":pw@" not in str(err.value)


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("rtsp://staff:s3cret@10.0.0.5/stream", "rtsp://staff:***@10.0.0.5/stream"),
        ("rtsp://staff:p:w%40d@10.0.0.5:554/s", "rtsp://staff:***@10.0.0.5:554/s"),
        ("http://cam/snap.mjpg?user=a&password=xyz", "http://cam/snap.mjpg?user=a&password=***"),
        ("rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"),
        (
            "souphttpsrc location=http://x user-pw=hunter2 ! jpegdec",
            "souphttpsrc location=http://x user-pw=*** ! jpegdec",
        ),
    ],
)
def test_credentials_are_masked(uri: str, masked: str) -> None:
    assert mask_credentials(uri) == masked


# -- the demo clip -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_clip_path(tmp_path_factory.mktemp("cache"))


def test_demo_clip_is_a_readable_640x480_mp4v_of_the_expected_length(demo_clip: Path) -> None:
    cap = cv2.VideoCapture(str(demo_clip))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES == 24 * 30
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
        assert fourcc in {"mp4v", "fmp4"}  # FFmpeg reports its MPEG-4 part 2 tag
    finally:
        cap.release()
    frames = _read_all(str(demo_clip), width=640, height=480)
    assert len(frames) == FRAMES
    assert frames[0].image.shape == (480, 640, 3)


def test_demo_clip_shows_empty_room_face_then_object(demo_clip: Path) -> None:
    """The script as the detector sees it: nobody, a face in the guide box, a cup (no face)."""
    finder = RegionFinder(RegionConfig(mode="detector"))
    seen: dict[float, str] = {}
    src = open_source(str(demo_clip))
    try:
        for frame in iter(src.read, None):
            t = frame.index / FPS
            if t in (1.0, 3.0, 7.0, 9.0, 11.0, 13.0, 16.5, 20.0, 23.5):
                region = finder.find(frame.image)
                guide = finder.guide_box(640, 480)
                # A face must be found near the guide box centre, not anywhere in the frame.
                near = abs(region.x - guide.x) < 40 and abs(region.y - guide.y) < 40
                seen[t] = region.source if near else "elsewhere"
    finally:
        src.close()
    assert seen == {
        1.0: "guide_box",
        3.0: "guide_box",
        7.0: "detector",
        9.0: "detector",  # dimmed light
        11.0: "detector",  # warm side light
        13.0: "detector",
        16.5: "guide_box",
        20.0: "guide_box",  # the coffee cup is not a face
        23.5: "guide_box",
    }


def test_demo_uri_uses_the_cache_and_rebuilds_a_corrupt_clip_byte_identically(
    demo_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "bias-mirror"
    cache.mkdir()
    sidecar = demo_clip.with_name(demo_clip.name + ".sha256")
    shutil.copy2(demo_clip, cache / demo_clip.name)
    shutil.copy2(sidecar, cache / sidecar.name)
    mtime = (cache / demo_clip.name).stat().st_mtime_ns
    src = open_source("demo")
    try:
        assert src.description == str(cache / demo_clip.name)
        assert src.nominal_fps == pytest.approx(FPS)
    finally:
        src.close()
    assert (cache / demo_clip.name).stat().st_mtime_ns == mtime  # reused, not rebuilt
    # A damaged cache file is rebuilt, never trusted; old versions and stale temp files go.
    (cache / "demo-v1-640x480.mp4").write_bytes(b"old script")
    stale = cache / ".demo-interrupted.mp4"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    with (cache / demo_clip.name).open("r+b") as f:
        f.seek(5000)
        f.write(b"\xff" * 64)
    # The rebuilt clip is byte-identical to the first generation: the script is deterministic.
    assert demo_clip_path().read_bytes() == demo_clip.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [demo_clip.name, sidecar.name]


def test_a_broken_image_in_a_looping_folder_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each pass of a looping folder logged its broken image again: 16 lines in 10 s, 130,000
    a day. Once per image now; every skip is still counted."""
    folder = write_folder(tmp_path / "imgs", frames=3, names="f{i}", ext="png")
    (folder / "f1.png").write_bytes(b"not a png")
    src = open_source(str(folder), width=160, height=120, loop=True)
    with caplog.at_level("WARNING", logger="installation.sources.folder"):
        for _ in range(12):  # six passes over the two good images
            assert src.read() is not None
    src.close()
    lines = [r.getMessage() for r in caplog.records if "unreadable image" in r.getMessage()]
    assert len(lines) == 1 and "f1.png" in lines[0]
    assert src.unreadable >= 5  # type: ignore[attr-defined]


def test_images_gone_from_a_looping_folder_add_no_opencv_line_per_image(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # cv2.imread wrote "can't open/read file" to stderr for each vanished image, on every retry
    # of the folder: a journal line per image, besides the kiosk's own one line.
    folder = write_folder(tmp_path / "imgs", frames=6)
    src = open_source(str(folder), width=160, height=120, loop=True)
    assert src.read() is not None
    capfd.readouterr()
    for image in folder.iterdir():
        image.unlink()
    with pytest.raises(SourceError, match="vanished"):
        src.read()
    assert capfd.readouterr().err == ""
    assert src.missing == 6  # each image tried once, then the folder is reported  # type: ignore[attr-defined]


def test_a_cache_folder_that_cannot_be_made_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was a traceback in the capture thread, retried for ever as "opening the source failed".
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))  # a file where a folder goes
    with pytest.raises(SourceError, match="demo: the demo clip cannot be made") as err:
        open_source("demo")
    assert "XDG_CACHE_HOME" in str(err.value) and str(blocker) in str(err.value)
