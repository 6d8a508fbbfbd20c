"""The second step after the schema: do the files a config names exist?

Kept out of the pydantic validators so that `Config()` and `parse_config` never touch the disk
(a config can be built and tested anywhere); `bias-mirror validate-config` and every entry point
that starts the kiosk (installation.runtime.build_runtime) run it, and it reports in the same
`FILE:LINE: key = value: message` form as the schema's errors.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from installation import paths
from installation.config import (
    Config,
    ConfigError,
    ConfigProblem,
    MqttConfig,
    load_config,
    node_line,
)

BUNDLE_FILES = ("model.tflite", "card.json")


def bundle_problem(folder: Path) -> str | None:
    """Why `folder` is not a model bundle the kiosk can load, or None."""
    missing = [n for n in BUNDLE_FILES if not (folder / n).is_file()]
    if not missing:
        return None
    return (
        f"missing model file {', '.join(missing)} in {folder}; fix the path, "
        "or run `make models` / copy the whole bundle folder there"
    )


def mqtt_file_problems(mqtt: MqttConfig) -> list[tuple[tuple[str, ...], Path, str]]:
    """(key under `mqtt`, path, message) for each file the MQTT settings name that is missing.
    The publisher calls this too, so a config built in code fails as clearly as a file."""
    out: list[tuple[tuple[str, ...], Path, str]] = []
    if mqtt.password_file is not None and not mqtt.password_file.is_file():
        msg = f"password file {mqtt.password_file} not found; create it (chmod 600) or fix the path"
        out.append((("password_file",), mqtt.password_file, msg))
    if mqtt.tls is not None:
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(mqtt.tls, name)
            if path is not None and not path.is_file():
                out.append((("tls", name), path, f"{path} not found; fix the path"))
    return out


def file_problems(
    config: Config, filename: str, text: str | None = None, *, models: bool = True
) -> list[ConfigProblem]:
    """Every missing file `config` names; lines are looked up in `text` (the YAML it came from)
    when given, so a key left at its default is reported without a line. `models=False` leaves
    the bundles to the loader (the kiosk runs on one side when the other cannot load)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text else None
    except yaml.YAMLError:
        root = None  # parse_config has accepted this text; no lines rather than a second error
    found: list[tuple[tuple[str, ...], Path, str]] = []
    for side in ("left", "right") if models else ():
        folder: Path = getattr(config.models, side)
        msg = bundle_problem(folder)
        if msg is not None:
            found.append((("models", side), folder, msg))
    found += [(("mqtt", *loc), path, msg) for loc, path, msg in mqtt_file_problems(config.mqtt)]
    return [
        ConfigProblem(filename, node_line(root, loc), ".".join(loc), repr(str(path)), msg)
        for loc, path, msg in found
    ]


def check_files(config: Config, path: Path | None, *, models: bool = True) -> None:
    """Raise ConfigError listing every missing file; `path` is the YAML `config` came from."""
    text = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None  # loaded a moment ago; without lines is still a clear report
    problems = file_problems(
        config, str(path) if path is not None else "<config>", text, models=models
    )
    if problems:
        raise ConfigError(problems)


def load_checked_config(path: Path | None = None, *, models: bool = True) -> Config:
    """load_config, then check_files: what `validate-config` and the kiosk's start run."""
    path = path or paths.DEFAULT_CONFIG
    config = load_config(path)
    check_files(config, path, models=models)
    return config
