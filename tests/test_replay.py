"""`bias-mirror replay` end to end: real clip through OpenCV, real int8 bundles, real report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.inference import load_classifier
from installation.pipeline import Pipeline
from installation.region import RegionFinder, crop_for_model
from installation.replay import replay_main
from installation.sources import open_source
from tests.video_fixtures import write_clip as write_numbered_clip


def write_clip(path: Path, frames: int = 24, size: tuple[int, int] = (320, 240)) -> Path:
    """A small real mp4v clip: a bright disc (the tiny models' 'face') moves through the box."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 12.0, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(7)
    for i in range(frames):
        img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        cx = int(w * (0.1 + 0.8 * i / max(frames - 1, 1)))
        cv2.circle(img, (cx, h // 2), h // 5, (230, 220, 210), -1)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture
def config(tmp_path: Path, tiny_bundles: Path) -> Path:
    models = tmp_path / "models"
    shutil.copytree(tiny_bundles / "tiny_baseline", models / "baseline")
    shutil.copytree(tiny_bundles / "tiny_dbvae", models / "debiased")
    path = tmp_path / "replay.yaml"
    path.write_text(
        "source: {uri: demo, width: 320, height: 240, fps: 12}\n"
        "models: {left: models/baseline, right: models/debiased, accelerator: cpu}\n"
        "mqtt: {enabled: false}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_replay_writes_one_line_per_frame(
    config: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.jsonl"
    assert replay_main(str(clip), report, config, None) == 0
    lines = _lines(report)
    assert [line["frame"] for line in lines] == list(range(24))
    assert lines[12]["t"] == pytest.approx(1.0)
    for line in lines:
        assert set(line) == {"frame", "t", "region", "present", "occupied", "left", "right"}
        assert isinstance(line["present"], bool) and isinstance(line["occupied"], bool)
        assert len(line["region"]) == 4
        for side in ("left", "right"):
            pred = line[side]
            assert 0.0 <= pred["p_face"] <= 1.0
            assert isinstance(pred["face"], bool) and isinstance(pred["verdict"], bool)
            assert pred["ms"] > 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 24
    faces = sum(line["left"]["face"] for line in lines)
    assert summary["models"]["left"]["face_rate"] == pytest.approx(faces / 24, abs=1e-4)
    agree = sum(line["left"]["face"] == line["right"]["face"] for line in lines)
    assert summary["agreement_rate"] == pytest.approx(agree / 24, abs=1e-4)


def test_replay_matches_the_models_on_the_same_crop(
    config: Path, clip: Path, tmp_path: Path
) -> None:
    """The report is what the two classifiers say about the guide-box crop of each frame."""
    report = tmp_path / "out.jsonl"
    assert replay_main(str(clip), report, config, 5) == 0
    lines = _lines(report)
    assert len(lines) == 5
    left = load_classifier(tmp_path / "models" / "baseline", accelerator="cpu")
    finder = RegionFinder(RegionConfig())
    src = open_source(str(clip), width=320, height=240, fps=12)
    try:
        for line in lines:
            frame = src.read()
            assert frame is not None
            region = finder.find(frame.image)
            assert line["region"] == region.as_list()
            pred = left.predict(crop_for_model(frame.image, region))
            assert line["left"]["p_face"] == pytest.approx(pred.p_face, abs=1e-6)
    finally:
        src.close()


def test_replay_is_deterministic(config: Path, clip: Path, tmp_path: Path) -> None:
    def strip(path: Path) -> list[dict]:
        out = _lines(path)
        for line in out:
            for side in ("left", "right"):
                del line[side]["ms"]
        return out

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert replay_main(str(clip), a, config, None) == 0
    assert replay_main(str(clip), b, config, None) == 0
    assert strip(a) == strip(b)


def test_report_holds_no_image_or_latent(config: Path, clip: Path, tmp_path: Path) -> None:
    report = tmp_path / "out.jsonl"
    assert replay_main(str(clip), report, config, None) == 0
    for line in _lines(report):
        for side in ("left", "right"):
            assert set(line[side]) == {"model", "p_face", "face", "verdict", "ms"}
        assert set(line) == {"frame", "t", "region", "present", "occupied", "left", "right"}
    assert report.stat().st_size < 24 * 400  # a few numbers per frame, nothing else


def test_pipeline_feeds_subscribers(config: Path, clip: Path, tmp_path: Path) -> None:
    models = {
        "left": load_classifier(tmp_path / "models" / "baseline", accelerator="cpu"),
        "right": load_classifier(tmp_path / "models" / "debiased", accelerator="cpu"),
    }
    pipe = Pipeline(RegionFinder(RegionConfig()), models, rarity=models["right"].rarity)
    seen = []
    pipe.subscribe(seen.append)
    pipe.subscribe(lambda r: 1 / 0)  # a broken consumer must not break the pipeline
    src = open_source(str(clip), width=320, height=240, fps=12)
    try:
        frame = src.read()
        assert frame is not None
        result = pipe.process(frame)
    finally:
        src.close()
    assert seen == [result]
    assert result.frame is None  # replay/bench pipelines do not hold on to frames
    assert set(result.stage_ms) >= {"region", "crop", "left", "right", "total"}
    assert result.predictions["right"].latent is not None


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_source", "no-such-clip.mp4"),
        ("empty_video", "empty.mp4"),
        ("bad_report_dir", "cannot write the report"),
        ("corrupt_model", "model.tflite"),
        ("config_typo", "sorce"),
    ],
)
def test_bad_input_gets_one_clear_error(
    case: str,
    message: str,
    config: Path,
    clip: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, report = str(clip), tmp_path / "out.jsonl"
    report.write_text("a report from yesterday\n", encoding="utf-8")
    if case == "missing_source":
        source = str(tmp_path / "no-such-clip.mp4")
    elif case == "empty_video":
        empty = tmp_path / "empty.mp4"
        writer = cv2.VideoWriter(str(empty), cv2.VideoWriter.fourcc(*"mp4v"), 12.0, (64, 64))
        writer.release()
        source = str(empty)
    elif case == "bad_report_dir":
        report = tmp_path / "no" / "such" / "dir" / "out.jsonl"
    elif case == "corrupt_model":
        (tmp_path / "models" / "debiased" / "model.tflite").write_bytes(b"\x00garbage" * 100)
    elif case == "config_typo":
        config.write_text(config.read_text().replace("source:", "sorce:"), encoding="utf-8")
    rc = replay_main(source, report, config, None)
    err = capsys.readouterr().err
    assert rc == 2  # a user error; 1 is left to internal errors (bugs, with their traceback)
    assert message in err
    assert "Traceback" not in err
    assert err.count("error:") >= 1
    if case != "bad_report_dir":  # an existing report is never lost to a failed replay
        assert report.read_text(encoding="utf-8") == "a report from yesterday\n"
    assert sorted(p.name for p in report.parent.glob(".*.partial")) == []


def test_cli_replay_subprocess(config: Path, clip: Path, tmp_path: Path) -> None:
    report = tmp_path / "cli.jsonl"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "installation",
            "replay",
            str(clip),
            "--report",
            str(report),
            "--config",
            str(config),
            "--max-frames",
            "7",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["frames"] == 7
    assert len(_lines(report)) == 7


def _replay_cli(*args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "installation", "replay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_a_truncated_recording_is_reported_not_passed_off_as_complete(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An AVI cut in half (a copy interrupted, a full disk): it opens, its header still says 60
    # frames, and OpenCV stops after 30 without an error.
    clip = write_numbered_clip(tmp_path / "cut.avi", frames=60, fps=30.0, fourcc="MJPG")
    os.truncate(clip, clip.stat().st_size // 2)
    report = tmp_path / "out.jsonl"
    rc = replay_main(str(clip), report, config, None)
    captured = capsys.readouterr()
    assert rc == 3
    assert "warning:" in captured.err and "ends early" in captured.err
    assert "of 60 frames" in captured.err and "Traceback" not in captured.err
    summary = json.loads(captured.out)
    assert summary["complete"] is False and summary["interrupted"] is False
    assert "truncated or corrupt" in summary["shortfall"]
    assert 0 < summary["frames"] < 60
    assert len(_lines(report)) == summary["frames"]  # what was read is kept


def test_a_file_truncated_while_it_is_read_is_noticed(tmp_path: Path) -> None:
    clip = write_numbered_clip(tmp_path / "c.mp4", frames=120, fps=30.0)
    src = open_source(str(clip), width=160, height=120)
    read = [src.read() for _ in range(10)]
    assert all(f is not None for f in read)
    os.truncate(clip, clip.stat().st_size // 2)
    while src.read() is not None:
        pass
    assert "of 120 frames could be read" in (src.shortfall() or "")
    src.close()
    whole_clip = write_numbered_clip(tmp_path / "whole.mp4", frames=20)
    whole = open_source(str(whole_clip), width=160, height=120)
    while whole.read() is not None:
        pass
    assert whole.shortfall() is None  # a complete file is not flagged


def test_replay_memory_is_constant_over_a_long_stream(config: Path, clip: Path) -> None:
    """The summary keeps sums and fixed histograms: 20,000 more frames add no memory (a list
    of timings grew by about 75 bytes a frame, 195 MB over a museum day)."""
    from installation.replay import ReplayStats
    from installation.runtime import build_runtime

    rt = build_runtime(config, keep_frame=False)
    src = open_source(str(clip), width=320, height=240)
    frame = src.read()
    assert frame is not None
    result = rt.pipeline.process(frame)
    stats = ReplayStats()
    for _ in range(1000):
        stats.add(result)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(20_000):
        stats.add(result)
    grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 20_000  # bytes, over 20,000 frames: not one value per frame
    assert stats.summary({"left": "l", "right": "r"}, "cpu", Path("x"))["frames"] == 21_000


def test_ctrl_c_prints_the_summary_and_exits_130(config: Path, tmp_path: Path) -> None:
    long = write_numbered_clip(tmp_path / "long.mp4", frames=3000, fps=30.0, size=(96, 72))
    report = tmp_path / "out.jsonl"
    # A terminal's Ctrl-C: the child must not inherit an ignored SIGINT from the test runner.
    proc = _replay_cli(
        str(long),
        "--report",
        str(report),
        "--config",
        str(config),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    partial = tmp_path / ".out.jsonl.partial"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.stat().st_size > 0:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "replay finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["complete"] is False
    assert 0 < summary["frames"] < 3000
    assert len(_lines(report)) == summary["frames"]


def test_internal_errors_keep_their_traceback_and_exit_1(
    config: Path, clip: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out.jsonl"
    report.write_text("yesterday\n", encoding="utf-8")
    # Fault injection: a bug in the pipeline (not something the user can fix).
    code = (
        "import sys; from installation import pipeline, cli\n"
        "def boom(self, frame): raise ZeroDivisionError('injected bug')\n"
        "pipeline.Pipeline.process = boom\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    args = ["replay", str(clip), "--report", str(report), "--config", str(config)]
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "injected bug" in res.stderr
    assert report.read_text(encoding="utf-8") == "yesterday\n"  # nothing lost to the bug


def test_a_report_path_that_would_destroy_something_is_refused(
    config: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--report` naming the recording itself replaced the video with JSON lines; a folder gave
    IsADirectoryError; a device (/dev/null, as root) would have been renamed over. Each is now
    refused before anything is opened, and the recording is untouched."""
    recording = tmp_path / "visit.mp4"
    shutil.copyfile(clip, recording)
    before = recording.read_bytes()
    for report, says in (
        (recording, "is the recording being replayed"),
        (tmp_path, "is a folder"),
        (Path("/dev/null"), "is not a regular file"),
    ):
        assert replay_main(str(recording), report, config, None) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert recording.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob(".*.partial")) == []


@pytest.mark.parametrize("frames", [0, -1])
def test_demo_refuses_a_frame_count_below_one_with_or_without_a_screen(
    frames: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Headless, `demo --max-frames 0` went to replay's check; with a display it exited 0."""
    from installation.kiosk import run_demo

    assert run_demo(max_frames=frames) == 2
    assert "--max-frames must be at least 1" in capsys.readouterr().err
