"""The second step after the schema: do the files a config names exist?

Kept out of the pydantic validators so that `Config()` and `parse_config` never touch the disk
(a config can be built and tested anywhere); `bias-mirror validate-config` and every entry point
that starts the kiosk (installation.runtime.build_runtime) run it, and it reports in the same
`FILE:LINE: key = value: message` form as the schema's errors.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import yaml

from installation import paths
from installation.config import (
    Config,
    ConfigError,
    ConfigProblem,
    MqttConfig,
    is_path_uri,
    load_config_text,
    node_line,
)

BUNDLE_FILES = ("model.tflite", "card.json")


def bundle_problem(folder: Path, *, load: bool = False) -> str | None:
    """Why `folder` is not a model bundle the kiosk can load, or None: its files are there, its
    card follows the contract and its model is the one the card names (a corrupt bundle passed
    `validate-config` when only the files' presence was checked). Without `load` only the
    files' presence: the kiosk's own loader then reports the rest, per side."""
    from installation.inference.bundle import BundleError, load_bundle

    missing = [n for n in BUNDLE_FILES if not (folder / n).is_file()]
    if missing:
        return (
            f"missing model file {', '.join(missing)} in {folder}; fix the path, "
            "or run `make models` / copy the whole bundle folder there"
        )
    if not load:
        return None
    try:
        load_bundle(folder)  # the card against its schema, the model against its sha256
    except BundleError as exc:
        return str(exc)
    return None


def password_problem(path: Path) -> str | None:
    """Why the password file at `path` cannot give a password, or None."""
    if path.is_dir():
        return f"password file {path} is a folder; name the file that holds the password"
    if not path.is_file():
        return f"password file {path} not found; create it (chmod 600) or fix the path"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"password file {path} is not UTF-8 text; write the password in it as plain text"
    except OSError as exc:
        why = exc.strerror
        return f"cannot read the password file {path} ({why}); make it readable by the kiosk"
    if not text.strip():
        return f"password file {path} is empty; write the broker password in it"
    return None


def tls_problem(
    ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
) -> tuple[str, Path, str] | None:
    """(key, file, why) when these TLS files cannot set up a connection, else None: each must
    exist, the CA file hold PEM certificates, and a client certificate match its key. Checked
    here, where the message can name the file, not as an SSLError when the client is built."""
    named = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    for key, path in named.items():
        if path is not None and not path.is_file():
            return key, path, f"{path} not found; fix the path"
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, ValueError, OSError) as exc:
        why = f"{ca_file} holds no PEM CA certificate ({exc}); use the broker's CA file (PEM)"
        return "ca_file", ca_file, why
    if cert_file is not None:
        try:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except (ssl.SSLError, ValueError, OSError) as exc:
            why = (
                f"{cert_file} and its key are not a PEM client certificate and matching key "
                f"({exc}); use the pair made for this kiosk"
            )
            return "cert_file", cert_file, why
    return None


def mqtt_file_problems(mqtt: MqttConfig) -> list[tuple[tuple[str, ...], Path, str]]:
    """(key under `mqtt`, path, message) for each file the MQTT settings name that is missing
    or unusable. The publisher calls this too, so a config built in code fails as clearly."""
    out: list[tuple[tuple[str, ...], Path, str]] = []
    if mqtt.password_file is not None:
        msg = password_problem(mqtt.password_file)
        if msg is not None:
            out.append((("password_file",), mqtt.password_file, msg))
    tls = mqtt.tls
    if tls is not None and (bad := tls_problem(tls.ca_file, tls.cert_file, tls.key_file)):
        key, path, why = bad
        out.append((("tls", key), path, why))
    return out


def file_problems(
    config: Config,
    filename: str,
    text: str | None = None,
    *,
    models: bool = True,
    thorough: bool = False,
) -> list[ConfigProblem]:
    """Every missing file `config` names; lines are looked up in `text` (the YAML it came from)
    when given, so a key left at its default is reported without a line. `models=False` leaves
    the bundles to the loader (the kiosk runs on one side when the other cannot load);
    `thorough=True` (validate-config) also loads each bundle as the kiosk will and checks that
    a recording or image folder exists (the kiosk itself waits for a source that is not there
    yet, as for an unplugged camera, and its loader reports a broken bundle per side)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text else None
    except yaml.YAMLError:
        root = None  # parse_config has accepted this text; no lines rather than a second error
    found: list[tuple[tuple[str, ...], Path, str]] = []
    for side in ("left", "right") if models else ():
        folder: Path = getattr(config.models, side)
        msg = bundle_problem(folder, load=thorough)
        if msg is not None:
            found.append((("models", side), folder, msg))
    found += [(("mqtt", *loc), path, msg) for loc, path, msg in mqtt_file_problems(config.mqtt)]
    uri = config.source.uri
    if thorough and is_path_uri(uri) and not Path(uri).expanduser().exists():
        msg = (
            "no such video file or image folder; fix the path (a relative one is read from the "
            "config's folder, else from the working directory)"
        )
        found.append((("source", "uri"), Path(uri), msg))
    return [
        ConfigProblem(filename, node_line(root, loc), ".".join(loc), repr(str(path)), msg)
        for loc, path, msg in found
    ]


def load_checked_config(
    path: Path | None = None, *, models: bool = True, thorough: bool = False
) -> Config:
    """Load a config, then raise ConfigError listing every file it names that is missing or
    unusable (lines from the same text it was parsed from): what `validate-config`
    (thorough=True) and the kiosk's start run."""
    path = path or paths.DEFAULT_CONFIG
    config, text = load_config_text(path)
    problems = file_problems(config, str(path), text, models=models, thorough=thorough)
    if problems:
        raise ConfigError(problems)
    return config
