"""Fuzzing (hypothesis): the config loader and the MQTT command parser get anything a technician
or an attacker could send, and answer with a clean error or a valid result, never a traceback.

`make test` runs FUZZ_EXAMPLES examples per test (200); a longer run:
    BIAS_MIRROR_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz.py -q
Failures hypothesis found are kept below as `@example`s (and in test_config / test_mqtt).
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from installation.config import Config, ConfigError, load_config, parse_config
from installation.mqtt.commands import COMMANDS, LANGUAGES, MAX_PAYLOAD, parse_command
from installation.mqtt.topics import Topics

FUZZ_EXAMPLES = int(os.environ.get("BIAS_MIRROR_FUZZ_EXAMPLES", "200"))
# Generous: one example takes milliseconds; the deadline only flags a pathological input
# (an alias bomb took 71 s before it was bounded).
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_PROBLEM_CHARS = 600  # one problem is one readable line, whatever the input

# Sections and keys of the real schema, so mutations reach the validators and not only
# "unknown key".
SCHEMA_KEYS: dict[str, list[str]] = {
    name: list(field.annotation.model_fields)  # type: ignore[union-attr]
    for name, field in Config.model_fields.items()
    if hasattr(field.annotation, "model_fields")
}

# YAML's own grammar in pieces: flow and block syntax, anchors, aliases, merge keys, tags
# (python/object ones must be refused by the safe loader), documents, odd scalars and bytes.
YAML_TOKENS = [
    "{", "}", "[", "]", ": ", ":", ", ", "\n", "  ", "    ", "- ", "? ", "|\n", ">\n", "# c\n",
    "&a ", "*a", "&b [*a, *a, *a] ", "<<: ", "!!binary ", "!!float ", "!!int ", "!!str ",
    "!!set ", "!!omap ", "!!bool ", "!!timestamp ", "!!null ", "!custom ", "---\n",
    "!!python/object/apply:os.system ['true'] ",
    "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "'", '"', "\\", "\t", "\x00", "\ufeff",
    "\u2028", "\x85", "~", "null", "true", "yes", "on", "0x1F", "0o17", "1e999", "-.inf",
    ".nan", "1_000", "12:30:00", "2001-12-14", "=", "\U0001f600", "installation_id",
    "source", "uri", "region", "box", "models", "left", "display", "fps", "mqtt", "tls",
    "ca_file", "password", "passwd", "topic_prefix", "privacy", "k_min_sessions", "demo",
    "/dev/null", "0", "-1", "0.5", "a" * 70,
]  # fmt: skip


def check_load(text: str, base: Path) -> None:
    """The property: a Config, or a ConfigError whose every problem is one bounded line."""
    try:
        cfg = parse_config(text, "fuzz.yaml", base=base)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must name at least one problem"
        for problem in exc.problems:
            line = str(problem)
            assert line.startswith("fuzz.yaml"), line[:200]
            assert len(line) <= MAX_PROBLEM_CHARS, line[:200]
            assert problem.message.strip()
        return
    assert isinstance(cfg, Config)
    assert all(math.isfinite(c) for c in cfg.region.box)
    assert cfg.source.reopen_min_s <= cfg.source.reopen_max_s


yaml_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["demo", "0", "/dev/video0", "rtsp://u:p@h/x", "en", "de", "auto", "usb"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    """A config mapping of real sections and keys, each with a random value, plus strays."""
    data: dict[Any, Any] = {}
    for section in draw(st.lists(st.sampled_from([*SCHEMA_KEYS, "installation_id"]), max_size=4)):
        if section == "installation_id":
            data[section] = draw(values | st.from_regex(r"[a-z0-9_-]{1,70}", fullmatch=True))
            continue
        keys = draw(st.lists(st.sampled_from(SCHEMA_KEYS[section]), max_size=4))
        data[section] = {k: draw(values) for k in keys}
        if draw(st.booleans()):
            data[section][draw(st.text(max_size=10))] = draw(values)
    if draw(st.booleans()):
        return draw(values)  # not even a mapping
    return data


@FUZZ
@given(text=yaml_text)
@example(text="!!int ")  # IndexError inside PyYAML (found by this test)
@example(text="!!float ")  # IndexError
@example(text="fps: !!bool x")  # KeyError
@example(text="fps: !!timestamp x")  # AttributeError
@example(text="fps: !!int 0x")  # ValueError
@example(text="a: &a [*a]")  # recursive alias
@example(text="&a [*a, *a, *a, *a, *a]")
@example(text="x: !!python/object/apply:os.system ['true']")
@example(text="source: {uri: demo}\nsource: {uri: 0}\n")  # duplicate key
@example(text="region: {box: [.nan, .nan, .nan, .nan]}")
@example(text="mqtt: {topic_prefix: 'a/+/#'}")
@example(text="\ufeffinstallation_id: x")
def test_fuzz_config_yaml_grammar(text: str, tmp_path: Path) -> None:
    check_load(text, tmp_path)


@FUZZ
@given(text=st.text(max_size=300))
def test_fuzz_config_any_text(text: str, tmp_path: Path) -> None:
    check_load(text, tmp_path)


@FUZZ
@given(data=mutated_configs())
@example(data={"display": {"fps": True}})
@example(data={"source": {"reopen_min_s": 50, "reopen_max_s": 1}})
def test_fuzz_config_values(data: Any, tmp_path: Path) -> None:
    check_load(yaml.safe_dump(data, allow_unicode=True), tmp_path)


@FUZZ
@given(
    section=st.sampled_from([None, *SCHEMA_KEYS]),
    key=st.sampled_from(["password", "passwd", "pass", "pwd", "secret", "token", "api_key"]),
    secret=st.from_regex(r"S3cr3t[A-Za-z0-9]{4,20}", fullmatch=True),
)
@example(section="mqtt", key="passwd", secret="S3cr3thunter2")
def test_fuzz_secret_never_echoed(
    section: str | None, key: str, secret: str, tmp_path: Path
) -> None:
    """A secret under a misspelt or misplaced key is masked, never written into the journal."""
    data: dict[str, Any] = {key: secret} if section is None else {section: {key: secret}}
    try:
        parse_config(yaml.safe_dump(data), "fuzz.yaml", base=tmp_path)
    except ConfigError as exc:
        assert secret not in str(exc)
        return
    raise AssertionError(f"unknown key {key!r} was accepted")


@FUZZ
@given(raw=st.binary(max_size=300))
@example(raw=b"installation_id: \xff\xfe")  # not UTF-8
@example(raw=b"\xef\xbb\xbfsource: {uri: demo}")  # UTF-8 BOM
def test_fuzz_config_file_bytes(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "kiosk.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        assert all(len(str(p)) <= MAX_PROBLEM_CHARS for p in exc.problems)


# ---------------------------------------------------------------------------------------------
# MQTT commands: the parser the kiosk's publisher calls for every message on cmd/<name>

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
payloads = (
    st.binary(max_size=MAX_PAYLOAD + 64)
    | st.text(max_size=300).map(str.encode)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.sampled_from(LANGUAGES).map(lambda lang: json.dumps({"language": lang}).encode())
    | st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(1, 5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
)
names = st.sampled_from(COMMANDS) | st.text(max_size=200)


@FUZZ
@given(name=names, payload=payloads)
@example(name="language", payload=b'"' + b"x" * 300 + b'"')
@example(name="language", payload=b"NaN")
@example(name="language", payload=b'{"language": ["de"]}')
@example(name="pause", payload=b"[" * 200)
@example(name="x" * 60_000, payload=b"")
@example(name="\x1f" * 40, payload=b"")  # escapes made a 400-character message (found here)
@example(name="pause", payload="\U00011345".encode() * 40)
def test_fuzz_command_parser(name: str, payload: bytes) -> None:
    ok, value, message = parse_command(name, payload)
    assert isinstance(ok, bool) and isinstance(message, str)
    assert len(message) <= 200, message[:200]
    if ok:
        assert name in COMMANDS
        assert value in LANGUAGES if name == "language" else value is None
    else:
        assert message.strip() and value is None


@FUZZ
@given(topic=st.text(max_size=300))
@example(topic="bias-mirror/foyer-1/cmd/")
@example(topic="bias-mirror/foyer-1/cmd/result")
@example(topic="bias-mirror/foyer-1/cmd/a/b")
def test_fuzz_command_topic(topic: str) -> None:
    """The name the publisher takes from a topic: only what follows `<base>/cmd/`, never the
    result topic; the parser then rejects anything that is not a command."""
    topics = Topics("bias-mirror", "foyer-1")
    name = topics.command_name(topic)
    if name is None:
        return
    assert topic == f"{topics.base}/cmd/{name}" and name != "result"
    ok, _, _ = parse_command(name, b"{}")
    assert ok == (name in ("pause", "resume"))


def test_tag_that_does_not_fit_is_one_clear_problem() -> None:
    """Found by fuzzing: PyYAML raised IndexError / KeyError / ValueError from its constructors."""
    for text in ("display:\n  fps: !!bool x\n", "display:\n  fps: !!int\n"):
        try:
            parse_config(text, "kiosk.yaml")
        except ConfigError as exc:
            (problem,) = exc.problems
            assert problem.line == 2 and "remove the tag" in problem.message
        else:
            raise AssertionError(f"{text!r} was accepted")
