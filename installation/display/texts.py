"""Screen texts per language from assets/texts/<lang>.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from installation.paths import TEXTS_DIR

LANGUAGES = ("en", "de", "fr")


class TextsError(ValueError):
    pass


class Texts:
    def __init__(self, texts_dir: Path = TEXTS_DIR) -> None:
        self._dir = texts_dir
        self._tables: dict[str, dict[str, Any]] = {}
        for lang in LANGUAGES:
            path = texts_dir / f"{lang}.yaml"
            try:
                table = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise TextsError(f"{path}: cannot load screen texts ({exc})") from None
            if not isinstance(table, dict):
                raise TextsError(f"{path}: must be a mapping of text keys to strings")
            self._tables[lang] = table
        missing = {
            lang: sorted(set(self._tables["en"]) - set(t))
            for lang, t in self._tables.items()
            if set(self._tables["en"]) - set(t)
        }
        if missing:
            raise TextsError(f"{texts_dir}: text keys missing: {missing}")

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    def keys(self, lang: str = "en") -> set[str]:
        return set(self._tables[lang])

    def t(self, lang: str, key: str, **fmt: Any) -> str:
        value = self._tables[lang].get(key, self._tables["en"].get(key, key))
        return str(value).format(**fmt) if fmt else str(value)

    def eval_set(self, lang: str, name: str) -> str:
        table = self._tables[lang].get("eval_sets") or {}
        return str(table.get(name, name))
