"""The stats payload contract: the model, what goes on the wire, and its copy in docs/mqtt.md.

Set BIAS_MIRROR_REGEN_DOCS=1 to rewrite the schema in docs/mqtt.md after an intended change to
the model, then read the diff and commit it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from installation.stats.payload import WITHHELD, StatsPayload, stats_json_schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"
BLOCK = re.compile(
    r"(<!-- stats-schema:begin -->\n)(.*?)(<!-- stats-schema:end -->)", flags=re.DOTALL
)


def doc_example() -> str:
    """The example payload of docs/mqtt.md (its first JSON block)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("```json\n") + len("```json\n")
    return text[start : text.index("```", start)]


def test_the_docs_schema_is_the_models() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match, f"{DOC}: the stats-schema:begin / end markers are gone"
    generated = "```json\n" + json.dumps(stats_json_schema(), indent=2) + "\n```\n"
    if os.environ.get("BIAS_MIRROR_REGEN_DOCS") == "1" and match.group(2) != generated:
        DOC.write_text(text[: match.start(2)] + generated + text[match.end(2) :], encoding="utf-8")
        pytest.fail(f"{DOC} rewritten from the model: read the diff, commit it, run again")
    shown = match.group(2).strip().removeprefix("```json").removesuffix("```")
    assert json.loads(shown) == stats_json_schema(), (
        "docs/mqtt.md's stats schema is out of date: BIAS_MIRROR_REGEN_DOCS=1 pytest "
        "tests/test_stats_payload.py"
    )


def test_the_docs_example_is_a_valid_payload_and_round_trips() -> None:
    example = doc_example()
    payload = StatsPayload.model_validate_json(example)
    assert json.loads(payload.to_json()) == json.loads(example)


def test_withheld_figures_are_absent_on_the_wire_not_null() -> None:
    full: dict[str, Any] = json.loads(doc_example())
    below_k = {k: v for k, v in full.items() if k not in WITHHELD}
    sent = json.loads(StatsPayload.model_validate(below_k).to_json())
    assert sent == below_k
    assert "cpu_temp_c" in sent  # a null that is a reading (no thermal zone), not a withholding
    assert all(k in json.loads(StatsPayload.model_validate(full).to_json()) for k in WITHHELD)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"seq": "7"}, "seq"),  # a number as a string
        ({"sessions": 1.5}, "sessions"),
        ({"sessions": True}, "sessions"),
        ({"disagreement_rate": 1.2}, "disagreement_rate"),
        ({"fps": {"camera": 30.0, "process": -1.0, "render": 60.0}}, "fps.process"),
        ({"errors": {"camera_lost": "2"}}, "errors.camera_lost"),
        (
            {"interval": {"start": "yesterday", "end": "2026-11-22T10:01:00Z", "seconds": 60.0}},
            "interval.start",
        ),
        ({"schema": 2}, "schema"),
    ],
)
def test_the_reader_is_strict_about_what_it_knows(change: dict[str, Any], where: str) -> None:
    bad = {**json.loads(doc_example()), **change}
    with pytest.raises(ValidationError) as err:
        StatsPayload.model_validate_json(json.dumps(bad))
    assert [".".join(map(str, e["loc"])) for e in err.value.errors()] == [where]


def test_infinity_and_nan_are_refused() -> None:
    example = doc_example()
    for token in ("Infinity", "NaN", "1e999"):
        with pytest.raises(ValidationError):
            StatsPayload.model_validate_json(
                example.replace('"rss_mb": 180.4', f'"rss_mb": {token}')
            )
