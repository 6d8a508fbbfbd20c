"""The kiosk screen on a real Pygame surface (dummy driver): golden images and behaviour.

Set BIAS_MIRROR_REGEN_GOLDEN=1 to rewrite the reference PNGs after an intended change, then
look at them before committing.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pygame
import pytest

from installation.config import DisplayConfig, RegionConfig
from installation.display import IDLE, DisplayApp, FrameInputs, KioskView, Texts
from installation.display.widgets import BLUE
from installation.inference.card import load_card
from installation.paths import TEXTS_DIR
from installation.region import RegionFinder
from installation.types import FrameResult, Prediction, Region, SourceState, SourceStatus
from tests.video_fixtures import face_like

GOLDEN = Path(__file__).parent / "golden"
SIZE = (960, 540)
OK = SourceStatus(SourceState.OK)


@pytest.fixture(scope="module", autouse=True)
def pygame_display() -> None:
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((1, 1))


@pytest.fixture
def view(tiny_bundles: Path) -> KioskView:
    cards = {
        "left": load_card(tiny_bundles / "tiny_baseline" / "card.json"),
        "right": load_card(tiny_bundles / "tiny_dbvae" / "card.json"),
    }
    return KioskView(SIZE, cards)


def scene() -> np.ndarray:
    frame = np.full((480, 640, 3), 60, np.uint8)
    frame[:, :200] = (40, 90, 160)  # a warm wall on the left: shows the mirroring
    frame[88:344, 192:448] = face_like(256)
    return frame


def result(left_face: bool, right_face: bool, rarity: float | None = 0.83) -> FrameResult:
    region = RegionFinder(RegionConfig()).guide_box(640, 480)

    def pred(face: bool, p: float) -> Prediction:
        return Prediction(p_face=p, face=face, logit=0.0, ms=0.3)

    return FrameResult(
        frame_index=1,
        t_capture=0.0,
        t_done=0.0,
        region=region,
        predictions={"left": pred(left_face, 0.31), "right": pred(right_face, 0.92)},
        rarity=rarity,
    )


def render(view: KioskView, **kwargs: object) -> np.ndarray:
    surface = pygame.Surface(SIZE)
    view.draw(surface, **kwargs)  # type: ignore[arg-type]
    return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()


def check_golden(name: str, img: np.ndarray) -> None:
    path = GOLDEN / f"{name}.png"
    if os.environ.get("BIAS_MIRROR_REGEN_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") == "true" and not path.exists():
            pytest.fail(f"{path} missing: regenerate with BIAS_MIRROR_REGEN_GOLDEN=1 and commit")
        surf = pygame.surfarray.make_surface(img.swapaxes(0, 1))
        pygame.image.save(surf, str(path))
    ref = pygame.surfarray.array3d(pygame.image.load(str(path))).swapaxes(0, 1)
    assert ref.shape == img.shape
    diff = np.abs(ref.astype(int) - img.astype(int)).max(axis=2)
    # Tolerant of font rasterisation; a moved panel, a missing bar or a wrong colour fails.
    assert diff.mean() < 2.0, f"{name}: mean difference {diff.mean():.2f}"
    assert (diff > 40).mean() < 0.01, f"{name}: {(diff > 40).mean():.2%} of pixels differ"


def test_golden_one_model_sees_a_face(view: KioskView) -> None:
    img = render(view, frame=scene(), result=result(False, True), status=OK, attract=False)
    check_golden("split_verdict_en", img)


def test_golden_attract(view: KioskView) -> None:
    img = render(view, frame=scene(), result=None, status=OK, attract=True)
    check_golden("attract_en", img)


def test_golden_camera_unavailable(view: KioskView) -> None:
    status = SourceStatus(SourceState.UNAVAILABLE, "camera unavailable, retrying in 4 s")
    img = render(view, frame=None, result=None, status=status, attract=False)
    check_golden("camera_unavailable_en", img)


def test_golden_german(view: KioskView) -> None:
    view.language = "de"
    img = render(view, frame=scene(), result=result(True, True), status=OK, attract=False)
    check_golden("both_face_de", img)


def test_verdicts_change_the_screen(view: KioskView) -> None:
    a = render(view, frame=scene(), result=result(False, True), status=OK, attract=False)
    b = render(view, frame=scene(), result=result(True, True), status=OK, attract=False)
    left = view.panel_rects["left"]
    right = view.panel_rects["right"]
    assert not np.array_equal(
        a[left.top : left.bottom, left.left : left.right],
        b[left.top : left.bottom, left.left : left.right],
    )
    assert np.array_equal(
        a[right.top : right.bottom, right.left : right.right],
        b[right.top : right.bottom, right.left : right.right],
    )


def test_mirror_flips_image_and_guide_box_together(view: KioskView) -> None:
    frame = scene()
    off_centre = replace(result(True, True), region=Region(40, 88, 200, 200))
    img = render(view, frame=frame, result=off_centre, status=OK, attract=False)
    fr = view._frame_rect
    # The wall (left in the camera image) is on the right of the mirrored screen.
    assert img[fr.centery, fr.right - 5][0] > 120 > img[fr.centery, fr.left + 5][0]
    s = fr.width / 640

    def blue_pixels_at(x_frame: int) -> int:
        x, y = fr.x + int(x_frame * s), fr.y + int(88 * s)
        patch = img[y - 2 : y + 4, x - 2 : x + 20]
        return int((np.abs(patch.astype(int) - BLUE).sum(axis=2) < 30).sum())

    # Box at camera x 40..240 appears at screen x 400..600 of the mirrored image.
    assert blue_pixels_at(640 - 40 - 200) > 20
    assert blue_pixels_at(40) == 0


def test_paused_shows_no_camera_image(view: KioskView) -> None:
    img = render(
        view, frame=scene(), result=result(True, True), status=OK, attract=False, paused=True
    )
    fr = view.video_rect
    patch = img[fr.top : fr.bottom, fr.left : fr.right]
    assert patch.std() < 30  # only text on the background, no video


def test_every_text_key_in_every_language() -> None:
    texts = Texts(TEXTS_DIR)
    en = texts.keys("en")
    for lang in texts.languages:
        assert texts.keys(lang) == en, lang
        assert texts.t(lang, "confidence", pct=50)
        assert texts.t(lang, "rarity_text", pct=50)


def test_missing_text_key_is_reported(tmp_path: Path) -> None:
    for lang in ("en", "de", "fr"):
        (tmp_path / f"{lang}.yaml").write_text((TEXTS_DIR / f"{lang}.yaml").read_text())
    fr = (tmp_path / "fr.yaml").read_text().replace("paused_title:", "paused_titel:")
    (tmp_path / "fr.yaml").write_text(fr)
    with pytest.raises(ValueError, match="paused_title"):
        Texts(tmp_path)


def _app(view: KioskView) -> DisplayApp:
    cfg = DisplayConfig(fullscreen=False, width=SIZE[0], height=SIZE[1], fps=240)
    return DisplayApp(cfg, lambda size: view)


def test_keys_switch_language_and_only_the_staff_combo_quits(view: KioskView) -> None:
    app = _app(view)
    stop = threading.Event()
    langs: list[str] = []
    events = [
        pygame.event.Event(pygame.KEYDOWN, key=pygame.K_2, mod=0),
        pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0),
        pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=pygame.KMOD_CTRL),
    ]
    ticks = [0]

    def tick() -> FrameInputs:
        ticks[0] += 1
        if ticks[0] == 1:
            for e in events:
                pygame.event.post(e)
        if ticks[0] == 5:
            assert not stop.is_set()  # Esc and Ctrl+Q alone did not quit
            assert view.language == "de"
            pygame.event.post(
                pygame.event.Event(
                    pygame.KEYDOWN, key=pygame.K_q, mod=pygame.KMOD_CTRL | pygame.KMOD_SHIFT
                )
            )
        return IDLE

    app.run(tick, langs.append, stop, max_frames=50)
    assert stop.is_set()
    assert ticks[0] == 6  # quit right after the staff combo
    assert langs == ["de"]
    assert not pygame.display.get_init()  # pygame.quit() ran
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((1, 1))


def test_loop_exits_on_stop_event_and_records_latency(view: KioskView) -> None:
    app = _app(view)
    stop = threading.Event()
    frame = scene()
    n = [0]

    def tick() -> FrameInputs:
        n[0] += 1
        if n[0] == 10:
            stop.set()
        import time

        return FrameInputs(
            frame, result(True, True), OK, attract=False, frame_t=time.monotonic() - 0.01 - n[0]
        )

    app.run(tick, lambda lang: None, stop)
    assert app.frames == 10
    assert len(app.latency_ms) == 10 and min(app.latency_ms) >= 10
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((1, 1))


def test_render_benchmark_1080p(benchmark, tiny_bundles: Path) -> None:  # type: ignore[no-untyped-def]
    cards = {
        "left": load_card(tiny_bundles / "tiny_baseline" / "card.json"),
        "right": load_card(tiny_bundles / "tiny_dbvae" / "card.json"),
    }
    big = KioskView((1920, 1080), cards)
    surface = pygame.Surface((1920, 1080))
    frame, res = scene(), result(False, True)
    timings = benchmark(big.draw, surface, frame=frame, result=res, status=OK, attract=False)
    assert set(timings) == {"video", "panels", "overlay"}
