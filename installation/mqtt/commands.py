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


def parse_command(name: str, payload: bytes) -> tuple[bool, object, str]:
    """(ok, value, message). `value` is what the kiosk's handler gets (a language, or None)."""
    if name not in COMMANDS:
        shown = name[:MAX_SHOWN]
        return False, None, f"unknown command {shown!r}; use one of {', '.join(COMMANDS)}"
    if len(payload) > MAX_PAYLOAD:
        return False, None, f"payload of {len(payload)} bytes is too long (max {MAX_PAYLOAD})"
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False, None, "payload is not UTF-8 text"
    if name == "language":
        return _language(text)
    # pause / resume: an empty payload, or a JSON object (reserved for options).
    if text:
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            shown = text[:MAX_SHOWN]
            return False, None, f"{name} takes an empty payload or a JSON object, got {shown!r}"
    return True, None, ""


def _language(text: str) -> tuple[bool, object, str]:
    value: object = text
    if text[:1] in ("{", '"'):
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return False, None, f"payload is not valid JSON; {_LANG_HELP}"
        value = obj.get("language") if isinstance(obj, dict) else obj
    if not isinstance(value, str) or value not in LANGUAGES:
        shown = repr(value)[:MAX_SHOWN]
        return False, None, f"language must be one of {', '.join(LANGUAGES)}, got {shown}"
    return True, value, ""
