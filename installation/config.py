"""Kiosk configuration: YAML -> pydantic v2 models, with errors that name line, key and value.

Every model forbids unknown keys, so a typo is an error and not a silently ignored setting. The
schema never touches the disk: defaults are absolute (installation.paths), so `Config()` works
from any directory, and whether the named files exist is checked in a separate step
(installation.config_check) that `validate-config` and startup run.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from installation import paths
from installation.types import Language


class _Strict(BaseModel):
    # allow_inf_nan=False: `fps: .nan` is "not a finite number", not "should be <= 240".
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# Keys whose value may be a secret, spelt right or wrong (`passwd: hunter2` must not reach the
# journal either).
SECRET_KEY = re.compile(r"pass|pwd|secret|token|cred|private|api.?key", re.IGNORECASE)
MIN_STATS_INTERVAL_S = 60.0  # privacy: the finest time resolution a kiosk may send stats at
TOPIC_PREFIX = re.compile(r"(?=.{1,64}$)[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class SourceConfig(_Strict):
    uri: str = Field(
        "0",
        min_length=1,
        description="Camera index ('0'), /dev/videoN, video file, image folder, rtsp:// URL, "
        "GStreamer pipeline (contains '!'), or 'demo' for the generated demo clip.",
    )
    width: int = Field(640, ge=16, le=7680, description="Requested capture width in pixels.")

    @field_validator("uri", mode="before")
    @classmethod
    def _camera_index(cls, v: Any) -> Any:
        # `uri: 0` in YAML is an int; a camera index is meant. Blanks around a value are never
        # part of it (the source opener strips them too), so "   " is empty here as well.
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v.strip() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _reopen_order(self) -> SourceConfig:
        if self.reopen_min_s > self.reopen_max_s:
            raise ValueError(
                f"reopen_min_s ({self.reopen_min_s}) is larger than reopen_max_s "
                f"({self.reopen_max_s}); the first retry delay cannot exceed the cap"
            )
        return self

    height: int = Field(480, ge=16, le=4320, description="Requested capture height in pixels.")
    fps: float = Field(30, gt=0, le=240, description="Requested capture rate; files play at it.")
    loop: bool = Field(True, description="Kiosk: restart a video file or folder at its end.")
    reopen_min_s: float = Field(0.5, gt=0, le=60, description="First retry delay after a loss.")
    reopen_max_s: float = Field(30, gt=0, le=600, description="Longest retry delay (backoff cap).")
    stall_s: float = Field(
        10,
        gt=0,
        le=600,
        description="A source that reports OK but delivers no new frame for this long counts as "
        "frozen: the systemd watchdog stops and systemd restarts the kiosk.",
    )


class RegionConfig(_Strict):
    mode: Literal["guide_box", "detector"] = Field(
        "guide_box",
        description="guide_box: the fixed box on screen is the crop; detector: an OpenCV Haar "
        "detector re-centers the box on the largest face.",
    )
    box: tuple[float, float, float, float] = Field(
        (0.3, 0.15, 0.4, 0.6), description="Guide box x, y, w, h as fractions of the frame."
    )
    detector_scale: float = Field(
        0.5, gt=0.05, le=1, description="Downscale factor of the frame the detector sees."
    )
    presence_min_s: float = Field(
        0.4, ge=0, le=30, description="A visitor session starts after this long in the box."
    )
    presence_gap_s: float = Field(
        2.0, ge=0, le=60, description="A session ends after nobody was in the box this long."
    )
    occupancy_min: float = Field(
        0.12,
        gt=0,
        le=1,
        description="Share of the guide box that must differ from the learnt empty box for "
        "someone to count as present, whether or not either model finds a face. Raise it if "
        "passers-by behind the box count as visitors; lower it if a still visitor is lost.",
    )

    @field_validator("box")
    @classmethod
    def _box_inside(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x, y, w, h = v
        if not all(math.isfinite(c) for c in v):
            raise ValueError("box must be four finite numbers (no .nan or .inf)")
        if min(v) < 0 or w <= 0 or h <= 0 or x + w > 1 or y + h > 1:
            raise ValueError(
                "box must lie inside the frame: 0 <= x, y; w, h > 0; x + w <= 1; y + h <= 1"
            )
        return v


class ModelsConfig(_Strict):
    left: Path = Field(
        paths.MODELS_DIR / paths.BUNDLE_FOLDERS[0],
        description="Bundle folder of the left-hand model.",
    )
    right: Path = Field(
        paths.MODELS_DIR / paths.BUNDLE_FOLDERS[1],
        description="Bundle folder of the right-hand model.",
    )
    accelerator: Literal["auto", "edgetpu", "gpu", "cpu"] = Field(
        "auto", description="auto tries the Edge TPU, then the CPU; an explicit choice must load."
    )
    edgetpu_device: str | None = Field(
        None,
        pattern=r"^(usb|pci)(:\d+)?$",
        description="Edge TPU device string as in pycoral: 'usb', 'usb:0', 'pci:0'.",
    )
    num_threads: int = Field(
        1,
        ge=1,
        le=16,
        description="CPU threads per interpreter. With two models on the CPU and at least "
        "twice this many cores, the two judge each crop at once, one thread each.",
    )
    judge_fps: float = Field(
        10,
        gt=0,
        le=240,
        description="Kiosk: most camera frames a second that presence and both models judge; "
        "the mirror still shows every frame. Lower saves CPU, higher reacts sooner.",
    )


class DisplayConfig(_Strict):
    fullscreen: bool = Field(True, description="Fullscreen without a cursor (kiosk).")
    width: int = Field(1920, ge=320, le=7680, description="Window / screen width in pixels.")
    height: int = Field(1080, ge=240, le=4320, description="Window / screen height in pixels.")
    fps: int = Field(
        30,
        ge=1,
        le=240,
        description="Screen turns a second while no new camera frame comes (keys, clock); "
        "each new frame is drawn as soon as the pipeline hands it over.",
    )
    language: Language = Field("en", description="Start language (keys 1/2/3).")
    attract_after_s: float = Field(
        8, ge=0, le=3600, description="Show the attract screen after nobody was there this long."
    )
    mirror: bool = Field(True, description="Flip the live image like a mirror.")
    show_fps: bool = Field(False, description="Show a small fps / latency line for staff.")
    heatmaps: bool = Field(
        True,
        description="Show where each model looks (occlusion heatmaps on the crop, measured on "
        "the CPU through a second copy of each int8 model).",
    )
    gl_framebuffer: bool = Field(
        False,
        description="Draw the window through OpenGL (SDL's framebuffer acceleration). Off: the "
        "changed parts of the screen go to the display server as they are, about a tenth of a "
        "core at 1080p on a 2-core x86. On, with a software OpenGL (no GPU driver, a virtual "
        "machine, Xvfb), the same kiosk took 75-85 % of a core: turn it on only where a "
        "measurement (bias-mirror bench) shows it is cheaper.",
    )
    heatmap_hz: float = Field(
        6.0,
        gt=0,
        le=30,
        description="Heatmap updates per second (both models; ~5 ms of one core each): 5 or "
        "more keep the overlay live, each one more costs about half a per cent of a core.",
    )


class TlsConfig(_Strict):
    ca_file: Path = Field(
        description="CA certificate (PEM) that signed the broker's certificate.",
        examples=["/etc/bias-mirror/ca.crt"],
    )
    cert_file: Path | None = Field(None, description="Client certificate (PEM), optional.")
    key_file: Path | None = Field(None, description="Client key (PEM), optional.")
    insecure: bool = Field(False, description="Skip host name check (test setups only).")


class MqttConfig(_Strict):
    enabled: bool = Field(True, description="Publish anonymous stats to the staff broker.")
    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual for TLS).")
    username: str | None = Field(None, description="Broker user; password from password_file.")
    password_file: Path | None = Field(
        None,
        description="File holding the broker password. Without it, "
        "$CREDENTIALS_DIRECTORY/mqtt_password (systemd LoadCredential=) is used when present.",
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; null for plain TCP.")
    dev_short_interval: bool = Field(
        False,
        description="Development and tests only: allow stats_interval_s below "
        f"{MIN_STATS_INTERVAL_S:.0f} s (short intervals let a dashboard time single visits).",
    )
    stats_interval_s: float = Field(
        60,
        ge=1,
        le=86400,
        description=f"Seconds between stats; at least {MIN_STATS_INTERVAL_S:.0f} on a kiosk.",
    )

    @field_validator("stats_interval_s")
    @classmethod
    def _interval_coarse_enough(cls, v: float, info: ValidationInfo) -> float:
        # Privacy: counts are held back below k sessions, but the interval is still the time
        # resolution of everything sent; below a minute it starts to time one visit.
        if v < MIN_STATS_INTERVAL_S and not info.data.get("dev_short_interval"):
            raise ValueError(
                f"must be at least {MIN_STATS_INTERVAL_S:.0f} s (shorter intervals can time a "
                "single visitor); for development and tests set mqtt.dev_short_interval: true"
            )
        return v

    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery configs.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix.")
    topic_prefix: str = Field("bias-mirror", description="Root of this project's topics.")

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _topic_levels(cls, v: str) -> str:
        # A '+' or '#' (wildcards), a NUL or an empty level makes every publish fail inside
        # paho's network thread; refuse them here, with the line, instead.
        if not TOPIC_PREFIX.fullmatch(v):
            raise ValueError(
                "must be topic levels of letters, digits, '_', '-' or '.', separated by '/', "
                "at most 64 characters (no '+', '#', spaces or empty levels)"
            )
        return v

    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive in seconds.")
    queue_max: int = Field(
        1440, ge=1, le=100000, description="Stats intervals kept while the broker is down."
    )

    def password(self) -> str | None:
        """Read the password from its file or the systemd credential; never from the YAML."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir and (Path(cred_dir) / "mqtt_password").is_file():
            return (Path(cred_dir) / "mqtt_password").read_text(encoding="utf-8").strip()
        return None


class PrivacyConfig(_Strict):
    k_min_sessions: int = Field(
        5, ge=1, le=1000, description="Rates and means are published only above this many sessions."
    )


class Config(_Strict):
    installation_id: str = Field(
        "kiosk-1",
        pattern=r"^[a-z0-9_-]{1,64}$",
        description="Names this kiosk's MQTT subtree; lower-case letters, digits, _ and -.",
    )
    source: SourceConfig = Field(default_factory=SourceConfig, description="Camera or recording.")
    region: RegionConfig = Field(default_factory=RegionConfig, description="The judged crop.")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="The two bundles.")
    display: DisplayConfig = Field(default_factory=DisplayConfig, description="The screen.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Stats for staff.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Aggregation rules.")


# ---------------------------------------------------------------------------------------------
# Loading with line numbers

_HINTS = {
    "extra_forbidden": "remove the key or fix its spelling (see assets/config/default.yaml)",
    "missing": "add the key",
}
_KEY_HINTS: dict[tuple[str, ...], str] = {
    ("mqtt", "password"): "put the password in a file and set mqtt.password_file, "
    "or use systemd LoadCredential=mqtt_password",
    ("source", "uri"): "set a camera index ('0'), /dev/videoN, a video file, an image folder, "
    "a URL or 'demo'",
}


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    key: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key} = {self.value}: {self.message}"


class ConfigError(ValueError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `loc`, or of its deepest existing parent."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            key_node = next(
                (k for k, _ in node.value if getattr(k, "value", None) == str(part)), None
            )
            if nxt is None:
                return line
            node, line = nxt, (key_node.start_mark.line + 1 if key_node else line)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def is_path_uri(uri: str) -> bool:
    """Whether a source URI names a file or folder (not a camera index, a device, a URL, a
    GStreamer pipeline or the demo clip)."""
    uri = uri.strip()
    return not (
        not uri
        or uri.isdigit()
        or uri == "demo"
        or "://" in uri
        or "!" in uri
        or uri.startswith("/dev/")
    )


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make model, password and TLS paths absolute before validation (config dir, cwd, root);
    a relative recording or image folder is read from the config's folder when it is there
    (else, as before, from the working directory)."""
    source = data.get("source")
    if isinstance(source, dict) and isinstance(source.get("uri"), str):
        uri = source["uri"].strip()
        if is_path_uri(uri) and not Path(uri).expanduser().is_absolute():
            beside = base / uri
            if beside.exists():
                source["uri"] = str(beside.resolve())
    models = data.get("models")
    if isinstance(models, dict):
        for side in ("left", "right"):
            if isinstance(models.get(side), str):
                models[side] = str(paths.resolve(Path(models[side]), base))
    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict):
        if isinstance(mqtt.get("password_file"), str):
            mqtt["password_file"] = str(paths.resolve(Path(mqtt["password_file"]), base))
        tls = mqtt.get("tls")
        if isinstance(tls, dict):
            for k in ("ca_file", "cert_file", "key_file"):
                if isinstance(tls.get(k), str):
                    tls[k] = str(paths.resolve(Path(tls[k]), base))


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 50, 50, 2, 3, 3


def _short(value: object) -> str:
    """A bounded repr for error messages: a YAML alias bomb or a huge value must not be expanded
    (repr() of the whole input before cutting it took 71 s and 2 GB)."""
    return _REPR.repr(value)[:60]


def duplicate_keys(root: yaml.Node | None) -> list[tuple[str, int, int]]:
    """(dotted key, first line, repeated line) for each key given twice in one mapping: YAML
    loaders keep the last silently, so a second `source:` block would drop the first."""
    found: list[tuple[str, int, int]] = []
    # Breadth first, in document order: a node an alias shares is named where it first appears.
    todo: deque[tuple[yaml.Node, str]] = deque([(root, "")] if root is not None else [])
    visited: set[int] = set()
    while todo:  # iterative: parse_config has already refused too-deep nesting
        node, where = todo.popleft()
        # An alias shares its anchor's node: each node once, or an alias bomb (a few lines of
        # nested aliases) would be walked 10**9 times.
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else ""
                line = key_node.start_mark.line + 1
                dotted = f"{where}.{key}" if where else key
                if key and key != "<<":  # `<<` merges may repeat
                    if key in seen:
                        found.append((dotted, seen[key], line))
                    else:
                        seen[key] = line
                todo.append((value_node, dotted))
        elif isinstance(node, yaml.SequenceNode):
            todo += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
    return sorted(found, key=lambda d: d[2])


def parse_config(text: str, filename: str = "<config>", base: Path | None = None) -> Config:
    """Parse YAML text into a Config, or raise ConfigError listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        msg = "nested too deeply to be a kiosk config; a config is a few levels of keys"
        raise ConfigError([ConfigProblem(filename, None, "<yaml>", "-", msg)]) from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors fail with plain Python errors on an explicit tag that does not
        # fit its value (`!!int` alone: IndexError, `!!bool x`: KeyError; found by fuzzing).
        line = next((i for i, t in enumerate(text.splitlines(), 1) if "!!" in t), None)
        msg = (
            f"a value does not fit its YAML tag ({type(exc).__name__}: {_short(str(exc))}); "
            "remove the tag (!!int, !!float, !!bool, !!timestamp): the kiosk needs none"
        )
        raise ConfigError([ConfigProblem(filename, line, "<yaml>", "-", msg)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        msg = f"not valid YAML ({getattr(exc, 'problem', exc)}); check indentation and colons"
        raise ConfigError([ConfigProblem(filename, line, "<yaml>", "-", msg)]) from None
    duplicates = duplicate_keys(root)
    if duplicates:
        raise ConfigError(
            [
                ConfigProblem(
                    filename,
                    again,
                    key,
                    "-",
                    f"given twice (lines {first} and {again}); the second would silently replace "
                    "the first: merge them into one",
                )
                for key, first, again in duplicates
            ]
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(filename, 1, "<root>", _short(data), "the file must be a mapping")]
        )
    _resolve_paths(data, base or Path.cwd())
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            value = _short(err.get("input")) if err["type"] != "missing" else "<missing>"
            if err["type"] != "missing" and any(SECRET_KEY.search(str(p)) for p in loc):
                value = "'***'"  # never echo a secret into a log, even under a misspelt key
            msg = err["msg"].removeprefix("Value error, ")
            hint = _KEY_HINTS.get(tuple(str(p) for p in loc)) or _HINTS.get(err["type"])
            if hint:
                msg += f"; fix: {hint}"
            key = ".".join(str(p) for p in loc) or "<root>"
            problems.append(ConfigProblem(filename, node_line(root, loc), key, value, msg))
        raise ConfigError(problems) from None


# A kiosk config is a few KB; anything far larger is not one (or is /dev/zero).
MAX_CONFIG_BYTES = 1 << 20


def _file_problem(path: Path, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(str(path), None, "<file>", "-", message)])


def read_config_text(path: Path) -> str:
    """The text of a config file; a folder, a pipe or device, a file over MAX_CONFIG_BYTES or
    one that is not UTF-8 is a ConfigError that names the fix (reading a FIFO would block for
    ever, /dev/zero would fill the memory)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise _file_problem(path, f"cannot read ({exc.strerror}); check the path") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe or device)"
        raise _file_problem(path, f"is {kind}; name a YAML file, e.g. assets/config/default.yaml")
    if st.st_size > MAX_CONFIG_BYTES:
        raise _file_problem(
            path,
            f"is {st.st_size} bytes, far more than a kiosk config (at most {MAX_CONFIG_BYTES}); "
            "is this the right file?",
        )
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:  # grew since stat
            raise _file_problem(path, f"is larger than {MAX_CONFIG_BYTES} bytes; is this the file?")
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_problem(
            path, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise _file_problem(path, f"cannot read ({exc.strerror}); check the path") from None


def load_config_text(path: Path) -> tuple[Config, str]:
    """The config in a file and the text it was parsed from (for the lines of later checks)."""
    text = read_config_text(path)
    return parse_config(text, str(path), base=path.resolve().parent), text


def load_config(path: Path | None = None) -> Config:
    """Load a config file (default: assets/config/default.yaml)."""
    return load_config_text(path or paths.DEFAULT_CONFIG)[0]
