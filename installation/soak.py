"""`bias-mirror bench --soak FRAMES`: a museum day pushed through the real pipeline.

FRAMES frames of the demo clip (looping, decoded by OpenCV as the kiosk does) go through the
real pipeline (region, presence, both int8 models, verdicts, rarity), the stats aggregator and
the MQTT publisher talking to a real broker: `--broker HOST[:PORT]`, or a Mosquitto started on a
free loopback port for the run. A subscriber on the same broker receives every stats interval,
so the run also checks end to end that none was lost (`seq` without gaps) and that the last
cumulative frame count equals the frames pushed.

Frames carry a simulated 30 fps clock (frame i at i / 30 s), which also drives the aggregator,
so presence, visitor sessions and verdict windows behave as during a day at the kiosk while the
run itself goes as fast as the CPU allows. 864,000 frames = 8 h at 30 fps.

RSS, open file descriptors and threads are sampled before the first frame, at every 10 % and at
the end. Growth is reported from the start and from the 10 % mark (after the allocator and
the interpreters have warmed up): the issue's target is <= 10 MB RSS, no fd or thread growth.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from installation.bench_parts import cpu_info, machine_line
from installation.runtime import USER_ERRORS, Runtime, build_runtime, report_user_error
from installation.sources import SourceError, open_source
from installation.sources.demo import demo_clip_path
from installation.stats import StatsAggregator
from installation.types import Frame

if TYPE_CHECKING:
    from installation.mqtt import MqttPublisher

logger = logging.getLogger(__name__)

SIM_FPS = 30.0  # the kiosk camera's rate: the simulated clock of the soak
STATS_INTERVAL_S = 5.0  # real seconds between stats intervals: many publishes per run
CONNECT_TIMEOUT_S = 10.0
SOAK_ID = "soak"
CHECKPOINTS = 10  # a sample every 10 %


class SoakError(OSError):
    """A broker given with --broker that cannot be reached, or a bad --broker value."""


@dataclass(frozen=True)
class Sample:
    frames: int
    seconds: float
    rss_mb: float
    fds: int
    threads: int


def take_sample(proc: psutil.Process, frames: int, t0: float) -> Sample:
    return Sample(
        frames=frames,
        seconds=round(time.monotonic() - t0, 1),
        rss_mb=round(proc.memory_info().rss / 2**20, 1),
        fds=proc.num_fds(),
        threads=proc.num_threads(),
    )


@dataclass
class StatsListener:
    """Receives this soak's stats intervals on the broker, as a staff dashboard would."""

    host: str
    port: int
    topic: str
    seqs: list[int] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{time.time_ns()}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda c, u, m, r, p: self.ready.set()
        self.client.on_message = self._on_message

    def start(self) -> bool:
        try:
            self.client.connect(self.host, self.port)
        except OSError as exc:  # refused, unknown host, unreachable: say so at once
            logger.error("soak: MQTT broker %s:%d: %s", self.host, self.port, exc)
            return False
        self.client.loop_start()
        return self.ready.wait(CONNECT_TIMEOUT_S)

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
            seq = int(payload["seq"])
        except (ValueError, KeyError, TypeError):
            logger.warning("soak: unreadable stats message on %s", msg.topic)
            return
        with self._lock:
            if msg.retain and not self.seqs:
                return  # a retained interval of an earlier run on this broker
            self.seqs.append(seq)
            self.last = payload

    def count(self) -> int:
        with self._lock:
            return len(self.seqs)

    def wait_for_frames(self, frames: int, timeout: float) -> bool:
        """Wait until an interval whose cumulative count covers `frames` has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.last.get("cumulative", {}).get("frames", -1) >= frames:
                    return True
            time.sleep(0.05)
        return False

    def summary(self) -> dict[str, Any]:
        with self._lock:
            seqs = sorted(set(self.seqs))
            missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs)) if seqs else []
            return {
                "received": len(self.seqs),
                "first_seq": seqs[0] if seqs else None,
                "last_seq": seqs[-1] if seqs else None,
                "missing_seqs": missing[:20],
                "cumulative_frames": self.last.get("cumulative", {}).get("frames"),
                "cumulative_sessions": self.last.get("cumulative", {}).get("sessions"),
                "errors": self.last.get("cumulative", {}).get("errors"),
            }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def parse_broker(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "1883")
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not host or not 1 <= number <= 65535:
        raise SoakError(f"--broker {value!r}: use HOST or HOST:PORT, e.g. 127.0.0.1:1883")
    return host, number


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_path() -> str | None:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and Path(cand).is_file():
            return cand
    return None


@contextlib.contextmanager
def local_broker() -> Iterator[tuple[str, int] | None]:
    """A Mosquitto for this run on a free loopback port (anonymous, no persistence), or None
    when it is not installed."""
    exe = mosquitto_path()
    if exe is None:
        logger.warning("soak: mosquitto not installed (apt-get install mosquitto); no MQTT")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bias-mirror-soak-") as tmp:
        port = _free_port()
        conf = Path(tmp) / "mosquitto.conf"
        # As root, mosquitto would drop to user "mosquitto"; keep the caller's user.
        log = Path(tmp) / "mosquitto.log"
        conf.write_text(
            f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence false\nlog_dest file {log}\n"
        )
        proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                time.sleep(0.05)
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                logger.warning(
                    "soak: mosquitto exited at start (code %s); no MQTT. %s", proc.returncode, tail
                )
                yield None
            else:
                yield "127.0.0.1", port
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()


def _growth(a: Sample, b: Sample) -> dict[str, float]:
    return {
        "rss_mb": round(b.rss_mb - a.rss_mb, 1),
        "fds": b.fds - a.fds,
        "threads": b.threads - a.threads,
    }


def run_soak(config_path: Path | None, frames: int, broker: str | None) -> dict[str, Any]:
    """Push `frames` frames through the pipeline + stats (+ MQTT); the figures as a dict."""
    if frames < 1:
        raise SoakError(f"--soak {frames}: give a number of frames >= 1 (864000 = 8 h at 30 fps)")
    target = parse_broker(broker) if broker else None
    rt = build_runtime(config_path, keep_frame=True)  # the kiosk keeps the frame too
    cfg = rt.config
    sim_now = [0.0]
    agg = StatsAggregator(
        k_min_sessions=cfg.privacy.k_min_sessions,
        presence_min_s=cfg.region.presence_min_s,
        presence_gap_s=cfg.region.presence_gap_s,
        clock=lambda: sim_now[0],
    )
    agg.set_backend(rt.backend)
    rt.pipeline.subscribe(agg.on_result)
    with contextlib.ExitStack() as stack:
        where = target or stack.enter_context(local_broker())
        mqtt_info: dict[str, Any] = {"broker": None}
        publisher = listener = None
        if where is not None:
            publisher, listener = _start_mqtt(rt, agg, where, given=target is not None)
            stack.callback(listener.close)
            mqtt_info["broker"] = f"{where[0]}:{where[1]}" + ("" if target else " (local)")
        src = open_source(str(demo_clip_path()), loop=True)
        stack.callback(src.close)
        proc = psutil.Process()
        t0 = time.monotonic()
        samples = [take_sample(proc, 0, t0)]
        marks = {round(frames * k / CHECKPOINTS) for k in range(1, CHECKPOINTS + 1)}
        for i in range(1, frames + 1):
            frame = src.read()
            if frame is None:  # a looping file never ends; a broken one does
                raise SourceError(f"{src.description}: ended after {i - 1} frames while looping")
            sim_now[0] = (i - 1) / SIM_FPS
            rt.pipeline.process(Frame(i - 1, sim_now[0], frame.image))
            if i in marks:
                samples.append(take_sample(proc, i, t0))
                logger.info("soak: %s", samples[-1])
        wall = time.monotonic() - t0
        if publisher is not None and listener is not None:
            mqtt_info.update(_stop_mqtt(publisher, listener, frames))
    rt.pipeline.unsubscribe(agg.on_result)
    return {
        "frames": frames,
        "simulated_hours": round(frames / SIM_FPS / 3600, 2),
        "wall_s": round(wall, 1),
        "fps": round(frames / wall, 1) if wall > 0 else None,
        "backend": rt.backend,
        "cpu": cpu_info(),
        "samples": [asdict(s) for s in samples],
        "growth_from_start": _growth(samples[0], samples[-1]),
        "growth_from_10pct": _growth(samples[1], samples[-1]),
        "mqtt": mqtt_info,
    }


def _start_mqtt(
    rt: Runtime, agg: StatsAggregator, where: tuple[str, int], given: bool
) -> tuple[MqttPublisher, StatsListener]:
    from installation.mqtt import MqttPublisher

    cfg = rt.config
    mcfg = cfg.mqtt.model_copy(
        update={
            "enabled": True,
            "host": where[0],
            "port": where[1],
            "stats_interval_s": STATS_INTERVAL_S,
            "dev_short_interval": True,  # a soak compresses a day: many short intervals
        }
    )
    if not given:  # the local broker is anonymous and plain
        mcfg = mcfg.model_copy(update={"username": None, "password_file": None, "tls": None})
    listener = StatsListener(where[0], where[1], f"{mcfg.topic_prefix}/{SOAK_ID}/stats")
    if not listener.start():
        listener.close()
        raise SoakError(
            f"no MQTT broker answered at {where[0]}:{where[1]} within {CONNECT_TIMEOUT_S:.0f} s; "
            "start it, fix --broker, or leave --broker out to use a local mosquitto"
        )
    publisher = MqttPublisher(
        mcfg,
        SOAK_ID,
        agg,
        state=lambda: {"language": cfg.display.language, "paused": False, "backend": rt.backend},
        on_command=lambda name, value: (False, "soak run: commands are not applied"),
        privacy=cfg.privacy,
    )
    publisher.start()
    if not publisher.ready.wait(CONNECT_TIMEOUT_S):
        logger.warning("soak: the publisher is not connected yet; its intervals are queued")
    return publisher, listener


def _stop_mqtt(publisher: MqttPublisher, listener: StatsListener, frames: int) -> dict[str, Any]:
    publisher.stop(timeout=5.0)  # publishes the final interval, which counts every frame
    listener.wait_for_frames(frames, timeout=5.0)
    return {
        "connects": publisher.connects,
        "queue_dropped": publisher.queue_dropped,
        "stats": listener.summary(),
    }


def _print_human(r: dict[str, Any]) -> None:
    print(
        f"soak: {r['frames']:,} frames ({r['simulated_hours']} h at {SIM_FPS:.0f} fps) in "
        f"{r['wall_s']:.0f} s wall, {r['fps']} frames/s, backend {r['backend']}"
    )
    print(machine_line(r["cpu"]))
    print(f"{'frames':>10} {'wall s':>8} {'RSS MB':>8} {'fds':>5} {'threads':>7}")
    for s in r["samples"]:
        print(
            f"{s['frames']:>10,} {s['seconds']:>8.1f} {s['rss_mb']:>8.1f} {s['fds']:>5} "
            f"{s['threads']:>7}"
        )
    for label, key in (("from start", "growth_from_start"), ("from 10 %", "growth_from_10pct")):
        g = r[key]
        print(
            f"growth {label:10s} RSS {g['rss_mb']:+.1f} MB, fds {g['fds']:+d}, "
            f"threads {g['threads']:+d}"
        )
    m = r["mqtt"]
    if m["broker"] is None:
        print("mqtt: no broker (mosquitto not installed and no --broker): stats not published")
        return
    st = m["stats"]
    print(
        f"mqtt {m['broker']}: {st['received']} stats intervals received (seq "
        f"{st['first_seq']}..{st['last_seq']}, missing {st['missing_seqs'] or 'none'}), "
        f"cumulative frames {st['cumulative_frames']}, sessions {st['cumulative_sessions']}, "
        f"errors {st['errors'] or 'none'}; {m['connects']} connect(s), "
        f"{m['queue_dropped']} interval(s) dropped"
    )


SOAK_USER_ERRORS: tuple[type[BaseException], ...] = (*USER_ERRORS, SoakError)


def soak_main(config: Path | None, frames: int, broker: str | None, as_json: bool) -> int:
    try:
        result = run_soak(config, frames, broker)
    except SOAK_USER_ERRORS as exc:
        return report_user_error(exc)
    except KeyboardInterrupt:
        print("soak interrupted", flush=True)
        return 130
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_human(result)
    return 0
