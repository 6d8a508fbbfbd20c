"""Validation of staff commands (`cmd/language`, `cmd/pause`, `cmd/resume`).

Payloads come from the network: anything may arrive (binary, huge, wrong JSON, nested). Validation
never raises; it returns the value or a message that says what a valid command looks like.
"""

from __future__ import annotations

import json

from installation.types import LANGUAGES

MAX_PAYLOAD = 256  # bytes; a valid command is a handful
COMMANDS = ("language", "pause", "resume")
MAX_SHOWN = 40  # characters of a command name or value echoed in answers and logs
_LANG_HELP = 'send de, "de" or {"language": "de"}'
# pause / resume: a JSON object; its only key, optional, is a note for the log. An unknown key
# is refused: `{"for": 10}` must not read as a ten-minute pause and pause for good.
PAUSE_KEYS = ("reason",)
_PAUSE_HELP = 'send {} or {"reason": "cleaning"}'


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
