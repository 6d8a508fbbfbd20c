"""Language: a visitor's choice lasts their visit; a staff choice survives a restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from installation import paths
from installation.language import LanguageState


def test_a_visitors_language_lasts_their_visit() -> None:
    state = LanguageState("en", None)
    assert state.update(attract=True) is None  # nobody yet
    assert state.update(attract=False) is None  # a visitor steps in (and may press 2 or 3)
    assert state.update(attract=False) is None
    assert state.update(attract=True) == "en"  # they left: back to the exhibit's language
    assert state.update(attract=True) is None  # once, not every frame


def test_staff_language_survives_a_restart(tmp_path: Path) -> None:
    state = LanguageState("en", tmp_path / "state")
    assert state.default == "en"
    state.set_by_staff("fr")
    assert (tmp_path / "state" / "language").read_text(encoding="utf-8").strip() == "fr"
    again = LanguageState("en", tmp_path / "state")
    assert again.default == "fr"
    again.update(attract=False)
    assert again.update(attract=True) == "fr"  # visitors return to the staff's choice
    with pytest.raises(ValueError, match="unknown language"):
        again.set_by_staff("nl")


def test_a_damaged_state_file_falls_back_to_the_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "language").write_bytes(b"\xff\xfe klingon")
    assert LanguageState("de", tmp_path).default == "de"
    (tmp_path / "language").write_text("nl\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert LanguageState("de", tmp_path).default == "de"
    assert "not one of en, de, fr" in caplog.text


def test_an_unwritable_state_path_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")  # a file where the folder should be
    state = LanguageState("en", blocker / "state")
    with caplog.at_level(logging.WARNING):
        state.set_by_staff("de")
    assert state.default == "de" and "StateDirectory" in caplog.text


def test_state_dir_follows_systemd_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "sd"))
    assert paths.state_dir() == tmp_path / "sd"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "xdg" / "bias-mirror"
