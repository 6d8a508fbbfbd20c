"""Validation of staff commands (`cmd/language`, `cmd/pause`, `cmd/resume`).

Payloads come from the network: anything may arrive (binary, huge, wrong JSON, nested). Validation
never raises; it returns the value or a message that says what a valid command looks like.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from installation.faults import ThrottledLog
from installation.types import LANGUAGES

logger = logging.getLogger(__name__)

MAX_PAYLOAD = 256  # bytes; a valid command is a handful
COMMANDS = ("language", "pause", "resume")
MAX_SHOWN = 40  # characters of a command name or value echoed in answers and logs
_LANG_HELP = 'send de, "de" or {"language": "de"}'
# pause / resume: a JSON object; its only key, optional, is a note for the log. An unknown key
# is refused: `{"for": 10}` must not read as a ten-minute pause and pause for good.
PAUSE_KEYS = ("reason",)
_PAUSE_HELP = 'send {} or {"reason": "cleaning"}'
# Staff send a command now and then; a script stuck in a loop (or a Home Assistant automation
# that fires on every state change) must not flip the screen's language many times a second or
# flood the result topic. Over the budget a command is dropped, unanswered but for one line.
COMMAND_BURST = 10  # commands taken at once
COMMAND_RATE = 2.0  # commands a second, sustained
# At most one "command rejected" log line (and one answer to dropped commands) this often, s.
REJECT_LOG_S = 10.0


def _quote(text: str, limit: int = MAX_SHOWN) -> str:
    """A bounded repr for messages: escapes of control and astral characters count too (a
    MAX_SHOWN-character name of them made a 400-character log line; found by fuzzing)."""
    shown = repr(text[:limit])
    return shown if len(shown) <= limit + 2 else shown[:limit] + "...'"


def parse_command(name: str, payload: bytes) -> tuple[bool, object, str]:
    """(ok, value, message). `value` is what the kiosk's handler gets (a language, or None)."""
    if name not in COMMANDS:
        return False, None, f"unknown command {_quote(name)}; use one of {', '.join(COMMANDS)}"
    if len(payload) > MAX_PAYLOAD:
        return False, None, f"payload of {len(payload)} bytes is too long (max {MAX_PAYLOAD})"
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False, None, "payload is not UTF-8 text"
    if not text:
        # A zero-length message is how a retained command is deleted, and the broker forwards
        # it live too: it must never act (the publisher drops it before it gets here).
        return False, None, f"an empty message clears a retained command; {_help(name)}"
    if name == "language":
        return _language(text)
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        obj = None
    if not isinstance(obj, dict):
        return False, None, f"{name} takes a JSON object, got {_quote(text)}; {_PAUSE_HELP}"
    unknown = [k for k in obj if k not in PAUSE_KEYS]
    if unknown:
        return False, None, f"{name} has no option {_quote(str(unknown[0]))}; {_PAUSE_HELP}"
    return True, None, ""


def _help(name: str) -> str:
    return _LANG_HELP if name == "language" else _PAUSE_HELP


def _language(text: str) -> tuple[bool, object, str]:
    value: object = text
    if text[:1] in ("{", '"'):
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return False, None, f"payload is not valid JSON; {_LANG_HELP}"
        value = obj.get("language") if isinstance(obj, dict) else obj
    if not isinstance(value, str) or value not in LANGUAGES:
        shown = _quote(value) if isinstance(value, str) else repr(value)[:MAX_SHOWN]
        return False, None, f"language must be one of {', '.join(LANGUAGES)}, got {shown}"
    return True, value, ""


class CommandGate:
    """Admits commands at COMMAND_RATE a second (a token bucket of COMMAND_BURST) and logs
    rejections at most once per REJECT_LOG_S, with the count of those it kept quiet about.

    Thread-safe: paho's network thread admits and rejects; the stats worker calls `flush()` so
    the count of a flood that stopped is logged too, not only when the next rejection comes.
    """

    def __init__(
        self,
        rate: float = COMMAND_RATE,
        burst: int = COMMAND_BURST,
        log_every_s: float = REJECT_LOG_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._filled_at = clock()
        self._rejections = ThrottledLog(
            logger,
            every_s=log_every_s,
            quiet_message="MQTT: %d more commands rejected since the last line",
            clock=clock,
        )
        self.dropped = 0  # commands over the budget, since start

    def budget(self) -> float:
        """Commands that would be taken now (a fraction: the next one is refilling)."""
        with self._lock:
            return self._refill()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now
        return self._tokens

    def admit(self) -> bool:
        """Take one command from the budget; False when it is spent (drop the command)."""
        with self._lock:
            if self._refill() < 1:
                self.dropped += 1
                return False
            self._tokens -= 1
            return True

    def rejected(self, name: str, message: str) -> bool:
        """Log a rejected command, or count it while a line was logged less than
        `log_every_s` ago. True when this one was logged."""
        return self._rejections.event("MQTT command %s rejected: %s", name, message)

    def flush(self, force: bool = False) -> None:
        """Log the count of rejections kept quiet once the window has passed (worker thread),
        or now with `force` (at stop)."""
        self._rejections.flush(force)
