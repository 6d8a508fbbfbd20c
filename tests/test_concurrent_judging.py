"""The two models judge one crop at once (installation.inference.concurrent): the same verdicts
as one after the other, truly at the same time, failures raised where the pipeline handles
them, and no thread left behind or pinned to the kiosk's frame core."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.inference import concurrent
from installation.inference.classifier import load_classifier
from installation.inference.concurrent import THREAD_PREFIX, JudgeThread, judge_at_once
from installation.pipeline import Pipeline
from installation.region import RegionFinder
from installation.types import Frame, Prediction
from tests.waiting import wait_until

W, H = 640, 480


def _frames(n: int) -> list[Frame]:
    """A room with the astronaut's face moving about the guide box, sensor noise on each."""
    from skimage import data

    face = cv2.cvtColor(data.astronaut()[20:420, 30:430], cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(3)
    base = cv2.resize(rng.integers(40, 200, (12, 16, 3), dtype=np.uint8), (W, H))
    out = []
    for i in range(n):
        img = base.copy()
        side = 200 + 8 * (i % 5)
        x, y = 200 + 4 * (i % 7), 120 + 3 * (i % 3)
        img[y : y + side, x : x + side] = cv2.resize(face, (side, side))
        noise = rng.normal(0, 3, img.shape)
        out.append(Frame(i, i / 30.0, np.clip(img + noise, 0, 255).astype(np.uint8)))
    return out


def _judges(tiny_bundles: Path) -> dict[str, object]:
    return {
        "left": load_classifier(tiny_bundles / "tiny_baseline", accelerator="cpu"),
        "right": load_classifier(tiny_bundles / "tiny_dbvae", accelerator="cpu"),
    }


def _judge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


def test_at_once_gives_the_verdicts_one_after_the_other_gives(tiny_bundles: Path) -> None:
    frames = _frames(40)
    runs = {}
    for parallel in (False, True):
        pipeline = Pipeline(RegionFinder(RegionConfig()), _judges(tiny_bundles), parallel=parallel)  # type: ignore[arg-type]
        assert pipeline.parallel is parallel
        runs[parallel] = [pipeline.process(f) for f in frames]
        pipeline.close()
    for one, both in zip(runs[False], runs[True], strict=True):
        for side in ("left", "right"):
            a, b = one.predictions[side], both.predictions[side]
            assert (a.logit, a.p_face, a.face) == (b.logit, b.p_face, b.face)
            assert (a.latent is None) == (b.latent is None)
            if a.latent is not None:
                assert np.array_equal(a.latent, b.latent)
            assert one.verdicts[side] == both.verdicts[side]
        assert "models" in both.stage_ms
    # The premise: the frames gave both models something to disagree about over time.
    assert len({r.predictions["right"].logit for r in runs[True]}) > 1


class _MeetingJudge:
    """Predicts only once the other side's predict is running too (a barrier of two): one after
    the other, the first waits for the second in vain and the barrier breaks."""

    threshold_logit = 0.0

    def __init__(self, barrier: threading.Barrier) -> None:
        self._barrier = barrier
        self.threads: list[str] = []

    def predict(self, crop_rgb: np.ndarray) -> Prediction:
        self.threads.append(threading.current_thread().name)
        self._barrier.wait()
        return Prediction(p_face=0.9, face=True, logit=2.2, ms=0.0)


def test_the_two_sides_really_run_at_the_same_time() -> None:
    frame = _frames(1)[0]
    barrier = threading.Barrier(2, timeout=10)
    left, right = _MeetingJudge(barrier), _MeetingJudge(barrier)
    pipeline = Pipeline(RegionFinder(RegionConfig()), {"left": left, "right": right}, parallel=True)
    try:
        for _ in range(3):
            result = pipeline.process(frame)
            assert result.predictions["left"].face and result.predictions["right"].face
    finally:
        pipeline.close()
    assert set(left.threads) == {threading.current_thread().name}
    assert set(right.threads) == {THREAD_PREFIX + "right"}

    # One after the other, the same judges cannot meet: the barrier breaks (the control).
    barrier.reset()
    barrier_short = threading.Barrier(2, timeout=0.2)
    one_by_one = Pipeline(
        RegionFinder(RegionConfig()),
        {"left": _MeetingJudge(barrier_short), "right": _MeetingJudge(barrier_short)},
        parallel=False,
    )
    with pytest.raises(threading.BrokenBarrierError):
        one_by_one.process(frame)


class _Failing:
    threshold_logit = 0.0

    def __init__(self, fail: list[bool]) -> None:
        self._fail = fail

    def predict(self, crop_rgb: np.ndarray) -> Prediction:
        if self._fail[0]:
            raise RuntimeError("invoke failed: injected")
        return Prediction(p_face=0.1, face=False, logit=-2.2, ms=0.0)


def test_a_failure_on_the_second_side_reaches_the_pipeline_and_the_next_frame_runs(
    tiny_bundles: Path,
) -> None:
    before = set(_judge_threads())
    fail = [True]
    judges = {"left": _judges(tiny_bundles)["left"], "right": _Failing(fail)}
    pipeline = Pipeline(RegionFinder(RegionConfig()), judges, parallel=True)  # type: ignore[arg-type]
    frames = _frames(2)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            pipeline.process(frames[0])
        fail[0] = False
        result = pipeline.process(frames[1])  # the thread is free again: no "submit twice"
        assert result.predictions["right"].logit == -2.2
    finally:
        pipeline.close()
    assert set(_judge_threads()) - before == set()


def test_close_ends_the_thread_and_a_later_frame_starts_it_again(tiny_bundles: Path) -> None:
    before = set(_judge_threads())
    pipeline = Pipeline(RegionFinder(RegionConfig()), _judges(tiny_bundles), parallel=True)  # type: ignore[arg-type]
    frame = _frames(1)[0]
    pipeline.process(frame)
    assert len(set(_judge_threads()) - before) == 1
    pipeline.close()
    assert set(_judge_threads()) - before == set()
    pipeline.process(frame)
    assert len(set(_judge_threads()) - before) == 1
    # Dropped without close(): its thread still ends.
    del pipeline
    gc.collect()
    assert wait_until(lambda: set(_judge_threads()) - before == set(), 5)


def test_one_after_the_other_keeps_no_thread(tiny_bundles: Path) -> None:
    before = set(_judge_threads())
    pipeline = Pipeline(RegionFinder(RegionConfig()), _judges(tiny_bundles), parallel=False)  # type: ignore[arg-type]
    pipeline.process(_frames(1)[0])
    assert set(_judge_threads()) - before == set()
    one_side = Pipeline(
        RegionFinder(RegionConfig()),
        {"left": _judges(tiny_bundles)["left"]},  # type: ignore[dict-item]
        parallel=True,
    )
    assert one_side.parallel is False  # nothing to judge at once with one model


def test_the_judge_thread_is_not_pinned_to_its_creators_core() -> None:
    """The kiosk pins its frame threads to one core; the second model must run on another."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a Linux machine with two or more cores (thread affinity)")
    cores = set(os.sched_getaffinity(0))
    seen: list[set[int]] = []

    class Affinity:
        def predict(self, crop_rgb: np.ndarray) -> Prediction:
            seen.append(set(os.sched_getaffinity(0)))
            return Prediction(p_face=0.5, face=True, logit=0.0, ms=0.0)

    judge = JudgeThread(Affinity(), THREAD_PREFIX + "test")  # made while unpinned, as the kiosk's

    def pinned_caller() -> None:
        os.sched_setaffinity(0, {max(cores)})  # this thread only, as affinity.pin does
        judge.submit(np.zeros((64, 64, 3), np.uint8))  # starts the thread from a pinned one
        judge.wait()

    t = threading.Thread(target=pinned_caller)
    t.start()
    t.join(10)
    judge.close()
    assert seen == [cores]


@pytest.mark.parametrize(
    ("cores", "backends", "threads", "at_once"),
    [
        ({0, 1}, ["litert-cpu", "litert-cpu"], 1, True),
        ({0}, ["litert-cpu", "litert-cpu"], 1, False),  # one core: nothing to run it on
        ({0, 1}, ["litert-cpu"], 1, False),  # one model loaded
        ({0, 1}, ["litert-cpu", "litert-cpu"], 2, False),  # each already takes both cores
        ({0, 1, 2, 3}, ["litert-cpu", "litert-cpu"], 2, True),
        # One accelerator runs one model at a time.
        ({0, 1, 2, 3}, ["litert-edgetpu:usb:0", "litert-edgetpu:usb:0"], 1, False),
        ({0, 1}, ["litert-cpu", "litert-gpu"], 1, False),
    ],
)
def test_when_the_runtime_judges_at_once(
    monkeypatch: pytest.MonkeyPatch,
    cores: set[int],
    backends: list[str],
    threads: int,
    at_once: bool,
) -> None:
    monkeypatch.setattr(concurrent, "allowed_cores", lambda: cores)
    assert judge_at_once(backends, threads) is at_once


def test_the_kiosk_runtime_judges_at_once_where_it_can(tiny_bundles: Path, tmp_path: Path) -> None:
    from installation.runtime import build_runtime

    cfg = tmp_path / "k.yaml"
    left, right = tiny_bundles / "tiny_baseline", tiny_bundles / "tiny_dbvae"
    cfg.write_text(f"models: {{left: {left}, right: {right}}}\nmqtt: {{enabled: false}}\n")
    rt = build_runtime(cfg, keep_frame=False)
    try:
        assert rt.pipeline.parallel is judge_at_once(["litert-cpu", "litert-cpu"])
        result = rt.pipeline.process(_frames(1)[0])
        assert set(result.predictions) == {"left", "right"}
    finally:
        rt.pipeline.close()


def test_a_stop_asked_twice_leaves_nothing_for_the_next_thread() -> None:
    class Plain:
        def predict(self, crop_rgb: np.ndarray) -> Prediction:
            return Prediction(p_face=0.5, face=True, logit=float(crop_rgb[0, 0, 0]), ms=0.0)

    judge = JudgeThread(Plain(), THREAD_PREFIX + "twice")
    crop = np.zeros((64, 64, 3), np.uint8)
    judge.start()
    judge.stop()
    judge.stop()  # a second stop must not leave an "end" behind for the next thread
    judge.close()
    crop[0, 0, 0] = 7
    judge.submit(crop)
    assert judge.wait().logit == 7.0
    judge.close()
    assert not judge.alive


def test_a_thread_still_inside_predict_is_never_joined_by_a_second_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fault injection: predict hangs past close's timeout. A new submit must not start a
    second thread on the same (not thread-safe) interpreter; once the hang ends, it may."""
    release = threading.Event()
    calls = [0]

    class Hangs:
        def predict(self, crop_rgb: np.ndarray) -> Prediction:
            calls[0] += 1
            if calls[0] == 1:
                release.wait(10)
            return Prediction(p_face=0.5, face=True, logit=float(calls[0]), ms=0.0)

    judge = JudgeThread(Hangs(), THREAD_PREFIX + "hung")
    crop = np.zeros((64, 64, 3), np.uint8)
    judge.submit(crop)
    judge.close(timeout=0.1)
    assert judge.alive and "did not end within 0.1 s" in caplog.text
    with pytest.raises(RuntimeError, match="has not ended"):
        judge.start()
    release.set()
    assert judge.wait().logit == 1.0  # the hung crop's answer, when it comes
    assert wait_until(lambda: not judge.alive, 5)
    judge.submit(crop)
    assert judge.wait().logit == 2.0  # the new thread's own answer, not the old one's
    judge.close()
