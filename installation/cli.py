"""`bias-mirror` command line. Each subcommand lives in its own module, imported on use."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def _cmd_validate(args: argparse.Namespace) -> int:
    from installation.config import ConfigError
    from installation.config_check import load_checked_config

    try:
        load_checked_config(Path(args.file), thorough=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from installation.kiosk import run_kiosk

    return run_kiosk(args.config)


def _cmd_demo(args: argparse.Namespace) -> int:
    from installation.kiosk import run_demo

    return run_demo(max_frames=args.max_frames)


def _cmd_replay(args: argparse.Namespace) -> int:
    from installation.replay import replay_main

    return replay_main(args.source, args.report, args.config, args.max_frames)


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0, e.g. 3")
    return value


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.soak is not None:
        from installation.soak import soak_main

        return soak_main(args.config, args.soak, args.broker, as_json=args.json)
    from installation.bench import bench_main

    return bench_main(as_json=args.json, config=args.config, seconds=args.seconds)


def _cmd_monitor(args: argparse.Namespace) -> int:
    from installation.monitor import monitor_main

    return monitor_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bias-mirror",
        description="Bias Mirror kiosk: two face models judge the same live crop side by side.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the kiosk")
    p.add_argument("--config", type=Path, default=None, help="config YAML (default: shipped)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="kiosk on the shipped models and a generated demo clip")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("replay", help="run the pipeline headless over a recording")
    p.add_argument("source", help="video file, image folder or any source URI")
    p.add_argument("--report", type=Path, required=True, help="JSON lines output, one per frame")
    p.add_argument("--config", type=Path, default=None, help="config YAML (default: shipped)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("validate-config", help="check a config file")
    p.add_argument("file", help="config YAML")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("bench", help="latency, throughput, render fps and memory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--config", type=Path, default=None, help="config YAML (models to bench)")
    p.add_argument("--seconds", type=_seconds, default=3.0, help="time budget per measurement")
    p.add_argument(
        "--soak",
        type=int,
        metavar="FRAMES",
        default=None,
        help="instead: push FRAMES frames through pipeline, stats and MQTT, reporting RSS, fds "
        "and threads every 10%% (864000 = 8 h at 30 fps)",
    )
    p.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        default=None,
        help="--soak: publish to this broker, which must let an anonymous client read the "
        "stats (default: a local mosquitto for the run)",
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("monitor", help="staff view of every kiosk on a broker")
    p.add_argument("--host", default="127.0.0.1", help="broker host")
    p.add_argument("--port", type=int, default=1883, help="broker port")
    p.add_argument("--username", default=None, help="broker user (read-only staff account)")
    p.add_argument("--password-file", type=Path, default=None, help="file with the password")
    p.add_argument("--ca-file", type=Path, default=None, help="CA certificate for TLS")
    p.add_argument("--prefix", default="bias-mirror", help="topic prefix")
    p.add_argument("--stale-s", type=float, default=180.0, help="flag kiosks silent this long")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.set_defaults(func=_cmd_monitor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
