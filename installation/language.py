"""Which language the screen speaks, and for how long.

Two sources, two lifetimes:
- staff (an MQTT `cmd/language`) set the exhibit's language: it becomes the default, is written
  under the state directory (`paths.state_dir()`, not the config), and survives a restart;
- a visitor (keys 1/2/3) sets it for their own visit: when they leave and the screen goes back
  to attract mode, it returns to the default, so the next visitor is not greeted in the last
  one's choice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from installation.types import LANGUAGES

logger = logging.getLogger(__name__)

FILE_NAME = "language"


class LanguageState:
    def __init__(self, configured: str, state_dir: Path | None) -> None:
        self.path = state_dir / FILE_NAME if state_dir is not None else None
        stored = self._load()
        self.default = stored or configured
        self._was_attract = True
        if stored:
            logger.info("language %s, as staff last set it (%s)", stored, self.path)

    def _load(self) -> str | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("%s unreadable (%s): using the configured language", self.path, exc)
            return None
        if value not in LANGUAGES:
            logger.warning(
                "%s holds %r, not one of %s: using the configured language; staff can set it "
                "again with cmd/language",
                self.path,
                value[:20],
                ", ".join(LANGUAGES),
            )
            return None
        return value

    def update(self, attract: bool) -> str | None:
        """Called every screen: the default language when a visit has just ended (the screen
        went back to attract mode), else None. Keys pressed before anyone stepped in count for
        the visit that follows."""
        left = attract and not self._was_attract
        self._was_attract = attract
        return self.default if left else None

    def set_by_staff(self, lang: str) -> str | None:
        """The exhibit's language from now on, also after a restart. Returns None when it was
        saved, else why not (for the answer staff get: it then holds until the next restart).

        Called from the MQTT thread; the main loop only reads `default` (one str assignment)."""
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGUAGES)}")
        self.default = lang
        if self.path is None:
            return "no state folder to keep it in"  # LanguageState(..., None): tests, tools
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(lang + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning(
                "could not keep the staff language in %s (%s): it holds until the next restart; "
                "make the folder writable for the kiosk's user (systemd: StateDirectory=)",
                self.path,
                exc,
            )
            return f"{str(self.path)[-80:]} is not writable ({exc.strerror or exc})"
        return None
