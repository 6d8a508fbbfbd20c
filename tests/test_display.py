"""The kiosk screen on a real Pygame surface (dummy driver): golden images and behaviour.

Set BIAS_MIRROR_REGEN_GOLDEN=1 to rewrite the reference PNGs after an intended change, then
look at them before committing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pygame
import pytest

from installation.config import DisplayConfig
from installation.display import (
    IDLE,
    DisplayApp,
    FrameInputs,
    KioskView,
    Texts,
    TextsError,
    render_to_png,
)
from installation.display.palette import BLUE
from installation.display.panels import Panel
from installation.display.widgets import TextCache
from installation.heatmap import Heatmaps
from installation.inference.card import load_card
from installation.paths import MODELS_DIR, SCREENSHOTS_DIR, TEXTS_DIR
from installation.types import FrameResult, Region, SourceState, SourceStatus
from tests.display_fixtures import cards, only, result, scene
from tests.video_fixtures import face_like

GOLDEN = Path(__file__).parent / "golden"
SIZE = (960, 540)
TILE = 32
OK = SourceStatus(SourceState.OK)
UNAVAILABLE = SourceStatus(SourceState.UNAVAILABLE, "camera unavailable, retrying in 4 s")


def _init_pygame() -> None:
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((1, 1))


@pytest.fixture(autouse=True)
def pygame_display() -> Iterator[None]:
    _init_pygame()  # the loop tests end with pygame.quit(); every test starts from a fresh init
    yield


@pytest.fixture
def view() -> KioskView:
    return KioskView(SIZE, cards())


def render(view: KioskView, **kwargs: object) -> np.ndarray:
    """Draw one state; returns the screen as [H, W, 3] RGB uint8."""
    surface = pygame.Surface(view.size)
    view.draw(surface, **kwargs)  # type: ignore[arg-type]
    return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()


def check_golden(name: str, img: np.ndarray, regen: bool = True) -> None:
    path = GOLDEN / f"{name}.png"
    if regen and os.environ.get("BIAS_MIRROR_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        pygame.image.save(pygame.surfarray.make_surface(img.swapaxes(0, 1)), str(path))
    if not path.exists():
        pytest.fail(f"{path} missing: run with BIAS_MIRROR_REGEN_GOLDEN=1, look at it, commit it")
    ref = pygame.surfarray.array3d(pygame.image.load(str(path))).swapaxes(0, 1)
    assert_looks_the_same(name, ref, img, path)


def assert_looks_the_same(name: str, ref: np.ndarray, img: np.ndarray, path: Path) -> None:
    """`img` draws what the reference image at `path` shows, up to font rasterisation."""
    assert ref.shape == img.shape, f"{name}: size {img.shape} != golden {ref.shape}"
    diff = np.abs(ref.astype(int) - img.astype(int)).max(axis=2)
    # Tolerant of font rasterisation across FreeType versions (shifting the whole screen by a
    # pixel changes at most ~21 % of any 32x32 tile); a flipped verdict (68 %), a moved panel,
    # a missing bar, a wrong colour or a wrong language fails.
    assert diff.mean() < 2.0, f"{name}: mean difference {diff.mean():.2f} (see {path})"
    assert (diff > 40).mean() < 0.01, f"{name}: {(diff > 40).mean():.2%} of pixels differ"
    worst, at = 0.0, (0, 0)
    for y in range(0, diff.shape[0], TILE):
        for x in range(0, diff.shape[1], TILE):
            share = float((diff[y : y + TILE, x : x + TILE] > 40).mean())
            if share > worst:
                worst, at = share, (x, y)
    assert worst < 0.4, f"{name}: {worst:.0%} of the {TILE}px tile at x, y = {at} differ"


# -- golden images ---------------------------------------------------------------------------


def test_golden_one_model_sees_a_face(view: KioskView) -> None:
    img = render(view, frame=scene(), result=result(False, True), status=OK, attract=False)
    check_golden("split_verdict_en", img)


def test_golden_attract(view: KioskView) -> None:
    img = render(view, frame=scene(), result=None, status=OK, attract=True)
    check_golden("attract_en", img)


def test_golden_camera_unavailable(view: KioskView) -> None:
    img = render(view, frame=None, result=None, status=UNAVAILABLE, attract=False)
    check_golden("camera_unavailable_en", img)


def test_golden_a_visitor_both_models_miss(view: KioskView) -> None:
    """Someone is in the box (occupancy) and neither model finds the face: both panels say
    "Missed" and the text under the mirror says it is the models' failure, not the visitor's."""
    res = result(False, False, rarity=None, occupied=True, close=(True, False))
    img = render(view, frame=scene(), result=res, status=OK, attract=False)
    check_golden("missed_by_both_en", img)


def test_golden_a_kiosk_running_on_one_model() -> None:
    """The left bundle did not load: its panel rests calmly, the right model judges with its
    rarity meter, and nothing compares the two."""
    view = KioskView(SIZE, {"right": cards()["right"]})
    res = only(result(False, True), "right")
    img = render(view, frame=scene(), result=res, status=OK, attract=False)
    check_golden("one_model_resting_en", img)


SHIPPED = {"left": "baseline", "right": "debiased"}


def _heatmaps(index: int = 1) -> Heatmaps:
    """Two made-up maps on the scene's face: the left model rests on the eyes, the right one
    on the outline of the face."""
    crop = cv2.cvtColor(cv2.resize(face_like(256), (64, 64)), cv2.COLOR_BGR2RGB)
    left = np.zeros((7, 7), np.float32)
    left[2:4, 1:6] = 3.0
    right = np.zeros((7, 7), np.float32)
    right[[0, 6], :] = 2.0
    right[:, [0, 6]] = 2.0
    return Heatmaps(index, 0.0, {"left": left, "right": right}, crop)


def test_golden_heatmaps_show_where_each_model_looks(view: KioskView) -> None:
    res = result(False, True, rarity=None, occupied=True)
    img = render(view, frame=scene(), result=res, status=OK, attract=False, heatmaps=_heatmaps())
    check_golden("heatmaps_en", img)
    plain = render(view, frame=scene(), result=res, status=OK, attract=False)
    assert np.abs(img.astype(int) - plain.astype(int)).max(axis=2).mean() > 0.5
    # Each map sits in the lower corner of the live image on its own model's side.
    f = view.frame_rect
    diff = np.abs(img.astype(int) - plain.astype(int)).max(axis=2)
    assert diff[f.bottom - 60, f.x + 60] > 20 and diff[f.bottom - 60, f.right - 60] > 20
    assert diff[f.y + 20, f.centerx] == 0


def test_camera_notice_on_every_screen_in_every_language(view: KioskView) -> None:
    states: list[dict[str, object]] = [
        {"frame": scene(), "result": None, "status": OK, "attract": True},
        {"frame": scene(), "result": result(True, False), "status": OK, "attract": False},
        {"frame": None, "result": None, "status": UNAVAILABLE, "attract": False},
        {"frame": scene(), "result": None, "status": OK, "attract": False, "paused": True},
    ]
    for lang in ("en", "de", "fr"):
        view.language = lang
        for state in states:
            assert view.t("camera_notice") in _drawn_texts(view, **state), (lang, state)


def test_no_heatmaps_without_a_visitor(view: KioskView) -> None:
    """The box is empty (or the room shows in attract mode): no map, whatever the worker has."""
    empty = result(False, False, rarity=None, occupied=False)
    for attract in (False, True):
        with_maps = render(
            view, frame=scene(), result=empty, status=OK, attract=attract, heatmaps=_heatmaps()
        )
        without = render(view, frame=scene(), result=empty, status=OK, attract=attract)
        assert np.array_equal(with_maps, without)


def _drawn_texts(view: KioskView, **kwargs: object) -> set[str]:
    """Every text string one screen shows, as the view reports what it drew."""
    render(view, **kwargs)
    return {d.text for d in view.drawn()}


def test_a_present_visitor_is_never_told_to_step_in(view: KioskView) -> None:
    missed = result(False, False, rarity=None, occupied=True)
    texts = _drawn_texts(view, frame=scene(), result=missed, status=OK, attract=False)
    joined = " ".join(texts)
    assert view.t("step_in") not in texts
    assert "Neither model found your face" in joined and "not yours" in joined
    assert {view.t("no_face"), view.t("score_clear")} <= texts  # both panels show their miss
    empty = result(False, False, rarity=None, occupied=False)
    texts = _drawn_texts(view, frame=scene(), result=empty, status=OK, attract=False)
    assert view.t("step_in") in texts
    assert view.t("no_face") not in texts  # nobody there: no verdict is shown at all


def test_confidence_line_agrees_with_the_verdict(view: KioskView) -> None:
    """A close call inside the hysteresis band says so, never "sure" with a low number."""
    res = result(True, False, rarity=None, close=(True, False))
    texts = _drawn_texts(view, frame=scene(), result=res, status=OK, attract=False)
    shown = {view.t("face"), view.t("score_close"), view.t("no_face"), view.t("score_clear")}
    assert shown <= texts
    assert not any("%" in t for t in texts if t.startswith(("Sure", view.t("score_close"))))
    assert view.t("one_found") in texts


def test_rarity_is_named_for_the_right_hand_model(view: KioskView) -> None:
    render(view, frame=scene(), result=result(False, True), status=OK, attract=False)
    under = [d for d in view.drawn() if d.rect.colliderect(view.under_rect)]
    name = view.texts.model_name(view.cards["right"])
    assert name != view.texts.model_name(view.cards["left"])
    assert name in [d.text for d in under]  # the meter's label names the model
    said = " ".join(d.text for d in under)
    assert "faces it learned from" in said and "not you" in said, said


def test_rarity_names_how_many_faces_it_compares_with() -> None:
    """A percentile on screen says what it is a percentile of: the right-hand model's training
    faces, with their count from its card; a card that does not give the count gets no meter."""
    res = result(False, True, rarity=0.83)
    for lang in ("en", "de", "fr"):
        v = KioskView(SIZE, cards(), language=lang)
        texts = _drawn_texts(v, frame=scene(), result=res, status=OK, attract=False)
        assert any("83" in t and "8000" in t for t in texts), (lang, texts)
    raw = cards()["right"].model_dump(by_alias=True)
    raw["training_data"] = {}
    unknown = {"left": cards()["left"], "right": type(cards()["right"]).model_validate(raw)}
    v = KioskView(SIZE, unknown)
    texts = _drawn_texts(v, frame=scene(), result=res, status=OK, attract=False)
    assert not any("83" in t for t in texts) and v.t("one_found") in texts


def test_rarity_never_claims_more_than_99_percent() -> None:
    """0.999 rounded would read "rarer than 100 % of the faces": a percentile cannot say that."""
    v = KioskView(SIZE, cards())
    texts = _drawn_texts(
        v, frame=scene(), result=result(False, True, rarity=0.999), status=OK, attract=False
    )
    assert any("99%" in t and "8000" in t for t in texts), texts
    assert not any("100%" in t for t in texts), texts


def test_golden_german(view: KioskView) -> None:
    view.language = "de"
    res = result(True, True, p=(0.64, 0.92))
    img = render(view, frame=scene(), result=res, status=OK, attract=False)
    check_golden("both_face_de", img)


def test_golden_comparison_catches_a_changed_screen(view: KioskView) -> None:
    img = render(view, frame=scene(), result=result(True, True), status=OK, attract=False)
    with pytest.raises(AssertionError, match="split_verdict_en"):
        check_golden("split_verdict_en", img, regen=False)  # left verdict flipped: must fail


# -- what the screen says --------------------------------------------------------------------


def panel_pixels(img: np.ndarray, view: KioskView, side: str) -> np.ndarray:
    """The part of a rendered screen [H, W, 3] that one model's panel covers."""
    r = view.panel_rects[side]
    return img[r.top : r.bottom, r.left : r.right]


def test_verdicts_change_only_their_panel(view: KioskView) -> None:
    a = render(view, frame=scene(), result=result(False, True), status=OK, attract=False)
    b = render(view, frame=scene(), result=result(True, True), status=OK, attract=False)
    assert not np.array_equal(panel_pixels(a, view, "left"), panel_pixels(b, view, "left"))
    assert np.array_equal(panel_pixels(a, view, "right"), panel_pixels(b, view, "right"))


@pytest.mark.parametrize("mirror", [True, False])
def test_guide_box_frames_exactly_the_crop(mirror: bool) -> None:
    """Paint the crop region magenta in the camera frame: on screen, the magenta block must sit
    inside the drawn brackets, mirrored with the image (a box flipped the wrong way, or not at
    all, frames the wrong part of the visitor)."""
    view = KioskView(SIZE, cards(), mirror=mirror)
    frame = np.full((480, 640, 3), 60, np.uint8)
    region = Region(40, 100, 200, 200)  # off-centre on purpose: mirroring moves it
    frame[100:300, 40:240] = (255, 0, 255)
    img = render(
        view, frame=frame, result=result(True, True, region=region), status=OK, attract=False
    )
    magenta = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] > 200)
    ys, xs = np.nonzero(magenta)
    box = view.guide_rect(region, (640, 480))
    # Where the crop's pixels landed on screen (bracket strokes cover some of its edge pixels).
    assert abs(xs.min() - box.left) <= 1 and abs(xs.max() - (box.right - 1)) <= 1
    assert abs(ys.min() - box.top) <= 1 and abs(ys.max() - (box.bottom - 1)) <= 1
    # The brackets are drawn there: blue corner strokes at the box's top-left corner.
    corner = img[box.top : box.top + 4, box.left : box.left + 20].astype(int)
    assert (np.abs(corner - BLUE).sum(axis=2) < 30).mean() > 0.9
    on_left_half = bool(xs.mean() < view.frame_rect.centerx)
    assert on_left_half == (not mirror)  # camera-left appears screen-right in a mirror


def test_mirror_flips_the_image(view: KioskView) -> None:
    img = render(view, frame=scene(), result=None, status=OK, attract=False)
    fr = view.frame_rect
    # The warm wall is on the camera's left, so on the mirrored screen's right.
    assert img[fr.centery, fr.right - 5][0] > 120 > img[fr.centery, fr.left + 5][0]


@pytest.mark.parametrize("attract", [False, True])
def test_live_image_in_the_screens_own_format_is_pygames_conversion_exactly(
    view: KioskView, attract: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live image is written straight into a surface in the screen's pixel format (a plain
    copy to blit); pixel for pixel it is what Pygame's conversion of OpenCV's BGR draws, on the
    screen's 32 bits and on a 24-bit surface, where Pygame converts."""
    import installation.display.mirror as mirror_module

    frame = scene()
    kwargs = {"frame": frame, "result": result(True, False), "status": OK, "attract": attract}
    assert mirror_module.screen_order(pygame.Surface(SIZE)) == cv2.COLOR_BGR2BGRA
    assert mirror_module.screen_order(pygame.Surface(SIZE, 0, 24)) is None
    assert mirror_module.screen_order(pygame.Surface(SIZE, pygame.SRCALPHA)) is None
    fast = render(view, **kwargs)
    deep = pygame.Surface(SIZE, 0, 24)
    view.draw(deep, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(mirror_module, "screen_order", lambda surface: None)
    converted = render(KioskView(SIZE, cards()), **kwargs)
    assert np.array_equal(fast, converted)
    fr = view.frame_rect
    # On 24 bits the texts' anti-aliasing lands a level apart; the image itself is the same.
    deep_image = pygame.surfarray.array3d(deep.subsurface(fr)).swapaxes(0, 1)
    assert np.array_equal(deep_image, converted[fr.top : fr.bottom, fr.left : fr.right])
    assert fast[fr.top : fr.bottom, fr.left : fr.right].std() > 5  # an image, not a blank box


def test_step_in_prompt_and_box_before_anyone_is_there(view: KioskView) -> None:
    absent = result(False, False, rarity=None)
    img = render(view, frame=scene(), result=absent, status=OK, attract=False)
    u = view.under_rect
    below = img[u.top : u.bottom, u.left : u.right]
    assert (below.max(axis=2) > 200).sum() > 100  # how to stand in the box
    assert view.t("step_in") in {d.text for d in view.drawn() if d.layer == "headline"}
    box = view.guide_rect(absent.region, (640, 480))
    corner = img[box.top : box.top + 3, box.left : box.left + 20]
    assert (corner.min(axis=2) > 240).mean() > 0.9  # white brackets: nobody in the box yet


def test_paused_shows_no_camera_image(view: KioskView) -> None:
    kwargs = {"result": result(True, True), "status": OK, "attract": False, "paused": True}
    img = render(view, frame=scene(), **kwargs)
    dark = render(view, frame=np.zeros((480, 640, 3), np.uint8), **kwargs)
    assert np.array_equal(img, dark)  # whatever the camera sees, the screen is the same
    assert view.t("camera_notice") in {d.text for d in view.drawn()}


def test_soft_room_is_the_rooms_average_mirrored() -> None:
    """The attract screen's tiny room (two-step reduction) is, to a few levels, the area average
    of the whole frame, dimmed, and mirrored like the live image."""
    from installation.display.mirror import soft_tiny

    frame = scene()  # BGR [480, 640, 3] with fine noise
    frame[:, :320] //= 3  # a dark left half, so mirroring shows
    tiny = soft_tiny(frame, 960, 720, mirror=False)
    assert tiny.shape == (18, 24, 3)
    whole = cv2.convertScaleAbs(
        cv2.resize(frame, (24, 18), interpolation=cv2.INTER_AREA), alpha=0.35
    )
    assert np.abs(tiny.astype(int) - whole.astype(int)).max() <= 4
    assert tiny[:, :12].mean() < tiny[:, 12:].mean() - 5
    assert np.array_equal(soft_tiny(frame, 960, 720, mirror=True), tiny[:, ::-1])
    assert soft_tiny(frame[:8, :8], 960, 720, mirror=False).shape == (18, 24, 3)  # tiny frames too


def test_attract_blurs_the_room_beyond_recognition(view: KioskView) -> None:
    frame = scene()
    live = render(view, frame=frame, result=None, status=OK, attract=False)
    soft = render(view, frame=frame, result=None, status=OK, attract=True)
    fr = view.frame_rect

    # Fine detail (the fixture's face noise) is gone: neighbouring pixels barely differ.
    def detail(img: np.ndarray) -> float:
        # Camera rows 92..112: the noisy top of the face fixture, above the attract text.
        s = fr.height / 480
        patch = img[fr.top + int(92 * s) : fr.top + int(112 * s), fr.left : fr.right]
        return float(np.abs(np.diff(patch.astype(int), axis=1)).mean())

    assert detail(soft) < detail(live) / 3


def test_layout_fits_every_screen_size() -> None:
    for size in [(1920, 1080), (1280, 720), (1024, 600)]:
        v = KioskView(size, cards())
        screen = pygame.Rect((0, 0), size)
        rects = [v.panel_rects["left"], v.video_rect, v.panel_rects["right"]]
        for r in rects:
            assert screen.contains(r), (size, r)
        assert rects[0].right < rects[1].left and rects[1].right < rects[2].left, size
        # Room under the video for the rarity meter.
        assert screen.bottom - v.video_rect.bottom >= v.px(260), size


def test_unchanged_screen_renders_no_new_text(view: KioskView) -> None:
    kwargs = {"frame": scene(), "result": result(False, True), "status": OK, "attract": False}
    render(view, **kwargs)
    before = len(view.text._cache)
    render(view, **kwargs)
    assert len(view.text._cache) == before


def test_render_to_png(view: KioskView, tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    render_to_png(view, out, frame=scene(), result=result(True, False), status=OK, attract=False)
    assert pygame.image.load(str(out)).get_size() == SIZE


def test_view_needs_at_least_one_card() -> None:
    with pytest.raises(ValueError, match="at least one"):
        KioskView(SIZE, {})


@pytest.mark.parametrize("broken", ["left", "right"])
def test_a_side_whose_bundle_did_not_load_shows_a_notice(broken: str) -> None:
    working = "right" if broken == "left" else "left"
    view = KioskView(SIZE, {working: cards()[working]})
    one = result(True, True, rarity=None)
    one = FrameResult(
        **{
            **{f: getattr(one, f) for f in one.__dataclass_fields__},
            "predictions": {working: one.predictions[working]},
            "verdicts": {working: one.verdicts[working]},
        }
    )
    for lang in ("en", "de", "fr"):
        view.language = lang
        texts = _drawn_texts(view, frame=scene(), result=one, status=OK, attract=False)
        assert view.t("model_unavailable_title") in texts, lang
        assert view.t("face") in texts  # the working side still judges, in every language
        assert view.t("one_found") not in " ".join(texts)  # no comparison with a missing model
    img = render(view, frame=scene(), result=one, status=OK, attract=False)
    rect = view.panel_rects[broken]
    assert img[rect.centery, rect.centerx].tolist() != [0, 0, 0]  # a panel, not a hole


def test_panels_show_the_seed_means_when_the_card_has_them() -> None:
    own = cards()
    # The right-hand model's own numbers make Darker men its weakest group; over 6 seeds of
    # its recipe Lighter women are. The panel shows (and names as weakest) the means.
    means = [0.75, 0.72, 0.66, 0.81]
    raw = own["right"].model_dump(by_alias=True)
    raw["display"]["gap_real"] = True  # the report measured a gap: a weakest group is named
    for g, m in zip(raw["metrics"]["int8"]["mit6s191"]["groups"], means, strict=True):
        g["recall_mean"] = m
    raw["seed_statistics"] = {"seeds": 6}
    with_means = {"left": own["left"], "right": type(own["right"]).model_validate(raw)}
    real = dict(raw, metrics=own["right"].model_dump(by_alias=True)["metrics"], seed_statistics={})
    own = {"left": own["left"], "right": type(own["right"]).model_validate(real)}
    a, b = KioskView(SIZE, own), KioskView(SIZE, with_means)
    assert a.panels["right"].weakest().label == "Darker men"  # type: ignore[union-attr]
    assert b.panels["right"].weakest().label == "Lighter women"  # type: ignore[union-attr]
    kwargs = {"frame": scene(), "result": result(True, True), "status": OK, "attract": False}
    img_a, img_b = render(a, **kwargs), render(b, **kwargs)
    assert not np.array_equal(panel_pixels(img_a, a, "right"), panel_pixels(img_b, a, "right"))
    assert np.array_equal(panel_pixels(img_a, a, "left"), panel_pixels(img_b, a, "left"))
    # The footnote says the bars are an average: only the panel with means renders that text.
    note = "Average of 6 trainings"
    assert note not in " ".join(a.panels["right"].note_lines())
    assert note in " ".join(b.panels["right"].note_lines())
    drawn = {d.text for d in b.drawn()}
    assert set(b.panels["right"].note_lines()) <= drawn


def test_shipped_tiny_cards_draw(tiny_bundles: Path) -> None:
    bundle_cards = {
        "left": load_card(tiny_bundles / "tiny_baseline" / "card.json"),
        "right": load_card(tiny_bundles / "tiny_dbvae" / "card.json"),
    }
    v = KioskView(SIZE, bundle_cards)
    img = render(v, frame=scene(), result=result(True, False), status=OK, attract=False)
    assert panel_pixels(img, v, "left").std() > 20


# -- texts -----------------------------------------------------------------------------------


def test_every_text_key_in_every_language() -> None:
    texts = Texts(TEXTS_DIR)
    en = texts.keys("en")
    assert {"face", "no_face", "step_in", "camera_unavailable", "paused_title"} <= en
    for lang in texts.languages:
        assert texts.keys(lang) == en, lang
        texts.load(lang)
        for key in en:
            fmt = {"pct": 50, "pts": 5, "set": "x", "count": 3, "n": 6, "lo": 1, "hi": 9}
            assert texts.t(key, **fmt).strip(), (lang, key)


def test_card_texts_are_translated() -> None:
    texts = Texts(TEXTS_DIR, "de")
    left = cards()["left"]
    assert texts.model_name(left) == "Standardmodell"
    assert texts.model_method(left).startswith("Basis-CNN")  # the method name: small print
    assert texts.group_label(left.display_groups()[0]) == "Frauen mit dunklerer Haut"
    unknown = left.model_copy(update={"name": "Custom model"})
    unknown.model_extra.pop("method_id")  # type: ignore[union-attr]
    assert texts.model_name(unknown) == "Custom model"  # falls back to the card


def test_right_model_is_called_debiased_only_when_measurably_so() -> None:
    """The plain name says what was done (rebalanced); the small print calls it debiased only
    when the card's report measured it, and says so when it did not."""
    texts = Texts(TEXTS_DIR, "en")
    right = cards()["right"]
    assert texts.model_name(right) == "Rebalanced model"
    assert texts.model_method(right).startswith("Debiased with DB-VAE")  # no verdict: as before
    measured = right.model_copy(update={"debiased": True})
    assert texts.model_method(measured).startswith("Debiased with DB-VAE")
    unproven = right.model_copy(update={"debiased": False})
    assert texts.model_name(unproven) == "Rebalanced model"
    assert "Not measurably fairer" in texts.model_method(unproven)
    assert "Debiased" not in texts.model_method(unproven)
    texts.load("fr")
    assert texts.model_method(unproven).startswith("Rééchantillonnage DB-VAE")


@pytest.mark.parametrize(
    ("lang", "name", "word"),
    [
        ("en", "Group-balanced model", "Not all fairness targets met"),
        ("de", "Gruppenbalanciertes Modell", "Nicht alle Fairnessziele"),
        ("fr", "Modèle équilibré par groupe", "pas tous atteints"),
    ],
)
def test_a_balanced_model_that_misses_a_target_is_not_called_debiased(
    lang: str, name: str, word: str
) -> None:
    """The shipped right-hand model since 2026-12-05 (night): balanced resampling that narrows
    the gap at some framings, not at all of them, so the small print names the method and says
    that not every target is met; with every target met it is called debiased."""
    texts = Texts(TEXTS_DIR, lang)
    right = cards()["right"]
    short = right.model_copy(
        update={"name": "Balanced resampling", "debiased": False, "method_id": "balanced"}
    )
    assert texts.model_name(short) == name
    assert word in texts.model_method(short)
    met = short.model_copy(update={"debiased": True})
    assert word not in texts.model_method(met)


def test_no_weakest_group_is_named_when_the_gap_is_noise() -> None:
    pygame.font.init()
    texts, cache = Texts(TEXTS_DIR, "en"), TextCache()
    left = cards()["left"]
    rect = pygame.Rect(0, 0, 600, 900)
    assert Panel(rect, left, texts, cache, 1.0).weakest() is not None
    assert left.display is not None
    noisy = left.model_copy(update={"display": left.display.model_copy(update={"gap_real": False})})
    assert Panel(rect, noisy, texts, cache, 1.0).weakest() is None
    real = left.model_copy(update={"display": left.display.model_copy(update={"gap_real": True})})
    weakest = Panel(rect, real, texts, cache, 1.0).weakest()
    assert weakest is not None and weakest.label == "Darker men"


def test_the_gap_shows_the_reports_interval_when_the_card_has_it() -> None:
    """A card with the report's bootstrap interval of its gap shows that interval; without it
    the panel works one out from the groups' Wilson intervals."""
    pygame.font.init()
    texts, cache = Texts(TEXTS_DIR, "en"), TextCache()
    left = cards()["left"]
    assert left.display is not None
    rect = pygame.Rect(0, 0, 600, 900)
    plain = left.model_copy(
        update={"display": left.display.model_copy(update={"gap_real": True, "gap_ci95": None})}
    )
    worked_out = Panel(rect, plain, texts, cache, 1.0).gap()
    assert worked_out is not None
    measured = left.model_copy(
        update={
            "display": left.display.model_copy(
                update={"gap_real": True, "gap_ci95": (0.053, 0.312)}
            )
        }
    )
    shown = Panel(rect, measured, texts, cache, 1.0).gap()
    assert shown == (worked_out[0], 5, 31)
    assert shown != worked_out


def _copy_texts(tmp_path: Path) -> None:
    for lang in ("en", "de", "fr"):
        (tmp_path / f"{lang}.yaml").write_text((TEXTS_DIR / f"{lang}.yaml").read_text())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("paused_title:", "paused_titel:", "paused_title"),
        ("  dbvae:\n    name:", "  dbvae:\n    nom:", "models.dbvae.name"),
        ("{pct} %", "{prozent} %", "prozent"),
    ],
)
def test_text_file_out_of_step_is_reported(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    _copy_texts(tmp_path)
    lang = "fr" if old == "paused_title:" or "name" in old else "de"
    path = tmp_path / f"{lang}.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(TextsError, match=re.escape(message)) as err:
        Texts(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_broken_or_missing_text_file_names_the_file(tmp_path: Path) -> None:
    _copy_texts(tmp_path)
    (tmp_path / "de.yaml").write_text("title: [unclosed\n")
    with pytest.raises(TextsError, match=r"de\.yaml"):
        Texts(tmp_path)
    (tmp_path / "de.yaml").unlink()
    with pytest.raises(TextsError, match=r"de\.yaml"):
        Texts(tmp_path)


def test_unknown_language_is_refused(view: KioskView) -> None:
    with pytest.raises(TextsError, match="xx"):
        view.language = "xx"
    assert view.language == "en"


# -- the loop --------------------------------------------------------------------------------


def _app(view: KioskView) -> DisplayApp:
    cfg = DisplayConfig(fullscreen=False, width=SIZE[0], height=SIZE[1], fps=240)
    return DisplayApp(cfg, lambda size: view)


def _key(key: int, mod: int = 0) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=key, mod=mod)


def test_keys_switch_language_and_only_the_staff_combo_quits(view: KioskView) -> None:
    app = _app(view)
    stop = threading.Event()
    langs: list[str] = []
    ticks = [0]

    def tick() -> FrameInputs:
        ticks[0] += 1
        if ticks[0] == 1:
            for e in (_key(pygame.K_2), _key(pygame.K_ESCAPE), _key(pygame.K_q, pygame.KMOD_CTRL)):
                pygame.event.post(e)
        if ticks[0] == 3:
            assert view.language == "de" and not stop.is_set()  # Esc, Ctrl+Q alone: no quit
            pygame.event.post(_key(pygame.K_3))
        if ticks[0] == 5:
            assert view.language == "fr" and not stop.is_set()
            pygame.event.post(_key(pygame.K_q, pygame.KMOD_CTRL | pygame.KMOD_SHIFT))
        return IDLE

    app.run(tick, langs.append, stop, max_frames=50)
    assert stop.is_set()
    assert ticks[0] == 6  # quit right after the staff combo
    assert langs == ["de", "fr"]
    assert not pygame.display.get_init()  # pygame.quit() ran


def test_a_visitors_language_key_leaves_no_line_in_the_journal(
    view: KioskView, caplog: pytest.LogCaptureFixture
) -> None:
    # Privacy: "language: de" at 14:03:12 in the journal said when someone stood at the exhibit
    # and what they chose. Staff's switches stay at info level.
    app = _app(view)
    with caplog.at_level(logging.INFO, logger="installation.display.app"):
        app.handle_key("2", ctrl=False, shift=False, stop_event=threading.Event())
        assert app.language == "de"
        app.set_language("en", visit=True)  # back to the default when the visit ended
        assert caplog.records == []
        app.set_language("fr")  # a staff command
    assert [r.getMessage() for r in caplog.records] == ["language: fr"]


def test_loop_exits_on_stop_event_and_records_latency(view: KioskView) -> None:
    app = _app(view)
    stop = threading.Event()
    frame, res = scene(), result(True, True)
    seen: list[tuple[float, float | None]] = []
    n = [0]

    def tick() -> FrameInputs:
        n[0] += 1
        if n[0] == 10:
            stop.set()  # as another thread (the kiosk's signal handler) would
        t = time.monotonic() - 0.01 if n[0] % 2 else None  # every other frame is new
        return FrameInputs(frame, res, OK, attract=False, frame_t=t)

    app.run(tick, lambda lang: None, stop, on_frame=lambda r, lat: seen.append((r, lat)))
    assert app.frames == 10 and len(app.render_ms) == 10 and len(seen) == 10
    assert len(app.latency_ms) == 5 and min(app.latency_ms) >= 10
    assert not pygame.display.get_init()


def test_loop_redraws_only_when_something_changed(view: KioskView) -> None:
    """A still screen is not drawn again at the display rate: only a new camera frame, result,
    state or language redraws it (and a heartbeat once a second)."""
    app = _app(view)
    stop = threading.Event()
    frame, res = scene(), result(True, True)
    same = FrameInputs(frame, res, OK, attract=False, frame_t=1.0)
    new = FrameInputs(frame.copy(), res, OK, attract=False, frame_t=2.0)  # the next camera frame
    n = [0]

    def tick() -> FrameInputs:
        n[0] += 1
        if n[0] == 10:
            app.set_language("de")  # a key: the same picture in another language
        return same if n[0] < 20 else new

    app.run(tick, lambda lang: None, stop, max_frames=25)
    assert app.frames == 25
    assert app.redraws == 3  # the first screen, the language change, the new camera frame
    assert len(app.render_ms) == 3


def test_loop_calls_pygame_quit_when_tick_fails(view: KioskView) -> None:
    app = _app(view)

    def tick() -> FrameInputs:
        raise RuntimeError("pipeline gone")

    with pytest.raises(RuntimeError):
        app.run(tick, lambda lang: None, threading.Event())
    assert not pygame.display.get_init()


# -- the README's screenshots ---------------------------------------------------------------


def test_readme_screenshots_from_the_shipped_models(tmp_path: Path) -> None:
    from installation.tools.screenshots import LANGS, TEXTS_FILE, main

    written = main(tmp_path)  # raises if a framing no longer splits the models as named
    screens = ("found_both", "found_one", "missed_both", "attract", "camera_unavailable", "paused")
    assert {p.name for p in written} == {f"{s}-{lang}.png" for s in screens for lang in LANGS}
    images = {}
    for path in written:
        img = pygame.image.load(str(path))
        assert img.get_size() == (1280, 720)
        images[path.name] = pygame.surfarray.array3d(img)
    for lang in LANGS:  # every screen differs from every other, in every language
        shots = [images[f"{s}-{lang}.png"] for s in screens]
        for i in range(len(shots)):
            for j in range(i + 1, len(shots)):
                assert not np.array_equal(shots[i], shots[j]), (lang, screens[i], screens[j])
    # The README shows what the code draws now: the committed screenshots are regenerated
    # (`make assets`) whenever a text, a layout or a model changes what a screen says. Their
    # texts, line by line as wrapped, must match exactly (a "79%" that became "79 %", a lone
    # "?" on its own line); their pixels up to font rasterisation.
    new_texts = (tmp_path / TEXTS_FILE).read_text(encoding="utf-8")
    assert new_texts.count("## ") == len(written)
    # The left panel's first bar is the shipped baseline card's first group, as each language
    # writes a percentage ("83%" in English, "83 %" in German and French).
    card = load_card(MODELS_DIR / "baseline" / "card.json")
    pct = round(100 * card.display_groups()[0].shown)
    sections = dict(part.split("\n", 1) for part in new_texts.split("## ")[1:])
    assert f"label 31px: {pct}%" in sections["found_both-en.png"]
    for lang in ("de", "fr"):
        assert f"label 31px: {pct} %" in sections[f"found_both-{lang}.png"]
    committed_texts = (SCREENSHOTS_DIR / TEXTS_FILE).read_text(encoding="utf-8")
    assert new_texts == committed_texts, "assets/screenshots are stale: run `make assets`"
    for name, img in images.items():
        committed = SCREENSHOTS_DIR / name
        ref = pygame.surfarray.array3d(pygame.image.load(str(committed)))
        assert_looks_the_same(name, ref.swapaxes(0, 1), img.swapaxes(0, 1), committed)


def test_a_new_result_is_drawn_at_once_not_at_the_next_clock_turn(view: KioskView) -> None:
    """At 2 turns a second, results that come every 50 ms (and set `news`, as the pipeline
    does) are each drawn: the loop turns on news, not only on its clock."""
    cfg = DisplayConfig(fullscreen=False, width=SIZE[0], height=SIZE[1], fps=2)
    app = DisplayApp(cfg, lambda size: view)
    stop, news = threading.Event(), threading.Event()
    frame, res = scene(), result(True, True)
    latest = [FrameInputs(frame, res, OK, attract=False, frame_t=0.0)]

    def feed() -> None:
        for i in range(1, 21):  # one second of results at 20 a second
            time.sleep(0.05)
            latest[0] = FrameInputs(frame.copy(), res, OK, attract=False, frame_t=float(i))
            news.set()
        stop.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    app.run(lambda: latest[0], lambda lang: None, stop, news=news)
    feeder.join()
    # The clock alone would turn about 3 times in that second; news turns it for each result.
    assert app.redraws >= 15, app.redraws


def test_the_screen_rate_counts_camera_frames_drawn_not_loop_turns(view: KioskView) -> None:
    """`shown_fps` is camera frames drawn per second of camera time: a 10 fps feed drawn by a
    loop turning 60 times a second is a 10 fps screen, and a frame drawn again (heartbeat, a new
    verdict) is not a new one."""
    cfg = DisplayConfig(fullscreen=False, width=SIZE[0], height=SIZE[1], fps=60)
    app = DisplayApp(cfg, lambda size: view)
    stop = threading.Event()
    frame, res = scene(), result(True, True)
    t0 = time.monotonic()
    latest = [FrameInputs(frame, res, OK, attract=False, frame_t=t0)]

    def feed() -> None:
        for i in range(1, 11):  # one second of frames at 10 a second, each a new picture
            time.sleep(0.05)
            latest[0] = FrameInputs(frame.copy(), res, OK, attract=False, frame_t=t0 + 0.1 * i)
            time.sleep(0.05)
            # The same camera frame again with another verdict: drawn, but not a new frame.
            latest[0] = FrameInputs(
                latest[0].frame, result(False, True), OK, False, frame_t=t0 + 0.1 * i
            )
        stop.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    app.run(lambda: latest[0], lambda lang: None, stop)
    feeder.join()
    assert app.frames > 30  # the loop turned at its own rate
    assert app.redraws >= 15  # new frames and new verdicts were drawn
    assert 8 <= app.shown <= 11, app.shown
    assert 9.0 <= app.shown_fps <= 11.0, app.shown_fps


def test_a_smaller_frame_or_a_box_past_the_image_leaves_no_stale_pixels(view: KioskView) -> None:
    """The mirror fills its box only when the image lands somewhere new: after a frame of
    another size, and after a guide box that reached past the image, every pixel of the box is
    what a fresh draw of that state gives."""
    from installation.display.palette import BG

    surface = pygame.Surface(view.size)
    res = result(True, True)
    wide, narrow = scene(), scene()[:, 160:480].copy()  # 640x480, then 320x480
    beyond = Region(120, -60, 400, 400)  # a detector box partly outside the 320x480 frame

    def draw(frame: np.ndarray, r: FrameResult) -> np.ndarray:
        view.draw(surface, frame=frame, result=r, status=OK, attract=False)
        return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()

    def fresh(frame: np.ndarray, r: FrameResult) -> np.ndarray:
        return render(KioskView(SIZE, cards()), frame=frame, result=r, status=OK, attract=False)

    m = view.video_rect
    box = (slice(m.top, m.bottom), slice(m.left, m.right))
    draw(wide, res)
    shown = draw(narrow, res)
    assert np.array_equal(shown[box], fresh(narrow, res)[box])
    assert (shown[box] == BG).all(axis=-1).any()  # the bands beside the narrow image
    # A box reaching past the narrow image's side paints into the band beside it...
    spilled = draw(narrow, dataclasses.replace(res, region=beyond))
    assert not np.array_equal(spilled[box], shown[box])
    # ... and nothing of it stays once the next frame comes with the usual box.
    again = draw(narrow.copy(), res)
    assert np.array_equal(again[box], fresh(narrow, res)[box])
    # Nothing of a box is ever drawn outside the mirror's own box (the header stays as it was).
    outside = np.ones(shown.shape[:2], bool)
    outside[box] = False
    assert np.array_equal(spilled[outside], shown[outside])


@pytest.mark.parametrize(("gl", "hint"), [(False, "0"), (True, "1")])
def test_the_window_is_drawn_through_opengl_only_when_configured(
    view: KioskView, monkeypatch: pytest.MonkeyPatch, gl: bool, hint: str
) -> None:
    """SDL reads SDL_FRAMEBUFFER_ACCELERATION when the window's surface is made: the display
    sets it from `display.gl_framebuffer` before that, whatever the environment said (a
    software OpenGL drew the 1080p kiosk for 75-85 % of a core; `bench` measures it on Xvfb)."""
    monkeypatch.setenv("SDL_FRAMEBUFFER_ACCELERATION", "0" if gl else "1")  # the other one
    cfg = DisplayConfig(fullscreen=False, width=SIZE[0], height=SIZE[1], gl_framebuffer=gl)
    app = DisplayApp(cfg, lambda size: view)
    seen: list[str | None] = []

    def tick() -> FrameInputs:
        seen.append(os.environ.get("SDL_FRAMEBUFFER_ACCELERATION"))
        return FrameInputs(scene(), result(True, True), OK, attract=False, frame_t=0.0)

    app.run(tick, lambda lang: None, threading.Event(), max_frames=2)
    assert seen and set(seen) == {hint}
