"""Shared pytest set-up. Area-specific fixtures live in tests/<area>_fixtures.py modules."""

from __future__ import annotations

import os
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
    """Folder with tiny real int8 bundles made by `python -m model_export.tiny` (checked in)."""
    return TINY_BUNDLES
