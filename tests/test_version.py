"""The version is written once, in pyproject.toml; everything that reports one says that one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import installation
import model_export
from installation.mqtt.discovery import discovery_messages
from installation.mqtt.topics import Topics

ROOT = Path(__file__).resolve().parent.parent


def test_the_reported_version_is_pyprojects() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert installation.__version__ == declared
    assert model_export.__version__ == declared
    _, payload = discovery_messages(Topics("bias-mirror", "hall"), "homeassistant")[0]
    config = json.loads(payload)
    assert config["origin"]["sw_version"] == config["device"]["sw_version"] == declared
