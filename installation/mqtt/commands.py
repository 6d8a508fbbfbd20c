"""Validation of staff commands (`cmd/language`, `cmd/pause`, `cmd/resume`).

Payloads come from the network: anything may arrive (binary, huge, wrong JSON). Validation never
raises; it returns the value or a message that says what a valid command looks like.
"""

from __future__ import annotations

import json

LANGUAGES = ("en", "de", "fr")
MAX_PAYLOAD = 256
COMMANDS = ("language", "pause", "resume")


def parse_command(name: str, payload: bytes) -> tuple[bool, object, str]:
    """(ok, value, message). `value` is what the kiosk's handler gets."""
    if name not in COMMANDS:
        return False, None, f"unknown command {name!r}; use one of {', '.join(COMMANDS)}"
    if len(payload) > MAX_PAYLOAD:
        return False, None, f"payload of {len(payload)} bytes is too long (max {MAX_PAYLOAD})"
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False, None, "payload is not UTF-8 text"
    if name == "language":
        value: object = text
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                return False, None, 'payload is not valid JSON; send "de" or {"language": "de"}'
            value = obj.get("language") if isinstance(obj, dict) else None
        elif text.startswith('"'):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return False, None, 'payload is not valid JSON; send "de" or {"language": "de"}'
        if value not in LANGUAGES:
            return False, None, f"language must be one of {', '.join(LANGUAGES)}, got {value!r}"
        return True, value, ""
    # pause / resume: empty, or a JSON object (reserved for options), nothing else.
    if text in ("", "{}", "1", "true"):
        return True, None, ""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return False, None, f"{name} takes an empty payload or a JSON object"
    if not isinstance(obj, dict):
        return False, None, f"{name} takes an empty payload or a JSON object"
    return True, None, ""
