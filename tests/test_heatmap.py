"""Where each model looks: occlusion maps, the heatmap thread, and how the screen shows them."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.heatmap import (
    GRID,
    PATCH,
    STRIDE,
    Heatmaps,
    HeatmapWorker,
    LogitFn,
    heat_image,
    occlusion_map,
    one_by_one,
)
from installation.inference import load_classifier
from installation.paths import MODELS_DIR
from installation.types import FrameResult, ImageU8, Prediction, Region
from tests.waiting import wait_until


def bright_spot_logit(crop: ImageU8) -> float:
    """A 'model' that looks only at the red channel of the square at rows/cols 32-48."""
    return float(crop[32:48, 32:48, 0].mean()) / 20.0


def test_the_map_lights_up_where_the_model_looks() -> None:
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[32:48, 32:48, 0] = 255
    heat = occlusion_map(one_by_one(bright_spot_logit), crop)
    assert heat.shape == (GRID, GRID) == (4, 4)
    assert heat.dtype == np.float32 and (heat >= 0).all()
    hot = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert hot == (2, 2)  # the patch at 32-48 exactly covers the spot
    cold = heat.copy()
    cold[2, 2] = 0
    assert cold.max() == 0  # the squares tile the crop: covering any other changes nothing
    img = heat_image(heat, 190)
    assert img.shape == (190, 190) and img.min() >= 0 and img.max() <= 1
    assert img[119, 119] > 0.5 > img[30, 30]  # the spot's centre on a 190-pixel overlay


def test_bad_crop_is_refused() -> None:
    with pytest.raises(ValueError, match="square crop"):
        occlusion_map(one_by_one(bright_spot_logit), np.zeros((64, 32, 3), np.uint8))


def _unsure_crop(logit: object) -> ImageU8:
    """The astronaut (scikit-image, public domain) at the first framing, tight to loose, whose
    logit the model's clip at +-8 does not flatten (a crop judged with full certainty either
    way barely moves under one patch)."""
    from skimage import data

    photo = data.astronaut()  # RGB [512, 512, 3]
    for half in range(60, 256, 12):
        cy, cx = 130, 230  # about the face's centre
        y0, x0 = max(cy - half, 0), max(cx - half, 0)
        crop = cv2.resize(
            photo[y0 : cy + half, x0 : cx + half], (64, 64), interpolation=cv2.INTER_AREA
        )
        if abs(logit(crop)) < 7.5:  # type: ignore[operator]
            return crop
    pytest.fail("every framing of the astronaut is judged at the clip: pick another photo")


@pytest.mark.parametrize("folder", ["baseline", "debiased"])
def test_shipped_models_maps_agree_with_covering_the_patch(folder: str) -> None:
    """Through a real int8 model: each cell is how far the logit moves when its patch is
    covered, so covering the hottest patch by hand moves it by the same amount."""
    model = load_classifier(MODELS_DIR / folder, accelerator="cpu")
    crop = _unsure_crop(model.logit)
    # The map is the view's that decided the crop's score (the crop, or its zoomed centre when
    # the card sets a zoom and that view scored higher).
    zoomed = model.zoom_decides(crop)

    def logit(c: ImageU8) -> float:
        return model.view_logit(c, zoomed)

    heat = occlusion_map(model.occluded_logits, crop)
    # The in-place fast path reads the very logits that covering each copy of the crop does
    # (to float32 rounding: with flip_average each is the mean of two logits rounded apart).
    np.testing.assert_allclose(heat, occlusion_map(one_by_one(logit), crop), rtol=0, atol=1e-6)
    assert np.isfinite(heat).all() and heat.max() > 0 and heat.min() >= 0
    i, j = np.unravel_index(int(np.argmax(heat)), heat.shape)
    covered = crop.copy()
    fill = crop.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    y, x = STRIDE * i, STRIDE * j
    covered[y : y + PATCH, x : x + PATCH] = fill
    assert abs(logit(crop) - logit(covered)) == pytest.approx(float(heat[i, j]), abs=1e-4)


def _result(index: int, present: bool, crop: ImageU8 | None) -> FrameResult:
    pred = Prediction(0.5, present, 0.0, 0.2)
    return FrameResult(
        frame_index=index,
        t_capture=float(index),
        t_done=float(index),
        region=Region(0, 0, 64, 64),
        predictions={"left": pred, "right": pred},
        crop=crop,
        occupied=present,
    )


class Feed:
    def __init__(self) -> None:
        self.result: FrameResult | None = None

    def __call__(self) -> FrameResult | None:
        return self.result


def test_worker_measures_each_new_crop_once_and_forgets_a_visitor_who_left() -> None:
    calls = {"left": 0, "right": 0}

    def model(side: str) -> LogitFn:
        def fn(c: ImageU8) -> float:
            calls[side] += 1
            return bright_spot_logit(c)

        return fn

    feed = Feed()
    worker = HeatmapWorker(
        {"left": one_by_one(model("left")), "right": one_by_one(model("right"))},
        feed,
        threading.Event(),
    )
    assert worker.step() is None  # nothing judged yet
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[32:48, 32:48, 0] = 255
    feed.result = _result(1, True, crop)
    hm = worker.step()
    assert hm is not None and set(hm.maps) == {"left", "right"} and hm.frame_index == 1
    n = 1 + GRID * GRID  # the crop, then each occlusion, per model
    assert calls == {"left": n, "right": n}
    assert worker.step() is hm and calls["left"] == n  # the same frame is not measured again
    feed.result = _result(2, False, crop)  # the box is empty: the maps go with the visitor
    assert worker.step() is None and worker.latest() is None
    feed.result = _result(3, True, None)  # replay keeps no crop: nothing to measure
    assert worker.step() is None


def test_worker_thread_runs_until_the_stop_event_and_survives_a_failing_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    feed = Feed()
    n = [0]

    def flaky(c: ImageU8) -> float:
        n[0] += 1
        if n[0] == 1:
            raise RuntimeError("interpreter hiccup")
        return bright_spot_logit(c)

    index = [0]

    def fresh() -> FrameResult:
        index[0] += 1  # a new frame each time, like a live camera
        return _result(index[0], True, np.full((64, 64, 3), 90, np.uint8))

    worker = HeatmapWorker(
        {"left": one_by_one(flaky), "right": one_by_one(bright_spot_logit)}, fresh, stop, rate_hz=50
    )
    worker.start()
    wait_until(lambda: worker.updates >= 3, 10)
    stop.set()
    worker.join(timeout=5)
    assert worker.updates >= 3
    assert not worker._thread.is_alive()
    assert "heatmap update failed" in caplog.text
    with pytest.raises(ValueError, match="heatmap_hz"):
        HeatmapWorker({}, feed, stop, rate_hz=0)


def test_a_model_that_always_fails_is_logged_once_a_minute_and_counted_for_staff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It logged a traceback at every update (5 a second) for as long as it lasted.
    stop = threading.Event()
    index = [0]

    def fresh() -> FrameResult:
        index[0] += 1
        return _result(index[0], True, np.full((64, 64, 3), 90, np.uint8))

    def broken(c: ImageU8) -> float:
        raise RuntimeError("interpreter gone")

    errors: list[str] = []
    worker = HeatmapWorker(
        {"left": one_by_one(broken)}, fresh, stop, rate_hz=100, count_error=errors.append
    )
    with caplog.at_level(logging.ERROR, logger="installation.heatmap"):
        worker.start()
        assert wait_until(lambda: len(errors) >= 20, 10)
        stop.set()
        worker.join(timeout=5)
    assert set(errors) == {"heatmap"} and worker.faults.total == len(errors)
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None


def test_heatmaps_are_never_in_the_stats(tmp_path: Path) -> None:
    """The maps and the crop live in the display thread's memory only: the stats payload has no
    field that could carry them."""
    from installation.stats import StatsAggregator

    agg = StatsAggregator(k_min_sessions=1, presence_min_s=0.0, presence_gap_s=0.5)
    crop = np.full((64, 64, 3), 77, np.uint8)
    for i in range(20):
        agg.on_result(_result(i, True, crop))
    text = agg.snapshot().to_json()
    assert "crop" not in text and "heat" not in text and "77, 77" not in text


def test_heatmaps_dataclass_holds_what_the_view_needs() -> None:
    hm = Heatmaps(
        1, 0.0, {"left": np.zeros((GRID, GRID), np.float32)}, np.zeros((64, 64, 3), np.uint8)
    )
    assert hm.maps["left"].shape == (GRID, GRID)


def test_the_worker_says_once_what_its_maps_cost_on_this_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each model call burns 0.5 ms of this thread's CPU: an update (2 models x 17 crops) costs
    at least 17 ms, and the log line says so once, with its share of a core at the rate."""
    from installation.heatmap import COST_SAMPLES

    def costly(c: ImageU8) -> float:
        end = time.thread_time() + 0.0005
        while time.thread_time() < end:
            pass
        return bright_spot_logit(c)

    feed = Feed()
    worker = HeatmapWorker(
        {"left": one_by_one(costly), "right": one_by_one(costly)}, feed, threading.Event(), 5.0
    )
    crop = np.full((64, 64, 3), 90, np.uint8)
    with caplog.at_level(logging.INFO, logger="installation.heatmap"):
        for i in range(COST_SAMPLES + 5):
            feed.result = _result(i + 1, True, crop)
            assert worker.step() is not None
            assert (worker.cost_ms is None) == (i + 1 < COST_SAMPLES)
    lines = [r.getMessage() for r in caplog.records if "one update takes" in r.getMessage()]
    assert len(lines) == 1
    cost = worker.cost_ms
    assert cost is not None and cost >= 2 * (1 + GRID * GRID) * 0.5
    assert f"takes {cost:.1f} ms of CPU here" in lines[0]
    assert f"about {cost * 5.0 / 10:.0f} % of a core" in lines[0]
    assert "at 5.0 updates a second" in lines[0]
