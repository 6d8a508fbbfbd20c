"""`bias-mirror monitor`: a live terminal view of every kiosk on a broker, for staff.

The model (`KioskBoard`) folds `available`, `stats` and `state` messages into one row per kiosk;
the view renders it with rich. Subscribes read-only; a staff account needs no write rights.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class KioskRow:
    installation_id: str
    online: bool | None = None
    since: float | None = None  # when `online` last changed (receipt time)
    last_seen: float = 0.0
    visitors_today: int = 0
    visitors_total: int | None = None
    fps: float | None = None
    disagreement: float | None = None
    errors: int = 0
    language: str | None = None
    paused: bool | None = None
    backend: str | None = None
    seen_intervals: set[str] = field(default_factory=set)


class KioskBoard:
    """Thread-safe state of all kiosks, fed with raw MQTT messages."""

    def __init__(self, prefix: str = "bias-mirror", clock: Any = time.time) -> None:
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self.rows: dict[str, KioskRow] = {}
        self.messages = 0
        self.bad_messages = 0

    def feed(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != self.prefix:
            return
        _, iid, kind = parts
        now = self._clock()
        with self._lock:
            self.messages += 1
            row = self.rows.setdefault(iid, KioskRow(iid))
            row.last_seen = now
            try:
                if kind == "available":
                    online = payload.decode() == "online"
                    if row.online != online:
                        row.online, row.since = online, now
                elif kind == "stats":
                    self._stats(row, json.loads(payload))
                elif kind == "state":
                    st = json.loads(payload)
                    row.language, row.paused = st.get("language"), st.get("paused")
                    row.backend = st.get("backend")
            except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
                self.bad_messages += 1

    def _stats(self, row: KioskRow, s: dict[str, Any]) -> None:
        key = f"{s.get('cumulative', {}).get('since')}#{s.get('seq', s['interval']['start'])}"
        if key in row.seen_intervals:
            return  # a re-sent interval after a reconnect: count it once
        row.seen_intervals.add(key)
        today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        if str(s["interval"]["end"]).startswith(today):
            row.visitors_today += int(s.get("sessions", 0))
        row.visitors_total = s.get("cumulative", {}).get("sessions", row.visitors_total)
        row.fps = s.get("fps", {}).get("process")
        if "disagreement_rate" in s:
            row.disagreement = s["disagreement_rate"]
        row.errors += sum(int(v) for v in s.get("errors", {}).values())
        if row.online is None:
            row.online = True

    def snapshot(self) -> list[KioskRow]:
        with self._lock:
            return sorted(self.rows.values(), key=lambda r: r.installation_id)


def render_table(board: KioskBoard, stale_s: float) -> Any:
    from rich.table import Table

    now = time.time()
    table = Table(title=f"Bias Mirror kiosks ({len(board.rows)})", expand=True)
    for col in ("kiosk", "status", "since", "visitors today", "fps", "disagree", "errors", "lang"):
        table.add_column(col)
    for r in board.snapshot():
        stale = now - r.last_seen > stale_s
        status = "offline" if r.online is False else ("stale" if stale else "online")
        style = {"offline": "bold red", "stale": "yellow", "online": "green"}[status]
        since = time.strftime("%H:%M:%S", time.localtime(r.since)) if r.since else "-"
        table.add_row(
            r.installation_id,
            f"[{style}]{status}[/]",
            since,
            str(r.visitors_today),
            "-" if r.fps is None else f"{r.fps:.0f}",
            "-" if r.disagreement is None else f"{r.disagreement:.0%}",
            f"[red]{r.errors}[/]" if r.errors else "0",
            r.language or "-",
        )
    return table


def connect_board(args: argparse.Namespace, board: KioskBoard) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bias-mirror-monitor-{time.time_ns()}"
    )
    if args.username:
        pw = args.password_file.read_text().strip() if args.password_file else None
        client.username_pw_set(args.username, pw)
    if args.ca_file:
        client.tls_set(ca_certs=str(args.ca_file))

    def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the monitor: %s", reason)
            return
        for kind in ("available", "stats", "state"):
            c.subscribe(f"{args.prefix}/+/{kind}", qos=1)

    client.on_connect = on_connect
    client.on_message = lambda c, u, m: board.feed(m.topic, bytes(m.payload))
    client.connect_async(args.host, args.port, keepalive=30)
    client.loop_start()
    return client


def monitor_main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    board = KioskBoard(args.prefix)
    client = connect_board(args, board)
    console = Console()
    try:
        if args.once:
            time.sleep(2.0)  # retained messages arrive first
            console.print(render_table(board, args.stale_s))
            return 0
        with Live(render_table(board, args.stale_s), console=console, refresh_per_second=2) as live:
            while True:
                time.sleep(0.5)
                live.update(render_table(board, args.stale_s))
    except KeyboardInterrupt:
        return 0
    finally:
        client.loop_stop()
        client.disconnect()
