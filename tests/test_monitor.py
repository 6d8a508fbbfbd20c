"""The staff monitor: its model fed with plain messages, the rich view, and the CLI."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from installation.monitor import COLUMNS, monitor_main, render_table, row_cells
from installation.monitor_model import KioskBoard
from installation.stats import StatsAggregator
from tests.mqtt_fixtures import result

ROOT = Path(__file__).resolve().parent.parent
NOON = dt.datetime(2026, 3, 14, 12, 0).timestamp()  # local time, like the monitor's "today"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def stats(seq: int, end: float, sessions: int, since: float, total: int, **kw: Any) -> bytes:
    """A stats message as a kiosk sends it (docs/mqtt.md), rates withheld unless given."""
    per_side = {"p50": 0.2, "p95": 0.3}
    released = {
        "intervals": 0,
        "present_frames": 0,
        "faces": {"left": 0, "right": 0},
        "p_face_sum": {"left": 0.0, "right": 0.0},
        "disagreements": 0,
        "missed_frames": 0,
        "sessions_ended": 0,
        "sessions_missed_by_both": 0,
        "dwell_s": 0.0,
    }
    s = {
        "schema": 1,
        "seq": seq,
        "interval": {"start": iso(end - 60), "end": iso(end), "seconds": 60.0},
        "k_min_sessions": 5,
        "sessions": sessions,
        "sessions_ended": sessions,
        "frames": 1790,
        "present_frames": 900,
        "fps": {"camera": 30.0, "process": 29.5, "render": 60.0},
        "dropped_frames": 1,
        "inference_ms": {"left": per_side, "right": per_side},
        "render_ms_p95": 6.1,
        "latency_ms_p95": 31.6,
        "backend": "litert-cpu",
        "errors": kw.pop("errors", {}),
        "uptime_s": 3600,
        "cpu_temp_c": None,
        "rss_mb": 180.4,
        "queue_dropped": 0,
        "cumulative": {
            "since": iso(since),
            "frames": 100_000,
            "sessions": total,
            "dropped_frames": 3,
            "errors": {},
            "released": released,
        },
        **kw,
    }
    return json.dumps(s).encode()


def test_visitors_today_for_a_kiosk_that_started_today() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    started = NOON - 3 * 3600
    # The monitor joins late: the cumulative count says everything since this morning's start.
    board.feed("bias-mirror/hall/available", b"online", retained=True)
    board.feed("bias-mirror/hall/stats", stats(180, NOON, 2, started, 40, disagreement_rate=0.25))
    board.feed("bias-mirror/hall/stats", stats(180, NOON, 2, started, 40))  # a repeat
    row = board.rows["hall"]
    assert row.visitors_today(dt.date(2026, 3, 14)) == (40, False)
    assert row.online and not row.since_exact  # retained: online since before we looked
    assert row.disagreement == 0.25 and row.fps_process == 29.5
    # The kiosk restarts at noon: its new run adds to the old one's 40.
    board.feed("bias-mirror/hall/stats", stats(1, NOON + 60, 3, NOON, 3))
    assert row.visitors_today(dt.date(2026, 3, 14)) == (43, False)
    assert row.disagreement is None  # withheld in the newest interval: not the old value


def test_visitors_today_for_a_kiosk_running_since_yesterday() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    since = NOON - 30 * 3600
    midnight = dt.datetime(2026, 3, 14, 0, 0).timestamp()
    board.feed("bias-mirror/a/stats", stats(50, NOON - 120, 4, since, 99))
    board.feed("bias-mirror/a/stats", stats(51, NOON - 60, 1, since, 100))
    row = board.rows["a"]
    assert row.visitors_today(dt.date(2026, 3, 14)) == (5, True)  # only what it saw: partial
    # Another monitor that watched since before midnight sees the whole day.
    full = KioskBoard(clock=clock)
    full.feed("bias-mirror/a/stats", stats(10, midnight - 30, 9, since, 60))  # yesterday
    full.feed("bias-mirror/a/stats", stats(11, midnight + 30, 2, since, 62))  # across midnight
    full.feed("bias-mirror/a/stats", stats(12, midnight + 90, 1, since, 63))
    assert full.rows["a"].visitors_today(dt.date(2026, 3, 14)) == (3, False)
    full.feed("bias-mirror/a/stats", stats(14, midnight + 210, 1, since, 65))  # 13 was lost
    assert full.rows["a"].visitors_today(dt.date(2026, 3, 14)) == (4, True)
    # The next day starts from zero.
    assert full.rows["a"].visitors_today(dt.date(2026, 3, 15)) == (0, True)


def col(name: str) -> int:
    return COLUMNS.index(name)


def test_status_since_stale_and_errors() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/ok/available", b"online")
    board.feed("bias-mirror/ok/stats", stats(1, NOON, 0, NOON - 60, 0, errors={"camera_lost": 2}))
    board.feed("bias-mirror/ok/state", b'{"language": "de", "paused": false, "backend": "cpu"}')
    board.feed("bias-mirror/hung/available", b"online", retained=True)
    board.feed("bias-mirror/gone/available", b"offline")
    clock.t = NOON + 200  # > stale_s for "hung", which never sent stats
    board.feed("bias-mirror/ok/stats", stats(2, NOON + 180, 0, NOON - 60, 0))
    rows = {r.installation_id: r for r in board.snapshot()}
    assert [r.installation_id for r in board.snapshot()] == ["gone", "hung", "ok"]
    style, cells = row_cells(rows["ok"], clock.t, stale_s=180)
    assert style == "green" and cells[1] == "online" and cells[col("lang")] == "de"
    assert cells[col("errors today")] == "2"
    assert rows["ok"].errors_today == 2 and rows["ok"].dropped_today == 2
    assert "before" not in cells[2]  # a live `online`: since is exact
    style, cells = row_cells(rows["hung"], clock.t, stale_s=180)
    assert style == "bold yellow" and cells[1].startswith("stale") and cells[2].startswith("before")
    style, cells = row_cells(rows["gone"], clock.t, stale_s=180)
    assert style == "bold red" and cells[1] == "offline"
    # The rendered table names every kiosk and counts the problems.
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(render_table(board, stale_s=180, now=clock.t))
    text = console.export_text()
    assert "3 kiosk(s), 1 offline, 1 stale" in text and "hung" in text


def test_camera_lost_failed_models_and_errors_show_in_red() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/cam/available", b"online")
    board.feed("bias-mirror/cam/stats", stats(1, NOON, 0, NOON - 60, 0, errors={"camera_lost": 1}))
    board.feed("bias-mirror/cam/state", b'{"language": "en", "paused": false, "camera": "lost"}')
    board.feed("bias-mirror/mod/available", b"online")
    board.feed("bias-mirror/mod/stats", stats(1, NOON, 0, NOON - 60, 0))
    right_broken = {"camera": "ok", "models": {"left": {"name": "a"}, "right": {"error": "x"}}}
    board.feed("bias-mirror/mod/state", json.dumps(right_broken).encode())
    rows = {r.installation_id: r for r in board.snapshot()}
    style, cells = row_cells(rows["cam"], clock.t, stale_s=180)
    assert style == "bold red" and cells[1] == "camera lost"
    style, cells = row_cells(rows["mod"], clock.t, stale_s=180)
    assert style == "bold red" and cells[1] == "model right failed"
    # The camera is back: the next retained state clears it.
    board.feed("bias-mirror/cam/state", b'{"language": "en", "paused": false, "camera": "ok"}')
    style, cells = row_cells(rows["cam"], clock.t, stale_s=180)
    assert style == "green" and cells[1] == "online"
    # A recording without loop is over: the exhibit shows nothing new until someone acts.
    board.feed("bias-mirror/cam/state", b'{"language": "en", "paused": false, "camera": "ended"}')
    style, cells = row_cells(rows["cam"], clock.t, stale_s=180)
    assert style == "bold red" and cells[1] == "recording ended"
    board.feed("bias-mirror/cam/state", b'{"language": "en", "paused": false, "camera": "ok"}')
    # Errors today are red even on a healthy row.
    table = render_table(board, stale_s=180, now=clock.t)
    errors = table.columns[col("errors today")]._cells
    assert [str(c) for c in errors] == ["1 (camera_lost 1)", "0"]
    assert "red" in str(errors[0].spans[0].style) and not errors[1].spans
    board.feed("bias-mirror/cam/state", b'{"camera": "on fire"}')  # not a value it sends
    assert board.bad_messages == 1 and rows["cam"].camera == "ok"


def test_malformed_messages_are_counted_not_fatal() -> None:
    board = KioskBoard()
    for topic, payload in [
        ("bias-mirror/x/stats", b"\xff\xfe"),
        ("bias-mirror/x/stats", b"[1, 2]"),
        ("bias-mirror/x/stats", b'{"seq": "one"}'),
        ("bias-mirror/x/state", b"{not json"),
        ("bias-mirror/x/available", b"maybe"),
    ]:
        board.feed(topic, payload)
    board.feed("bias-mirror/x/cmd/result", b"{}")  # not ours to show
    board.feed("other/x/stats", b"{}")
    assert board.bad_messages == 5 and board.messages == 5
    assert board.rows["x"].online is None
    for payload in (b"null", b"[]", b"7"):  # JSON, but not a state
        board.feed("bias-mirror/x/state", payload)
    assert board.bad_messages == 8
    assert board.last_problem == "x state: TypeError: state must be a JSON object, got int"


def test_a_kiosk_heard_of_only_through_its_state_is_not_called_online() -> None:
    # A retained state outlives its kiosk; without `available` or stats nobody said it runs.
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/old/state", b'{"language": "en", "camera": "ok"}', retained=True)
    (row,) = board.snapshot()
    style, cells = row_cells(row, clock.t, stale_s=180)
    assert style == "bold yellow" and cells[1] == "not announced"
    board.feed("bias-mirror/old/available", b"online")
    style, cells = row_cells(row, clock.t, stale_s=180)
    assert style == "green" and cells[1] == "online"


def test_a_payload_that_fails_the_schema_is_shown_with_what_is_wrong() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/k/stats", stats(1, NOON, 3, NOON - 60, 3))
    assert board.bad_messages == 0 and board.last_problem is None
    # A kiosk with a newer schema, and one that sends a rate out of range.
    board.feed("bias-mirror/k/stats", stats(2, NOON + 60, 1, NOON - 60, 4, schema=2))
    assert board.last_problem is not None and board.last_problem.startswith("k stats: schema")
    board.feed("bias-mirror/k/stats", stats(3, NOON + 120, 1, NOON - 60, 5, disagreement_rate=7))
    assert board.last_problem.startswith("k stats: disagreement_rate: Input should be less")
    assert board.rows["k"].visitors_today(dt.date(2026, 3, 14)) == (3, False)  # as before
    console = Console(record=True, width=200)
    console.print(render_table(board, stale_s=180, now=NOON + 130))
    text = console.export_text()
    assert "2 malformed message(s) ignored; last: k stats: disagreement_rate" in text


def test_what_a_kiosk_sends_is_what_the_monitor_reads() -> None:
    """The aggregator's own payload, through JSON, as the broker hands it to the monitor; and a
    newer kiosk's extra key is read past, not refused."""
    wall = Clock(NOON - 60)
    agg = StatsAggregator(
        k_min_sessions=1, presence_min_s=0.5, presence_gap_s=2.0, clock=lambda: wall.t, wall=wall
    )
    t = NOON - 60
    for i in range(40):  # one visitor for 4 s whom only the right-hand model finds
        agg.on_result(result(t + i * 0.1, left=False, right=True))
    agg.on_result(result(t + 10, left=False, right=False))
    wall.t = NOON
    sent = json.loads(agg.snapshot(queue_dropped=2).to_json())
    board = KioskBoard(clock=Clock(NOON))
    board.feed("bias-mirror/k/stats", json.dumps({**sent, "added_later": {"x": 1}}).encode())
    assert board.bad_messages == 0, board.last_problem
    row = board.rows["k"]
    assert row.visitors_today(dt.date(2026, 3, 14)) == (1, False)
    assert row.disagreement == 1.0 and row.missed_by_both == 0.0 and row.queue_dropped == 2


def test_hostile_payloads_change_nothing_and_render_as_plain_text() -> None:
    """Found by fault injection: each of these killed the network thread or crashed the monitor
    at every start while retained. Now each is counted and leaves the row as it was."""
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/k/available", b"online")
    good = stats(1, NOON, 3, NOON - 60, 3)
    board.feed("bias-mirror/k/stats", good)
    board.feed("bias-mirror/k/state", b'{"language": "de", "paused": false, "backend": "cpu"}')
    before = copy.deepcopy(board.rows["k"])
    deep = b'{"seq": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for topic, payload in [
        (
            "bias-mirror/k/stats",
            stats(2, NOON + 60, 1, NOON - 60, 4).replace(b'"seq": 2', b'"seq": Infinity'),
        ),
        (
            "bias-mirror/k/stats",
            stats(2, NOON + 60, 1, NOON - 60, 4).replace(b'"seq": 2', b'"seq": 1e999'),
        ),
        ("bias-mirror/k/stats", deep),
        ("bias-mirror/k/stats", stats(3, NOON + 120, 1, NOON - 60, 5, disagreement_rate="lots")),
        ("bias-mirror/k/stats", stats(4, NOON + 180, 1, NOON - 60, 6, errors={"x": "many"})),
        ("bias-mirror/k/state", b'{"language": {"nested": 1}, "paused": "no"}'),
    ]:
        board.feed(topic, payload)
    assert board.bad_messages == 6
    assert board.rows["k"] == before  # nothing half-applied
    board.feed("bias-mirror/k/state", b'{"language": "[b]x[/b]", "backend": "[link=x]y"}')
    table = render_table(board, stale_s=180, now=NOON + 1)
    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert "[link=x]y" in text  # shown as the characters the kiosk sent, not as markup


def args(**kw: Any) -> argparse.Namespace:
    base = {
        "host": "127.0.0.1",
        "port": 1,
        "username": None,
        "password_file": None,
        "ca_file": None,
        "prefix": "bias-mirror",
        "stale_s": 180.0,
        "once": True,
    }
    return argparse.Namespace(**{**base, **kw})


def test_bad_arguments_get_one_clear_error(tmp_path: Path, capsys: Any) -> None:
    assert monitor_main(args(password_file=tmp_path / "nope", username="staff")) == 2
    assert "--password-file" in capsys.readouterr().err
    assert monitor_main(args(ca_file=tmp_path / "ca.crt")) == 2
    assert "--ca-file" in capsys.readouterr().err
    (tmp_path / "pw").write_text("x")
    assert monitor_main(args(password_file=tmp_path / "pw")) == 2
    assert "needs --username" in capsys.readouterr().err
    # Values paho raised on inside its thread, or that the kiosk's own config refuses.
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    (tmp_path / "ca.pem").write_text("no certificate here\n")
    for bad, says in (
        ({"port": 0}, "not a TCP port"),
        ({"port": 99999}, "not a TCP port"),
        ({"host": " "}, "--host is empty"),
        ({"prefix": "#"}, "not a topic prefix"),
        ({"prefix": "a/+/b"}, "not a topic prefix"),
        ({"stale_s": float("nan")}, "--stale-s"),
        ({"username": "staff", "password_file": tmp_path / "bin"}, "not UTF-8"),
        ({"ca_file": tmp_path / "ca.pem"}, "holds no PEM CA certificate"),
    ):
        assert monitor_main(args(**bad)) == 2, bad
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, (bad, err)


def test_once_against_no_broker_fails_clearly() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "installation", "monitor", "--port", "1", "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 1
    assert "cannot read from the broker 127.0.0.1:1" in res.stderr


def test_two_kiosks_reporting_under_one_id_are_flagged_a_restart_is_not() -> None:
    clock = Clock(NOON)
    board = KioskBoard(clock=clock)
    board.feed("bias-mirror/k/available", b"online")
    # A restart: the old run's last interval ends before the new run starts.
    board.feed("bias-mirror/k/stats", stats(1, NOON - 120, 1, NOON - 3600, 1))
    board.feed("bias-mirror/k/stats", stats(2, NOON - 60, 1, NOON - 3600, 2))
    board.feed("bias-mirror/k/stats", stats(1, NOON, 1, NOON - 58, 1))
    (row,) = board.snapshot()
    assert not row.id_shared(clock.t, 180)
    assert row_cells(row, clock.t, stale_s=180)[1][1] == "online"
    # A second kiosk with the same installation_id: both keep sending, interleaved.
    board.feed("bias-mirror/k/stats", stats(3, NOON + 30, 1, NOON - 3600, 3))
    assert row.id_shared(clock.t, 180)
    style, cells = row_cells(row, clock.t, stale_s=180)
    assert style == "bold red" and cells[1] == "id used by 2 kiosks"
    # The technician gives the second kiosk its own id: its old run falls silent, the flag goes.
    clock.t = NOON + 300
    board.feed("bias-mirror/k/stats", stats(2, NOON + 300, 1, NOON - 58, 2))
    assert not row.id_shared(clock.t, 180)
