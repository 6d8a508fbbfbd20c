"""One core for the frame's way through the kiosk: capture, judging and drawing.

Each camera frame is decoded by the capture thread, judged by the pipeline thread and drawn by
the main thread, one after the other within a few milliseconds. On separate cores each of them
wakes with the frame out of its cache (and, in a virtual machine, every wake-up across cores is
an interrupt to another virtual CPU); on one core the frame is still warm. Measured on this
project's 2-core x86 VM with the demo clip: about one point of a core less (11.0 -> 10.0 % at
15 judged frames a second, 3 runs each). The heatmap worker is left free to use any core: it is
the one part that needs a core of its own at times. Linux only; elsewhere nothing is pinned.

OpenCV's own worker pool would undo that: it splits its larger calls (the live image's flip and
conversion, the attract screen's resizes) with a thread of its own, free to run on the other
core. While the kiosk runs, OpenCV works on the calling thread only
(`opencv_on_calling_threads`): its pool thread had taken 0.4-0.6 % of a core, and the kiosk's
whole share fell by 0.4 points on average (6 alternating pairs of 14-second runs, 2-core x86
VM, heatmaps on; lower in 5 of the 6).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


def allowed_cores() -> set[int] | None:
    """The cores this thread may run on; None where the OS does not say (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return set(os.sched_getaffinity(0))


def core_count(allowed: set[int] | None) -> int:
    """How many cores there are to run on: those allowed, or where the OS does not say, the
    machine's."""
    return len(allowed) if allowed is not None else (os.cpu_count() or 1)


def frame_core(allowed: set[int] | None) -> int | None:
    """The core the frame's threads share: the last allowed one (the first usually takes the
    system's interrupts); None with fewer than two cores, where there is nothing to choose."""
    if allowed is None or len(allowed) < 2:
        return None
    return max(allowed)


def pin(threads: list[threading.Thread | None], core: int | None) -> list[threading.Thread]:
    """Pin each started thread (and the calling one, when it is listed) to `core`; returns those
    pinned. A thread that has ended, or an OS that refuses, is logged and left as it was."""
    done: list[threading.Thread] = []
    if core is None or not hasattr(os, "sched_setaffinity"):
        return done
    for t in threads:
        if t is None or t.native_id is None:
            continue
        try:
            # On Linux a thread id is accepted where a process id is: this pins that thread.
            os.sched_setaffinity(t.native_id, {core})
        except OSError as exc:
            logger.info("thread %s stays unpinned: %s", t.name, exc)
            continue
        done.append(t)
    return done


def unpin_current(allowed: set[int] | None) -> None:
    """Give the calling thread back the cores it had (the kiosk may run inside a test or a
    launcher that goes on after it)."""
    if allowed is None or not hasattr(os, "sched_setaffinity"):
        return
    try:
        os.sched_setaffinity(0, allowed)
    except OSError as exc:
        logger.info("could not restore this thread's cores: %s", exc)


@contextmanager
def opencv_on_calling_threads() -> Iterator[None]:
    """OpenCV's worker pool off for the block (each call runs on the thread that makes it), and
    its size as before afterwards (the kiosk may run inside a test or the bench)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
