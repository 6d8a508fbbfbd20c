"""Presence without the models, and stable verdicts.

The occupancy detector runs on real frames through OpenCV; the verdict tracker on logit sequences
(unit) and on the shipped int8 models through the real pipeline and a real mp4v recording
(`replay`): a visitor whom both models miss is present from the first half second to the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.config import RegionConfig
from installation.inference import load_classifier
from installation.logits import logit_of
from installation.paths import MODELS_DIR
from installation.pipeline import Judge, Pipeline
from installation.presence import STILL_RELEARN_S, OccupancyDetector
from installation.region import RegionFinder, crop_for_model
from installation.replay import ReplayStats, run_replay
from installation.sources import open_source
from installation.types import Frame, FrameResult, ImageU8, Prediction
from installation.verdicts import VerdictTracker

FPS = 15.0
W, H = 640, 480
BOX = RegionFinder(RegionConfig()).guide_box(W, H)


def room(seed: int = 0) -> ImageU8:
    """An empty exhibition room: a smooth wall with some structure, 640x480 BGR."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 140, size=(12, 16, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC), np.uint8)


def noisy(img: ImageU8, rng: np.random.Generator, sd: float = 3.0) -> ImageU8:
    """Sensor noise of a webcam: every frame differs a little."""
    return np.clip(img + rng.normal(0, sd, img.shape), 0, 255).astype(np.uint8)


def with_person(base: ImageU8, dx: int = 0, shade: int = 35) -> ImageU8:
    """A visitor's silhouette in the guide box (head and shoulders), darker than the wall."""
    img = base.copy()
    cx, cy = BOX.x + BOX.w // 2 + dx, BOX.y + BOX.h // 2
    cv2.ellipse(img, (cx, cy - 20), (60, 80), 0, 0, 360, (shade, shade + 10, shade + 25), -1)
    cv2.ellipse(img, (cx, cy + 150), (130, 80), 0, 0, 360, (shade, shade, shade), -1)
    return img


def feed(det: OccupancyDetector, frames: Iterator[ImageU8], t0: float) -> list[bool]:
    return [det.update(f, BOX, t0 + i / FPS) for i, f in enumerate(frames)]


def test_empty_room_with_noise_and_exposure_drift_is_not_occupied() -> None:
    det, rng, base = OccupancyDetector(), np.random.default_rng(1), room()
    # 20 s of an empty box; the camera's auto-exposure brightens everything by 25 levels.
    frames = (
        noisy(np.clip(base.astype(int) + int(25 * i / 300), 0, 255).astype(np.uint8), rng)
        for i in range(300)
    )
    assert not any(feed(det, frames, 0.0))


def test_a_visitor_is_seen_at_once_and_stays_seen_while_standing_still() -> None:
    det, rng, base = OccupancyDetector(), np.random.default_rng(2), room()
    assert not any(feed(det, (noisy(base, rng) for _ in range(30)), 0.0))
    # 60 s of standing in the box, swaying by a pixel or two (as people do).
    sway = [round(2 * np.sin(i / 7)) for i in range(900)]
    seen = feed(det, (noisy(with_person(base, dx), rng) for dx in sway), 2.0)
    assert seen[0], "not acknowledged on the first frame"
    assert all(seen), f"lost after {seen.index(False) / FPS:.1f} s"
    # Leaves: the box is empty again within a second.
    gone = feed(det, (noisy(base, rng) for _ in range(30)), 62.0)
    assert not any(gone)  # the empty box is recognised at once: no ghost of the long visit


def test_something_left_still_in_the_box_is_learnt_as_empty() -> None:
    """A bag put down (or the ghost a long visit leaves) does not keep the kiosk 'occupied'."""
    det, rng, base = OccupancyDetector(), np.random.default_rng(3), room()
    feed(det, (noisy(base, rng) for _ in range(15)), 0.0)
    bag = with_person(base)  # perfectly still, unlike a person
    n = int((STILL_RELEARN_S + 3) * FPS)
    seen = feed(det, (noisy(bag, rng) for _ in range(n)), 1.0)
    assert seen[0] and not seen[-1]
    assert sum(seen) / FPS == pytest.approx(STILL_RELEARN_S, abs=1.0)


def test_occupancy_setting_is_checked() -> None:
    with pytest.raises(ValueError, match=r"region\.occupancy_min"):
        OccupancyDetector(occupancy_min=0)


# -- verdicts ---------------------------------------------------------------------------------


def flips(seq: list[bool]) -> int:
    return sum(a != b for a, b in itertools.pairwise(seq))


def test_hysteresis_holds_a_verdict_on_a_noisy_still_face() -> None:
    """10 s at 30 fps of a face near the threshold, logit noise 0.8 (measured on a still face
    through the shipped int8 models: 0.4-1.0), 20 noise draws per offset: the raw decision flips
    constantly; once the median window is full the shown verdict flips at most once, and in most
    draws not at all."""
    thr = logit_of(0.02)
    window = 5
    for offset in (-0.3, 0.0, 0.3):
        settled = []
        for seed in range(20):
            rng = np.random.default_rng(seed)
            logits = thr + offset + rng.normal(0, 0.8, 300)
            tracker = VerdictTracker(thr, window=window)
            shown = [tracker.update(float(x)).face for x in logits]
            raw = [bool(x >= thr) for x in logits]
            assert flips(raw) > 50
            # While the window fills, a fresh visit decides at the plain threshold (see below).
            assert flips(shown[: window - 1]) <= window - 2
            settled.append(flips(shown[window - 1 :]))
        assert max(settled) <= 1, (offset, settled)
        assert sum(settled) <= 4, (offset, settled)


def test_a_clear_change_still_comes_through_quickly() -> None:
    thr = 0.0
    tracker = VerdictTracker(thr)
    for _ in range(10):
        assert not tracker.update(-4.0).face
    shown = [tracker.update(4.0).face for _ in range(10)]
    assert shown.index(True) <= 2  # the median of 5 turns after 3 frames: 0.2 s at 15 fps
    v = tracker.update(4.0)
    assert v.clear and v.margin == pytest.approx(4.0) and v.strength > 0.95


def test_a_fresh_visit_decides_at_the_threshold() -> None:
    """Inside the hysteresis band a new visit is not held on the old side: the cards' numbers are
    made at the threshold, so the screen must agree with them for a face just above it."""
    tracker = VerdictTracker(0.0, margin=1.0)
    for _ in range(10):
        tracker.update(-5.0)
    tracker.reset()
    v = [tracker.update(0.4) for _ in range(8)][-1]
    assert v.face and not v.clear


# -- a visitor both models miss, through the real pipeline and a real recording ----------------


@pytest.fixture(scope="module")
def classifiers() -> dict[str, object]:
    return {
        side: load_classifier(MODELS_DIR / name, accelerator="cpu")
        for side, name in (("left", "baseline"), ("right", "debiased"))
    }


def quiet_room(classifiers: dict[str, object]) -> tuple[ImageU8, int]:
    """An empty room (and its seed) in which neither shipped model finds a face in the box.
    Not every synthetic wall is one: the DB-VAE shipped on 2026-12-04 takes some smooth colour
    blobs for a face (logit just above its threshold); this test is about a visitor both miss."""
    for seed in range(5, 50):
        base = room(seed)
        crop = crop_for_model(base, BOX)
        if not any(clf.predict(crop).face for clf in classifiers.values()):  # type: ignore[attr-defined]
            return base, seed
    raise AssertionError("no synthetic room that both shipped models judge empty")


def missed_visitor(classifiers: dict[str, object], base: ImageU8) -> ImageU8:
    """A frame with a real person's head in the box that neither shipped model finds: scikit-
    image's astronaut photo at framings from tight to loose, in dimmer light, and standing off
    the box's centre (her face's centre still inside it); the first both models miss. Not
    near-black: the shipped models of 2026-12-07 find her centred at every framing and light
    down to a quarter, and a box gone almost black is a light change, not a visitor."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # [512, 512, 3]
    face_x = 225  # the face's centre in the photo
    for off in (0, 40, 80):
        for side_px in (60, 80, 100, 140, 200, 260, 330, 400, 512):
            x0 = max(0, face_x - side_px // 2 + off)
            if x0 >= face_x or x0 + side_px > photo.shape[1]:
                continue  # her face's centre out of the box, or the box past the photo
            for shade in (1.0, 0.45, 0.25):
                patch = photo[max(0, 120 - side_px // 2) :, x0:][:side_px, :side_px]
                patch = (patch * shade).astype(np.uint8)
                frame = base.copy()
                frame[BOX.y : BOX.y + BOX.h, BOX.x : BOX.x + BOX.w] = cv2.resize(
                    patch, (BOX.w, BOX.h), interpolation=cv2.INTER_AREA
                )
                # Missed as she stands in the clip (shifted a pixel or two), not at one offset.
                crops = [
                    crop_for_model(np.roll(frame, dx, axis=1), BOX) for dx in (-2, -1, 0, 1, 2)
                ]
                if not any(
                    c.predict(crop).face  # type: ignore[attr-defined]
                    for c in classifiers.values()
                    for crop in crops
                ):
                    return frame
    pytest.fail("both shipped models find the astronaut at every framing: pick another photo")


def test_replay_a_visitor_both_models_miss_is_present_throughout(
    classifiers: dict[str, object], tmp_path: Path
) -> None:
    base, seed = quiet_room(classifiers)
    rng = np.random.default_rng(seed)
    visitor = missed_visitor(classifiers, base)
    clip = tmp_path / "missed.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    assert writer.isOpened()
    empty_s, stay_s = 2.0, 10.0
    for i in range(int((empty_s + stay_s) * FPS)):
        if i < empty_s * FPS:
            frame = noisy(base, rng)
        else:
            dx = round(2 * np.sin(i / 5))  # standing, not frozen
            frame = noisy(np.roll(visitor, dx, axis=1), rng)
        writer.write(frame)
    writer.release()

    pipeline = Pipeline(RegionFinder(RegionConfig()), classifiers)  # type: ignore[arg-type]
    report = tmp_path / "missed.jsonl"
    src = open_source(str(clip), width=W, height=H, fps=FPS)
    names = {"left": "baseline", "right": "debiased"}
    try:
        with report.open("w", encoding="utf-8") as out:
            stats: ReplayStats = run_replay(pipeline, src, out, names)
    finally:
        src.close()
    lines = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    entry = int(empty_s * FPS)
    assert not any(ln["present"] for ln in lines[:entry])
    visit = lines[entry:]
    ack = int(0.5 * FPS)
    # Acknowledged within 0.5 s whatever the models say, and never dropped while standing there:
    # the kiosk's attract screen (after attract_after_s without presence) never comes.
    assert any(ln["present"] for ln in visit[:ack])
    assert all(ln["present"] for ln in visit[ack:])
    missed = [not (ln["left"]["verdict"] or ln["right"]["verdict"]) for ln in visit[ack:]]
    assert sum(missed) / len(missed) > 0.9  # and it is a visitor the models miss
    assert stats.missed_by_both >= 0.9 * len(visit[ack:])


def test_a_still_face_does_not_flicker(classifiers: dict[str, object]) -> None:
    """The astronaut, still in the box with webcam noise for 10 s at 30 fps: at most one verdict
    change per model."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(6)
    pipeline = Pipeline(RegionFinder(RegionConfig()), classifiers)  # type: ignore[arg-type]
    frame = room(6)
    frame[BOX.y : BOX.y + BOX.h, BOX.x : BOX.x + BOX.w] = cv2.resize(
        photo[20:420, 30:430], (BOX.w, BOX.h), interpolation=cv2.INTER_AREA
    )
    shown: dict[str, list[bool]] = {"left": [], "right": []}
    for i in range(300):
        res = pipeline.process(Frame(i, i / 30.0, noisy(frame, rng)))
        for side, seq in shown.items():
            seq.append(res.found(side))
    for side, seq in shown.items():
        assert flips(seq) <= 1, (side, flips(seq))


class FaceEverywhere:
    """A real int8 model whose decision line sits below anything it can output, so it calls
    every crop a face, the empty wall included: a model's false face in the box, made certain
    (fault injection; a card threshold cannot go that low, `logit_of` clamps it at 1e-7)."""

    threshold_logit = -1e3

    def __init__(self, bundle: Path) -> None:
        self._model = load_classifier(bundle)

    def predict(self, crop_rgb: np.ndarray) -> Prediction:
        return dataclasses.replace(self._model.predict(crop_rgb), face=True)


def wall_taken_for_a_face(tiny_bundles: Path) -> Judge:
    return FaceEverywhere(tiny_bundles / "tiny_baseline")


def test_a_face_in_the_empty_box_neither_starts_nor_keeps_a_visit(tiny_bundles: Path) -> None:
    pipeline = Pipeline(RegionFinder(RegionConfig()), {"left": wall_taken_for_a_face(tiny_bundles)})
    rng, base = np.random.default_rng(4), room(4)
    t = itertools.count()

    def run(frames: Iterator[ImageU8]) -> list[FrameResult]:
        return [pipeline.process(Frame(i, next(t) / FPS, f)) for i, f in enumerate(frames)]

    empty = run(noisy(base, rng) for _ in range(int(5 * FPS)))
    assert all(r.found("left") for r in empty)  # the premise: the model sees a face in the wall
    assert not any(r.present for r in empty)  # ... and nobody is there
    sway = [round(2 * np.sin(i / 7)) for i in range(int(5 * FPS))]
    visit = run(noisy(with_person(base, dx), rng) for dx in sway)
    assert visit[0].present and all(r.present for r in visit)
    after = run(noisy(base, rng) for _ in range(int(10 * FPS)))
    # The visitor walks off: the visit ends within a second, although the model still sees a
    # face in the wall, and the screen can go back to attract mode.
    assert not any(r.present for r in after[int(1 * FPS) :])


def test_a_model_face_carries_a_visitor_who_fades_into_the_background(
    tiny_bundles: Path,
) -> None:
    """A visitor who stands perfectly still is learnt into the background after STILL_RELEARN_S
    (as a bag would be); while a model still sees their face, they stay present."""
    pipeline = Pipeline(RegionFinder(RegionConfig()), {"left": wall_taken_for_a_face(tiny_bundles)})
    rng, base = np.random.default_rng(5), room(5)
    frames = [noisy(base, rng) for _ in range(15)]
    frames += [noisy(with_person(base), rng) for _ in range(int((STILL_RELEARN_S + 5) * FPS))]
    results = [pipeline.process(Frame(i, i / FPS, f)) for i, f in enumerate(frames)]
    visit = results[15:]
    assert not visit[-1].occupied  # the detector alone has let them go ...
    assert all(r.present for r in visit)  # ... the model's face carries the visit on


def test_rarity_only_for_a_present_visitor(tiny_bundles: Path) -> None:
    """Rarity needs a DB-VAE on the right (its latent space); the shipped right-hand model has
    none since 2026-12-05 (balanced resampling), so the tests' tiny real DB-VAE bundle stands
    in."""
    classifiers = {
        side: load_classifier(tiny_bundles / name, accelerator="cpu")
        for side, name in (("left", "tiny_baseline"), ("right", "tiny_dbvae"))
    }
    rarity = classifiers["right"].rarity
    if rarity is None:
        pytest.fail(
            "the tiny DB-VAE bundle has no latent statistics: run python -m tests.tiny_bundles"
        )
    pipeline = Pipeline(RegionFinder(RegionConfig()), classifiers, rarity=rarity)  # type: ignore[arg-type]
    base = room(7)
    # The same frame over and over: nothing moves, nobody arrived; whatever the model thinks of
    # the wall, no rarity is shown for it.
    results = [pipeline.process(Frame(i, i / FPS, base)) for i in range(20)]
    assert all(r.rarity is None and not r.occupied for r in results)
