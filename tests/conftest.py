"""Shared pytest set-up. Area-specific fixtures live in tests/<area>_fixtures.py modules."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# Headless, silent Pygame everywhere in the suite.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS_DIR = Path(__file__).resolve().parent
TINY_BUNDLES = TESTS_DIR / "data" / "bundles"


@pytest.fixture(scope="session")
def tiny_bundles() -> Path:
    """Folder with tiny real int8 bundles made by `python -m tests.tiny_bundles` (checked in)."""
    return TINY_BUNDLES


@pytest.fixture
def terminal_sigint() -> Iterator[None]:
    """SIGINT as in a terminal (Python's handler raises KeyboardInterrupt) for one test: a runner
    started in the background without job control inherits SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The demo clip and other caches go to this run's (this worker's) own folder, never the
    user's ~/.cache: a test run leaves nothing behind and parallel workers share no file."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps the kiosk's state (the staff language) in its own folder: never the
    user's ~/.local/state, and never one test's command in another test's kiosk."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "kiosk-state"))
