"""Both models on one crop at once: one side's classifier judged on a thread of its own.

The pipeline judges each crop with two int8 models, one after the other on its own thread. On a
machine with two or more cores the second model can run on another core while the first runs
on the pipeline's: LiteRT releases Python's lock while it invokes, and each classifier has its
own interpreter, so the two never share one (an interpreter is not thread-safe; this thread is
the only one that ever invokes the side it runs). `bias-mirror bench` on a 2-core x86 VM with
AVX2 and no AVX-512 (2026-12-08), the shipped pair: 1.10 ms one after the other, 0.68 ms at
once for 1.26 ms of CPU time (the hand-over costs about 0.1 ms); `replay` of the demo clip
597 against 470 frames a second (medians of 20 alternating pairs of runs, 1.28 times as fast
in the median pair). A frame's verdicts come sooner; the kiosk's CPU share barely moves (it
judges 10 frames a second).

A thread that runs a model must not be pinned to the core the kiosk's frame threads share
(installation.affinity): on Linux a new thread inherits its creator's cores, so this one takes
back the cores the process had when it was made.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from installation.affinity import allowed_cores, core_count, unpin_current
from installation.types import Prediction

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, crop_rgb: np.ndarray) -> Prediction: ...


_STOP = None  # the job that ends the thread
THREAD_PREFIX = "judge-"  # + the side: the bench counts these threads' CPU as the pipeline's


_Jobs = queue.SimpleQueue[np.ndarray | None]
_Done = queue.SimpleQueue[tuple[Prediction | None, BaseException | None]]


class JudgeThread:
    """Runs `judge.predict` on a daemon thread of its own: `submit(crop)`, then `wait()` for
    its Prediction (or the exception predict raised, raised again in the waiting thread).
    One job at a time: submit, wait, submit, wait. The thread starts with `start` or the first
    submit, and again after `close` (the bench runs the kiosk's pipeline more than once), each
    time with queues of its own, so nothing a thread left behind reaches the next one."""

    def __init__(self, judge: Predictor, name: str) -> None:
        self._judge = judge
        self._name = name
        # Taken where the pipeline is made, before the kiosk pins any thread to one core.
        self._cores = allowed_cores()
        self._jobs: _Jobs = queue.SimpleQueue()
        self._done: _Done = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pending = False

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread now, if it is not running (`submit` starts it otherwise). Raises
        RuntimeError while a stopped thread is still inside predict: a second thread must never
        invoke the same interpreter (it is not thread-safe)."""
        if self.alive:
            if self._stopping:
                raise RuntimeError(
                    f"{self._name}: the last thread has not ended (a model still judging); "
                    "its interpreter cannot be shared with a new one"
                )
            return
        self._jobs, self._done = queue.SimpleQueue(), queue.SimpleQueue()
        self._stopping = self._pending = False
        self._thread = threading.Thread(
            target=self._run, args=(self._jobs, self._done), name=self._name, daemon=True
        )
        self._thread.start()

    def submit(self, crop_rgb: np.ndarray) -> None:
        """Start judging `crop_rgb` (uint8 RGB [S, S, 3], not changed until `wait` returns)."""
        if self._pending:
            raise RuntimeError(f"{self._name}: submit() again before wait()")
        self.start()
        self._pending = True
        self._jobs.put(crop_rgb)

    def wait(self) -> Prediction:
        """The submitted crop's Prediction; re-raises what predict raised."""
        if not self._pending:
            raise RuntimeError(f"{self._name}: wait() without submit()")
        pred, exc = self._done.get()
        self._pending = False
        if exc is not None:
            raise exc
        assert pred is not None  # one of the two is always set
        return pred

    def stop(self) -> None:
        """Ask the thread to end after the job in hand, if any; does not wait for it."""
        if self.alive and not self._stopping:
            self._stopping = True
            self._jobs.put(_STOP)

    def close(self, timeout: float = 5.0) -> None:
        """End the thread (after the job in hand, if any); a later submit starts a new one."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self.stop()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "%s did not end within %.1f s (a model still judging)", self._name, timeout
            )

    def _run(self, jobs: _Jobs, done: _Done) -> None:
        unpin_current(self._cores)
        while True:
            crop = jobs.get()
            if crop is _STOP:
                return
            try:
                done.put((self._judge.predict(crop), None))
            except BaseException as exc:  # handed to the waiting thread, which handles it
                done.put((None, exc))


def both_at_once(
    first: Predictor, second: JudgeThread, crop_rgb: np.ndarray
) -> tuple[Prediction, Prediction]:
    """`first` judges the crop on the calling thread while `second` judges it on its own: both
    predictions. A failure on either side is raised here; the second's prediction is always
    collected first, so its thread is free for the next crop."""
    second.submit(crop_rgb)
    try:
        pred = first.predict(crop_rgb)
    finally:
        other = second.wait()
    return pred, other


def judge_at_once(backends: Sequence[str], num_threads: int = 1) -> bool:
    """Whether the pipeline judges its two sides at once: two models on the CPU, each with its
    `num_threads`, and cores for both. On an accelerator (an Edge TPU, a GPU) they run one
    after the other: one device runs one model at a time."""
    n = core_count(allowed_cores())
    on_cpu = all(b.endswith("-cpu") for b in backends)
    return len(backends) == 2 and on_cpu and n >= 2 * max(1, num_threads)
