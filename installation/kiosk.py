"""`bias-mirror run` and `bias-mirror demo`: wires capture, pipeline, display and stats.

Threads: capture (newest frame only) -> pipeline (judges it) -> main thread (Pygame display).
The stats publisher runs its own network thread; the render loop never waits on it. Every loop
waits on one stop event; shutdown is ordered: display, pipeline, capture, publisher.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from installation import paths
from installation.affinity import (
    allowed_cores,
    frame_core,
    opencv_on_calling_threads,
    pin,
    unpin_current,
)
from installation.config import Config
from installation.display import DisplayApp, FrameInputs, KioskView
from installation.heatmap import HeatmapWorker
from installation.language import LanguageState
from installation.pipeline import PipelineThread
from installation.runtime import (
    EXIT_INTERNAL,
    EXIT_OK,
    USER_ERRORS,
    Runtime,
    build_runtime,
    load_heatmap_models,
    report_user_error,
)
from installation.sources import LatestFrameGrabber, open_source
from installation.stats import StatsAggregator
from installation.types import CAMERA_WORDS, LANGUAGES, SourceState, SourceStatus
from installation.watchdog import Notifier, Watchdog

logger = logging.getLogger(__name__)

DEMO_CONFIG = paths.ASSETS_DIR / "config" / "demo.yaml"
HEADLESS_DRIVERS = ("offscreen", "dummy")
# The screen shows the frame the pipeline took last while it is at most this much older than the
# newest one (two frames at 30 fps); beyond that, the live frame.
SYNC_S = 0.07


class KioskControl:
    """Language and pause state. Commands arrive from MQTT threads, are applied on the main loop.

    `keep_language` saves a staff language as the default (LanguageState.set_by_staff): it runs
    on the MQTT thread, before the answer, so the answer says whether it survives a restart."""

    def __init__(
        self, language: str, keep_language: Callable[[str], str | None] | None = None
    ) -> None:
        self.language = language
        self._keep_language = keep_language
        self.paused = threading.Event()
        self._pending: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def on_command(self, name: str, value: object) -> tuple[bool, str]:
        """Called from the MQTT thread with an already validated command."""
        if name == "language":
            if value not in LANGUAGES:
                return False, f"unknown language {value!r}; use one of {', '.join(LANGUAGES)}"
            # The state staff see says the new language at once; the screen switches on its
            # next frame (the display belongs to the main loop).
            lang = str(value)
            problem = self._keep_language(lang) if self._keep_language is not None else None
            self.language = lang
            self._pending.put(("language", lang))
            if problem is not None:
                # Shown whole within cmd/result's 200 characters; the journal has the fix.
                return True, f"language set to {lang} until the next restart: not saved, {problem}"
            return True, f"language set to {lang}"
        if name == "pause":
            self.paused.set()
            return True, "paused"
        if name == "resume":
            self.paused.clear()
            return True, "resumed"
        return False, f"unknown command {name!r}; use language, pause or resume"

    def drain(self) -> list[tuple[str, Any]]:
        items = []
        while True:
            try:
                items.append(self._pending.get_nowait())
            except queue.Empty:
                return items


# SIGTERM (systemd stop), SIGINT (Ctrl-C) and SIGHUP (the terminal closed, `kill -HUP`) all
# shut the kiosk down in order: offline published, threads joined. Python's default for SIGHUP
# was to die on the spot.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _install_signal_handlers(
    stop: threading.Event, received: list[int] | None = None
) -> dict[int, Any]:
    """STOP_SIGNALS set `stop` (and are appended to `received`): the kiosk then shuts down in
    order. Returns the handlers they replace, for `_restore_signal_handlers`."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s: stopping", signal.Signals(signum).name)
        if received is not None:
            received.append(signum)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}  # signal.signal only works in the main thread
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


def exit_code_for(signals: list[int]) -> int:
    """0 when asked to stop by systemd (SIGTERM) or nothing; 128 + N for another signal (130
    for Ctrl-C, as `replay`), so a script sees that the kiosk was interrupted."""
    if not signals or signals[0] == signal.SIGTERM:
        return EXIT_OK
    return 128 + signals[0]


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    # The kiosk can run inside another program (tests, a launcher): once it has stopped,
    # Ctrl-C must again do what it did before, not set a stop event nobody waits on.
    for sig, old in previous.items():
        signal.signal(sig, old)


def _state(rt: Runtime, control: KioskControl, camera: str = "ok") -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {
        side: {"name": c.card.name, "version": c.card.version, "sha256": c.card.sha256}
        for side, c in rt.classifiers.items()
    }
    for side, message in rt.failed.items():
        # Staff learn which bundle is broken and why (paths and card fields, no visitor data).
        models[side] = {"error": message[:300]}
    return {
        "language": control.language,
        "paused": control.paused.is_set(),
        # "lost": the source delivers nothing and is being reopened (unplugged, stalled);
        # "ended": a recording without `loop` is over (types.CAMERA_WORDS).
        "camera": camera,
        # "failed": a model bundle did not load (which one and why: `models`); the screen shows
        # that side's notice and the kiosk runs on the other.
        "bundles": "failed" if rt.failed else "ok",
        "backend": rt.backend,
        "models": models,
    }


def run_with_runtime(
    rt: Runtime, stop: threading.Event, max_frames: int | None = None
) -> DisplayApp:
    """Run the kiosk until `stop` is set (or max_frames rendered). Returns the display app."""
    cfg: Config = rt.config
    src = cfg.source
    grabber = LatestFrameGrabber(
        lambda: open_source(
            src.uri, width=src.width, height=src.height, fps=src.fps, loop=src.loop, realtime=True
        ),
        reopen_min_s=src.reopen_min_s,
        reopen_max_s=src.reopen_max_s,
        stop_event=stop,
    )
    languages = LanguageState(cfg.display.language, paths.state_dir())
    control = KioskControl(languages.default, languages.set_by_staff)
    stats = StatsAggregator(
        k_min_sessions=cfg.privacy.k_min_sessions,
        presence_min_s=cfg.region.presence_min_s,
        presence_gap_s=cfg.region.presence_gap_s,
    )
    stats.set_backend(rt.backend)
    for _side in rt.failed:
        stats.count_error("model_load")  # staff see it in stats.errors; the screen says so too
    camera = ["ok"]  # the retained state's word for the source (types.CAMERA_WORDS)
    rt.pipeline.subscribe(stats.on_result)
    news = threading.Event()  # a new result: the display turns at once to show it
    worker = PipelineThread(
        rt.pipeline,
        grabber,
        stop,
        paused=control.paused,
        news=news,
        judge_fps=cfg.models.judge_fps,
        count_error=stats.count_error,  # staff see errors["pipeline"]
    )
    heatmaps = None
    if cfg.display.heatmaps:
        heatmaps = HeatmapWorker(
            load_heatmap_models(cfg, rt.classifiers),
            worker.latest,
            stop,
            rate_hz=cfg.display.heatmap_hz,
            count_error=stats.count_error,  # errors["heatmap"]
        )

    publisher = None
    if cfg.mqtt.enabled:
        from installation.mqtt import MqttPublisher

        publisher = MqttPublisher(
            cfg.mqtt,
            cfg.installation_id,
            stats,
            state=lambda: _state(rt, control, camera[0]),
            on_command=control.on_command,
            privacy=cfg.privacy,
        )

    cards = {side: c.card for side, c in rt.classifiers.items()}
    app = DisplayApp(
        cfg.display.model_copy(update={"language": languages.default}),
        lambda size: KioskView(size, cards, language=control.language, mirror=cfg.display.mirror),
    )
    watchdog = Watchdog(Notifier(), stall_s=src.stall_s)
    last_present = [-1e9]
    last_status: list[SourceStatus | None] = [None]

    def tick() -> FrameInputs:
        # Staff languages, already saved and in `control.language` (the MQTT thread did both):
        # the screen takes the last of those that came since the last frame, once.
        staff_languages = [value for name, value in control.drain() if name == "language"]
        if staff_languages:
            app.set_language(staff_languages[-1])
        now = time.monotonic()
        result = worker.latest()
        frame = grabber.latest()
        if result is not None and result.present:
            last_present[0] = max(last_present[0], result.t_capture)
        maps = heatmaps.latest() if heatmaps is not None else None
        if maps is not None and (result is None or result.t_capture - maps.t_capture > 1.0):
            maps = None  # stale: measured on a crop more than a second old
        attract = now - last_present[0] > cfg.display.attract_after_s
        back_to = languages.update(attract)
        if back_to is not None:
            # The visitor left: a language they chose with the keys was for their visit only.
            app.set_language(back_to, visit=True)
        status = grabber.status()
        paused = control.paused.is_set()
        watchdog.tick(
            source_ok=status.state == SourceState.OK,
            frame_t=frame.t if frame is not None else None,
            judged_t=result.t_done if result is not None else None,
            paused=paused,
            status=f"source {status.state.name.lower()}"
            + (", paused" if paused else "")
            + "".join(f", models.{side} failed" for side in rt.failed)
            + (f", {problem}" if publisher is not None and (problem := publisher.problem) else ""),
        )
        if status != last_status[0]:
            stats.on_source_status(status)
            last_status[0] = status
            word = CAMERA_WORDS[status.state]
            if word != camera[0]:
                camera[0] = word
                if word == "lost":
                    stats.count_error("camera_lost")  # staff see it in stats.errors by kind
                logger.log(
                    logging.INFO if word == "ok" else logging.WARNING,
                    "camera %s: %s",
                    "back" if word == "ok" else word,
                    status.message,
                )
                if publisher is not None:
                    publisher.publish_state()  # retained state: camera ok | lost | ended
        shown, shown_t = (frame.image, frame.t) if frame is not None else (None, None)
        handled = worker.shown()
        if frame is not None and handled is not None and frame.t - handled.t <= SYNC_S:
            # The frame the pipeline took last (judged, or passed on between judged ones), a
            # millisecond or two behind the newest: picture, box and verdicts belong together,
            # and each camera frame is drawn once, not once on arrival and again when its
            # verdicts come. A paused or lagging pipeline shows the live one.
            shown, shown_t = handled.image, handled.t
        return FrameInputs(
            frame=shown,
            result=result,
            status=status,
            attract=attract,
            paused=paused,
            notice=None,
            frame_t=shown_t,
            heatmaps=maps,
        )

    def on_language(lang: str) -> None:
        control.language = lang
        if publisher is not None:
            publisher.publish_state()

    grabber.start()
    worker.start()
    if heatmaps is not None:
        heatmaps.start()
    if publisher is not None:
        publisher.start()
    # Capture, judging and drawing share one core (installation.affinity); the heatmap worker
    # and the publisher, started above, keep every core.
    cores = allowed_cores()
    pinned = pin([grabber, worker, threading.current_thread()], frame_core(cores))
    try:
        with opencv_on_calling_threads():
            app.run(
                tick, on_language, stop, max_frames=max_frames, on_frame=stats.on_render, news=news
            )
    finally:
        if threading.current_thread() in pinned:
            unpin_current(cores)
        # Ordered shutdown: the display is gone; stop judging, then capturing, then say offline.
        stop.set()
        if heatmaps is not None:
            heatmaps.join(timeout=5)
            app.heatmap_updates = heatmaps.updates
        worker.join(timeout=5)
        rt.pipeline.close()  # its second model's thread, once judging has stopped
        # The runtime outlives this run (the bench runs the kiosk again on it): its pipeline
        # must not keep feeding, and holding, this run's aggregator.
        rt.pipeline.unsubscribe(stats.on_result)
        grabber.stop()
        if publisher is not None:
            publisher.stop()
    return app


def run_kiosk(config_path: Path | None) -> int:
    stop = threading.Event()
    received: list[int] = []
    previous = _install_signal_handlers(stop, received)
    try:
        try:
            # One broken bundle leaves the exhibit running on the other (with a notice).
            rt = build_runtime(config_path, keep_frame=True, allow_one_failed=True)
        except USER_ERRORS as exc:
            return report_user_error(exc)
        reason = display_available()
        if reason is not None:
            print(
                f"error: no display ({reason}). Fix: run on the kiosk's console (KMS/DRM) or in "
                "an X session (DISPLAY=:0); to judge a recording without a screen use "
                "`bias-mirror replay`.",
                file=sys.stderr,
            )
            # Not EXIT_USER: at boot the display may come up after the kiosk, so systemd
            # must keep retrying.
            return EXIT_INTERNAL
        run_with_runtime(rt, stop)
        return exit_code_for(received)
    finally:
        _restore_signal_handlers(previous)


def display_available() -> str | None:
    """None when Pygame can open a screen, else the reason it cannot."""
    import pygame

    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
    except pygame.error as exc:
        return str(exc)
    finally:
        pygame.display.quit()
    # SDL falls back to its invisible 'offscreen' driver when there is no screen; that only
    # counts as a display when asked for explicitly (tests, benchmarks).
    if driver in HEADLESS_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
        return f"only the headless SDL driver '{driver}' is available"
    return None


def run_demo(max_frames: int | None = None) -> int:
    """The kiosk on the shipped models and the generated demo clip; headless replay without a
    screen."""
    if max_frames is not None and max_frames < 1:
        print("error: --max-frames must be at least 1", file=sys.stderr)
        return 2
    reason = display_available()
    if reason is None:
        return run_kiosk(DEMO_CONFIG) if max_frames is None else _demo_frames(max_frames)
    print(
        f"No display available ({reason}). Running the demo headless instead: "
        "`bias-mirror replay demo` over the generated demo clip.\n"
        "To see the kiosk, run `make demo` on a machine with a screen (or under Xvfb).",
        file=sys.stderr,
    )
    from installation.replay import replay_main

    report = paths.cache_dir() / "demo-replay.jsonl"
    return replay_main("demo", report, DEMO_CONFIG, max_frames)


def _demo_frames(max_frames: int) -> int:
    stop = threading.Event()
    try:
        rt = build_runtime(DEMO_CONFIG, keep_frame=True)
    except USER_ERRORS as exc:
        return report_user_error(exc)
    run_with_runtime(rt, stop, max_frames=max_frames)
    return 0
