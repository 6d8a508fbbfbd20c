"""`bias-mirror monitor`: a live terminal view of every kiosk on a broker, for staff.

The model (`installation.monitor_model.KioskBoard`) folds the messages into rows; this module
connects read-only (a staff account needs no write rights) and renders the rows with rich.
`--once` prints one snapshot after the retained messages arrived and exits (cron mails, tests).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from typing import Any

from installation.config import TlsConfig
from installation.monitor_model import KioskBoard, KioskRow, local_day
from installation.mqtt.client import build_client, guard_callbacks, is_auth_failure

logger = logging.getLogger(__name__)

SETTLE_S = 0.7  # after SUBACK: the broker sends all retained messages right away
CONNECT_TIMEOUT_S = 8.0


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def row_cells(r: KioskRow, now: float, stale_s: float) -> tuple[str, list[str]]:
    """(row style, cell texts) of one kiosk; the style flags what needs a look."""
    if r.online is False:
        status, style = "offline", "bold red"
    elif r.stale(now, stale_s):
        heard = now - (r.last_stats or r.first_seen)
        status, style = f"stale ({_ago(heard)})", "bold yellow"
    elif r.id_shared(now, stale_s):
        status, style = "id used by 2 kiosks", "bold red"
    elif r.online is None:
        # Heard of only through its retained `state` (no `available`, no stats yet): a kiosk
        # long gone whose state outlived it looks like this too. Not "online" until it says so.
        status, style = "not announced", "bold yellow"
    elif r.camera == "lost":
        status, style = "camera lost", "bold red"
    elif r.camera == "ended":
        status, style = "recording ended", "bold red"
    elif r.models_failed:
        status, style = f"model {'+'.join(r.models_failed)} failed", "bold red"
    elif r.paused:
        status, style = "paused", "cyan"
    else:
        status, style = "online", "green"
    if r.since is None:
        since = "-"
    else:
        clock = time.strftime("%H:%M", time.localtime(r.since))
        since = clock if r.since_exact else f"before {clock}"
    visitors, partial = r.visitors_today(local_day(now))
    errors = str(r.errors_today)
    if r.last_errors:
        errors += " (" + ", ".join(f"{k} {v}" for k, v in sorted(r.last_errors.items())) + ")"
    fps = "-" if r.fps_process is None else f"{r.fps_process:.0f} / {r.fps_render or 0:.0f}"
    cells = [
        r.installation_id,
        status,
        since,
        ("≥" if partial and r.day else "") + (str(visitors) if r.day else "-"),
        fps,
        "-" if r.disagreement is None else f"{r.disagreement:.0%}",
        "-" if r.missed_by_both is None else f"{r.missed_by_both:.0%}",
        errors,
        str(r.dropped_today),
        r.language or "-",
        r.backend or "-",
    ]
    return style, cells


COLUMNS = (
    "kiosk",
    "status",
    "since",
    "visitors today",
    "fps (judge / draw)",
    "disagree",
    "missed by both",
    "errors today",
    "dropped",
    "lang",
    "backend",
)


def render_table(board: KioskBoard, stale_s: float, now: float | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text

    now = time.time() if now is None else now
    rows = board.snapshot()
    n_off = sum(1 for r in rows if r.online is False)
    n_stale = sum(1 for r in rows if r.online is not False and r.stale(now, stale_s))
    caption = Text(
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}; "
        "disagree / missed by both '-' = withheld (fewer visitors than k)"
    )
    if board.bad_messages:
        # Plain text too: the reason may quote a kiosk's key names.
        caption.append(
            f"\n{board.bad_messages} malformed message(s) ignored; last: {board.last_problem}",
            style="bold red",
        )
    table = Table(
        title=f"Bias Mirror: {len(rows)} kiosk(s), {n_off} offline, {n_stale} stale",
        caption=caption,
        expand=True,
    )
    for col in COLUMNS:
        table.add_column(col, no_wrap=col in ("kiosk", "status"))
    errors_col = COLUMNS.index("errors today")
    for r in rows:
        style, cells = row_cells(r, now, stale_s)
        # Plain text: a kiosk's strings (language, backend, error kinds) are never rich markup.
        texts = [Text(c) for c in cells]
        if r.errors_today:
            texts[errors_col].stylize("bold red")  # faults today stand out on a green row too
        table.add_row(*texts, style=style)
    if not rows:
        table.add_row("(no kiosk on this broker yet)", *[""] * (len(COLUMNS) - 1))
    return table


class Connection:
    """A read-only paho client feeding the board; records why a connect failed."""

    def __init__(self, args: argparse.Namespace, board: KioskBoard) -> None:
        self.subscribed = threading.Event()
        self.settled = threading.Event()  # subscribed, or the first attempt failed
        self.refused: str | None = None
        self.auth_failed = False
        pw = args.password_file.read_text(encoding="utf-8").strip() if args.password_file else None
        self.client = build_client(
            f"bias-mirror-monitor-{time.time_ns()}",
            username=args.username,
            password=pw,
            tls=TlsConfig(ca_file=args.ca_file) if args.ca_file else None,
        )
        self._prefix = args.prefix
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = lambda c, u, m: board.feed(m.topic, bytes(m.payload), m.retain)
        guard_callbacks(self.client)
        self.client.connect_async(args.host, args.port, keepalive=30)
        self.client.loop_start()

    def _on_subscribe(self, c: Any, u: Any, mid: int, reasons: Any, p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self.refused = "subscription refused; the staff account needs read access"
        else:
            self.subscribed.set()
        self.settled.set()

    def _on_connect_fail(self, c: Any, u: Any) -> None:
        self.refused = self.refused or "unreachable"
        self.settled.set()

    def _on_connect(self, c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            self.settled.set()
            if is_auth_failure(reason):
                self.auth_failed = True
                c.disconnect()  # wrong credentials do not get better by retrying
            return
        c.subscribe([(f"{self._prefix}/+/{k}", 1) for k in ("available", "stats", "state")])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _check_args(args: argparse.Namespace) -> str | None:
    """Why these options cannot work, or None: the same checks as the kiosk's own config (one
    home each), so paho never meets a value it raises on inside its thread."""
    from installation.config import TOPIC_PREFIX
    from installation.config_check import password_problem, tls_problem

    if not args.host.strip():
        return "--host is empty; name the broker, e.g. --host 127.0.0.1"
    if not 1 <= args.port <= 65535:
        return f"--port {args.port} is not a TCP port; use 1-65535 (MQTT: 1883, with TLS 8883)"
    if not TOPIC_PREFIX.fullmatch(args.prefix):
        return (
            f"--prefix {args.prefix!r} is not a topic prefix; use the kiosks' mqtt.topic_prefix "
            "(letters, digits, _ . - and / between levels, no + or #), e.g. bias-mirror"
        )
    if not (math.isfinite(args.stale_s) and args.stale_s > 0):
        return f"--stale-s must be a number of seconds > 0, got {args.stale_s}"
    if args.password_file is not None:
        if not args.username:
            return "--password-file needs --username (the staff account)"
        if (why := password_problem(args.password_file)) is not None:
            return f"--password-file: {why}"
    if args.ca_file is not None and (bad := tls_problem(args.ca_file)) is not None:
        return f"--ca-file: {bad[2]}"
    return None


def monitor_main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    problem = _check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    board = KioskBoard(args.prefix)
    conn = Connection(args, board)
    console = Console()
    try:
        if args.once:
            conn.settled.wait(CONNECT_TIMEOUT_S)
            if not conn.subscribed.is_set():
                why = conn.refused or "no answer"
                print(
                    f"error: cannot read from the broker {args.host}:{args.port} ({why}); "
                    "check --host/--port, --username/--password-file and --ca-file",
                    file=sys.stderr,
                )
                return 1
            time.sleep(SETTLE_S)
            console.print(render_table(board, args.stale_s))
            return 0
        with Live(render_table(board, args.stale_s), console=console, refresh_per_second=2) as live:
            while True:
                time.sleep(0.5)
                live.update(render_table(board, args.stale_s))
                if conn.auth_failed:
                    print(
                        f"error: broker refused the login ({conn.refused}); "
                        "check --username/--password-file",
                        file=sys.stderr,
                    )
                    return 1
    except KeyboardInterrupt:
        return 0
    finally:
        conn.close()
