"""Screen texts per language from assets/texts/<lang>.yaml.

Every language file must have the same keys (nested tables included) and the same `{placeholders}`
in each string, so switching language can never show a missing text or raise a KeyError mid-show.
Model names, method sentences and group labels come from the model card in English; the `models`
and `groups` tables translate the ones the project ships, anything else falls back to the card.
"""

from __future__ import annotations

import logging
import string
from pathlib import Path
from typing import Any

import yaml

from installation.inference.card import Card, GroupMetric
from installation.paths import TEXTS_DIR
from installation.types import LANGUAGES

logger = logging.getLogger(__name__)


class TextsError(ValueError):
    """A language file that is missing, unreadable or out of step with en.yaml."""


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": "x"}} -> {"a.b": "x"}: nested tables are checked key by key."""
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Texts:
    """All three languages, loaded and cross-checked once; `t` reads the current language."""

    def __init__(self, texts_dir: Path = TEXTS_DIR, language: str = "en") -> None:
        self._dir = texts_dir
        self._tables: dict[str, dict[str, Any]] = {}
        self._flat: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            path = texts_dir / f"{lang}.yaml"
            try:
                table = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise TextsError(
                    f"{path}: cannot load screen texts ({exc}). Fix: restore it from the "
                    "project's assets/texts/"
                ) from None
            if not isinstance(table, dict):
                raise TextsError(f"{path}: must be a mapping of text keys to strings")
            self._tables[lang] = table
            self._flat[lang] = _flatten(table)
        self._check()
        self._language = "en"
        self.load(language)

    def _check(self) -> None:
        en = self._flat["en"]
        problems: list[str] = []
        for lang in LANGUAGES[1:]:
            other = self._flat[lang]
            if missing := sorted(set(en) - set(other)):
                problems.append(f"{lang}.yaml lacks {missing}")
            if extra := sorted(set(other) - set(en)):
                problems.append(f"{lang}.yaml has keys en.yaml lacks {extra}")
            for key in sorted(set(en) & set(other)):
                if _fields(en[key]) != _fields(other[key]):
                    problems.append(
                        f"{lang}.yaml:{key} uses {sorted(_fields(other[key]))}, "
                        f"en.yaml uses {sorted(_fields(en[key]))}"
                    )
        if problems:
            raise TextsError(
                f"{self._dir}: screen texts out of step: {'; '.join(problems)}. "
                "Fix: give every language the same keys and placeholders."
            )

    # -- language ------------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    @property
    def language(self) -> str:
        return self._language

    def load(self, lang: str) -> None:
        """Make `lang` the current language (all files are already loaded and checked)."""
        if lang not in self._tables:
            raise TextsError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
        self._language = lang

    def keys(self, lang: str = "en") -> set[str]:
        """Dotted keys of one language, nested tables included."""
        return set(self._flat[lang])

    def has(self, key: str) -> bool:
        return key in self._flat["en"]

    def t(self, key: str, **fmt: object) -> str:
        value = self._flat[self._language].get(key, self._flat["en"].get(key, key))
        return value.format(**fmt) if fmt else value

    # -- card texts ----------------------------------------------------------------------

    def eval_set(self, name: str) -> str:
        return self._flat[self._language].get(f"eval_sets.{name}", name)

    def _model_id(self, card: Card) -> str | None:
        method_id = (card.model_extra or {}).get("method_id")
        if card.debiased is False and f"models.{method_id}_method.name" in self._flat["en"]:
            # Not measurably debiased: the screen names the method, not a result.
            return f"{method_id}_method"
        if isinstance(method_id, str) and f"models.{method_id}.name" in self._flat["en"]:
            return method_id
        # Older cards have no method id: recognise the shipped ones by their English name.
        for mid, entry in (self._tables["en"].get("models") or {}).items():
            if isinstance(entry, dict) and entry.get("name") == card.name:
                return str(mid)
        return None

    def model_name(self, card: Card) -> str:
        mid = self._model_id(card)
        return self.t(f"models.{mid}.name") if mid else card.name

    def model_method(self, card: Card) -> str:
        mid = self._model_id(card)
        return self.t(f"models.{mid}.method") if mid else card.method

    def group_label(self, group: GroupMetric) -> str:
        return self._flat[self._language].get(f"groups.{group.key}", group.label)
