"""Config: defaults validate, every kind of mistake is reported with line, key, value and fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installation import paths
from installation.config import (
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    is_path_uri,
    load_config,
    parse_config,
)
from installation.config_check import load_checked_config
from installation.tools import default_config


@pytest.fixture
def bundles(tmp_path: Path, tiny_bundles: Path) -> Path:
    """A models folder with two bundles, as a museum would copy it."""
    out = tmp_path / "models"
    shutil.copytree(tiny_bundles / "tiny_baseline", out / "baseline")
    shutil.copytree(tiny_bundles / "tiny_dbvae", out / "debiased")
    return out


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _valid_yaml(models: Path) -> str:
    return f"""\
installation_id: foyer-1
source: {{uri: demo, width: 640, height: 480, fps: 30}}
region: {{mode: guide_box, box: [0.3, 0.15, 0.4, 0.6], occupancy_min: 0.12}}
models: {{left: {models / "baseline"}, right: {models / "debiased"}, accelerator: auto}}
display: {{fullscreen: true, width: 1920, height: 1080, fps: 60, language: de}}
mqtt: {{enabled: true, host: 127.0.0.1, port: 1883, stats_interval_s: 60, discovery: true}}
privacy: {{k_min_sessions: 5}}
"""


def test_design_example_validates(tmp_path: Path, bundles: Path) -> None:
    cfg = load_config(_write(tmp_path, _valid_yaml(bundles)))
    assert cfg.installation_id == "foyer-1"
    assert cfg.display.language == "de"
    assert cfg.models.left == bundles / "baseline"
    assert cfg.region.box == (0.3, 0.15, 0.4, 0.6)


def test_every_field_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            ann = field.annotation
            for sub in getattr(ann, "__args__", (ann,)):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    missing += walk(sub)
        return missing

    assert walk(Config) == []


def test_relative_model_paths_resolve_against_config_folder(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace(str(bundles), "models")
    cfg = load_config(_write(tmp_path, text))
    assert cfg.models.right == (tmp_path / "models" / "debiased").resolve()


@pytest.mark.parametrize(
    ("old", "new", "key", "line", "words"),
    [
        ("installation_id: foyer-1", "installation_id: Foyer 1", "installation_id", 1, "pattern"),
        ("width: 640,", "widht: 640,", "source.widht", 2, "spelling"),
        ("fps: 60,", "fps: 1000,", "display.fps", 5, "less than or equal"),
        ("fps: 30}", "fps: fast}", "source.fps", 2, "number"),
        ("0.4, 0.6]", "0.9, 0.6]", "region.box", 3, "inside the frame"),
        ("mode: guide_box", "mode: haar", "region.mode", 3, "guide_box"),
        ("occupancy_min: 0.12", "occupancy_min: 0", "region.occupancy_min", 3, "greater than 0"),
        ("language: de", "language: nl", "display.language", 5, "'en', 'de' or 'fr'"),
        ("port: 1883", "port: 70000", "mqtt.port", 6, "65535"),
        ("accelerator: auto", "accelerator: tpu", "models.accelerator", 4, "edgetpu"),
        # A 1 s interval would time single visits; 60 s is the least a kiosk may use.
        ("stats_interval_s: 60", "stats_interval_s: 1", "mqtt.stats_interval_s", 6, "at least 60"),
    ],
)
def test_each_mistake_names_line_key_value(
    tmp_path: Path, bundles: Path, old: str, new: str, key: str, line: int, words: str
) -> None:
    text = _valid_yaml(bundles)
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert problem.key == key
    assert problem.line == line
    assert words in problem.message
    assert str(path) in str(problem)


def test_missing_model_file_is_reported_by_the_file_check(tmp_path: Path, bundles: Path) -> None:
    (bundles / "debiased" / "model.tflite").unlink()
    path = _write(tmp_path, _valid_yaml(bundles))
    load_config(path)  # the schema alone never looks at the disk
    with pytest.raises(ConfigError) as err:
        load_checked_config(path)
    (problem,) = err.value.problems
    assert problem.key == "models.right"
    assert problem.line == 4
    assert "missing model file model.tflite" in problem.message
    assert "make models" in problem.message
    assert str(problem).startswith(f"{path}:4: models.right = ")


def test_config_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no assets/ here
    cfg = Config()
    assert cfg.models.left == paths.MODELS_DIR / "baseline"
    assert cfg.models.left.is_absolute() and cfg.models.right.is_absolute()
    # Written relative paths still resolve against the config's folder.
    for side in ("baseline", "debiased"):
        (tmp_path / "m" / side).mkdir(parents=True)  # empty: no model files in them
    text = "models: {left: m/baseline, right: m/debiased}\nmqtt: {password_file: pw}\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.models.left == tmp_path / "m" / "baseline"
    # ... and only the file check minds that they are not there, each with its line.
    with pytest.raises(ConfigError) as err:
        load_checked_config(tmp_path / "kiosk.yaml")
    lines = {p.key: p.line for p in err.value.problems}
    assert lines == {"models.left": 1, "models.right": 1, "mqtt.password_file": 2}


def test_shipped_default_config_is_generated_from_the_schema() -> None:
    shipped = paths.DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert shipped == default_config.render(), (
        "regenerate it: python -m installation.tools.default_config"
    )
    # It round-trips: loading it gives the schema's defaults, key for key.
    assert load_config(paths.DEFAULT_CONFIG) == Config()


def test_default_config_names_every_key_with_its_description() -> None:
    text = default_config.render()
    data = parse_config(text, "default.yaml", base=paths.DEFAULT_CONFIG.parent)

    def walk(model: type, prefix: str) -> list[tuple[str, str]]:
        out = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            out.append((prefix + name, field.description))
            for sub in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    out += walk(sub, f"{prefix}{name}.")
        return out

    comments = " ".join(line.lstrip("# ").strip() for line in text.splitlines() if "#" in line)
    for key, description in walk(Config, ""):
        leaf = key.rsplit(".", 1)[-1]
        assert f"{leaf}:" in text, key
        assert " ".join(description.split()[:4]) in comments, key
    assert data == Config()


def test_all_errors_reported_at_once(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("fps: 60,", "fps: 0,").replace("foyer-1", "FOYER")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert {p.key for p in err.value.problems} == {"display.fps", "installation_id"}


def test_inline_password_is_refused_and_not_echoed(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("port: 1883,", "port: 1883, password: hunter2,")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    msg = str(err.value)
    assert "mqtt.password" in msg
    assert "password_file" in msg
    assert "hunter2" not in msg


def test_password_from_file_and_systemd_credential(
    tmp_path: Path, bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    text = _valid_yaml(bundles).replace("port: 1883,", f"port: 1883, password_file: {secret},")
    assert load_config(_write(tmp_path, text)).mqtt.password() == "s3cret"

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("fromsystemd", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_config(_write(tmp_path, _valid_yaml(bundles))).mqtt.password() == "fromsystemd"


def test_missing_password_file(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("port: 1883,", "port: 1883, password_file: /nope/pw,")
    with pytest.raises(ConfigError) as err:
        load_checked_config(_write(tmp_path, text))
    (problem,) = err.value.problems
    assert problem.key == "mqtt.password_file" and problem.line == 6
    assert "create it (chmod 600)" in problem.message


def test_broken_yaml_names_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("source:\n  uri: demo\n   width: 3\n", "k.yaml")
    assert err.value.problems[0].line == 3


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(Path("/nonexistent/kiosk.yaml"))
    assert "cannot read" in str(err.value)


def test_non_utf8_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.yaml"
    path.write_bytes(b"installation_id: caf\xe9\n")  # Latin-1, as an old editor saves it
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "not UTF-8" in str(err.value) and "save the file as UTF-8" in str(err.value)


def test_deep_nesting_is_one_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("source: " + "[" * 5000 + "]" * 5000 + "\n", "k.yaml")
    assert "nested too deeply" in str(err.value)


def test_alias_bomb_is_refused_quickly_and_small() -> None:
    """A 1 KB YAML 'billion laughs' (9 x 6^8 = 15 million leaves): the error message must not
    expand it (repr() of the input took 71 s and 2.27 GB). Checked by memory, not by time."""
    import tracemalloc

    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    bomb.append("source: *i")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as err:
            parse_config("\n".join(bomb) + "\n", "k.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(err.value)
    assert len(text) < 5000 and "source" in text
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB to report a 1 KB file"


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("box: [0.3, 0.15, 0.4, 0.6]", "box: [.nan, .nan, .nan, .nan]", "region.box", "finite"),
        ("uri: demo", "uri: '   '", "source.uri", "a camera index ('0')"),  # blank is empty
        ("fps: 60", "fps: .nan", "display.fps", "finite number"),  # not "should be <= 240"
        ("fps: 30}", "fps: 30, reopen_min_s: 40, reopen_max_s: 20}", "source", "cap"),
        ("port: 1883", "port: 1883, topic_prefix: 'museum/+'", "mqtt.topic_prefix", "'+'"),
        ("port: 1883", "port: 1883, topic_prefix: 'a#'", "mqtt.topic_prefix", "'#'"),
        ("port: 1883", "port: 1883, discovery_prefix: 'ha//x'", "mqtt.discovery_prefix", "empty"),
        ("port: 1883", 'port: 1883, topic_prefix: "a\\0b"', "mqtt.topic_prefix", "levels"),
    ],
)
def test_values_that_used_to_pass_and_break_later_are_refused(
    tmp_path: Path, bundles: Path, old: str, new: str, key: str, words: str
) -> None:
    text = _valid_yaml(bundles)
    assert old in text
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text.replace(old, new, 1)))
    # A NaN box is named per coordinate ("region.box.0: ... finite number"), the rest once.
    keys = [f"{key}.{i}" for i in range(4)] if key == "region.box" else [key]
    assert [p.key for p in err.value.problems] == keys, err.value.problems
    for problem in err.value.problems:
        assert words in problem.message, problem


@pytest.mark.parametrize("key", ["passwd", "Password_File_x", "mqtt_secret", "token"])
def test_a_misspelt_secret_is_never_echoed(tmp_path: Path, bundles: Path, key: str) -> None:
    text = _valid_yaml(bundles).replace("port: 1883", f"port: 1883, {key}: hunter2")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    (problem,) = err.value.problems
    assert problem.key == f"mqtt.{key}" and "hunter2" not in str(err.value)


def test_camera_index_as_int(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("uri: demo", "uri: 0")
    assert load_config(_write(tmp_path, text)).source.uri == "0"


def test_shipped_configs_are_valid() -> None:
    for name in ("default.yaml", "demo.yaml"):
        load_checked_config(paths.ASSETS_DIR / "config" / name)  # the models ship with them


def test_validate_config_cli(tmp_path: Path, bundles: Path) -> None:
    good = _write(tmp_path, _valid_yaml(bundles))
    run = [sys.executable, "-m", "installation", "validate-config"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(_valid_yaml(bundles).replace("fps: 60,", "fsp: 60,"), encoding="utf-8")
    res = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=False)
    assert res.returncode == 1
    assert f"{bad}:5: display.fsp = 60: Extra inputs are not permitted" in res.stderr
    # A key that is right but names a file that is not there: the file check, same form.
    (bundles / "baseline" / "card.json").unlink()
    res = subprocess.run([*run, str(good)], capture_output=True, text=True, check=False)
    assert res.returncode == 1
    assert f"{good}:4: models.left = " in res.stderr
    assert "missing model file card.json" in res.stderr and "Traceback" not in res.stderr


def test_short_stats_intervals_only_with_the_dev_flag(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("stats_interval_s: 60", "stats_interval_s: 5")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert "mqtt.dev_short_interval" in str(err.value.problems[0])  # names the way out
    dev = text.replace("stats_interval_s: 5", "dev_short_interval: true, stats_interval_s: 5")
    assert load_config(_write(tmp_path, dev)).mqtt.stats_interval_s == 5


# -- the fault-injection cases of 2026-12-07 (late): each reproduced before it was fixed ----


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path, bundles: Path) -> None:
    """YAML loaders keep the last of two equal keys silently: a second `source:` block dropped
    the first (its width) without a word."""
    text = _valid_yaml(bundles) + "source:\n  uri: '1'\n"
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    (problem,) = err.value.problems
    assert problem.key == "source" and problem.line == 8
    assert "given twice (lines 2 and 8)" in problem.message and "merge them" in problem.message
    nested = "display:\n  fps: 30\n  language: de\n  fps: 60\n"
    with pytest.raises(ConfigError) as err:
        parse_config(nested, "k.yaml")
    assert [(p.key, p.line) for p in err.value.problems] == [("display.fps", 4)]


def test_special_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    """A FIFO blocked `validate-config` for ever and /dev/zero would fill the memory: only a
    regular file of a config's size is read."""
    fifo = tmp_path / "kiosk.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)  # returns at once: nothing opens the pipe
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(Path("/dev/zero"))
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="far more than a kiosk config"):
        load_config(big)


def test_a_relative_recording_is_read_from_the_config_folder(
    tmp_path: Path, bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the model paths are: `uri: clip.mp4` beside the config works from any directory;
    validate-config reports a recording that is in neither place."""
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    path = _write(tmp_path, _valid_yaml(bundles).replace("uri: demo", "uri: clip.mp4"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(path).source.uri == str(tmp_path / "clip.mp4")
    assert load_checked_config(path, thorough=True).source.uri == str(tmp_path / "clip.mp4")
    missing = _write(tmp_path, _valid_yaml(bundles).replace("uri: demo", "uri: nosuch.mp4"))
    assert load_config(missing).source.uri == "nosuch.mp4"  # left to the working directory
    load_checked_config(missing)  # the kiosk waits for it, as for an unplugged camera
    with pytest.raises(ConfigError) as err:
        load_checked_config(missing, thorough=True)
    (problem,) = err.value.problems
    assert problem.key == "source.uri" and problem.line == 2
    assert "no such video file or image folder" in problem.message
    for uri in ("0", "demo", "/dev/video0", "rtsp://cam/stream", "videotestsrc ! appsink"):
        assert not is_path_uri(uri), uri


def test_unusable_password_and_tls_files_are_config_errors(tmp_path: Path, bundles: Path) -> None:
    """A non-UTF-8 or empty password file and a CA file that holds no certificate passed
    `validate-config` and then stopped the kiosk with a traceback (exit 1, so systemd restarted
    it every 5 s): now the same one-line error from both."""
    pw = tmp_path / "pw"
    base = _valid_yaml(bundles)
    for content, says in ((b"\xff\xfe\x00", "not UTF-8"), (b"  \n", "is empty")):
        pw.write_bytes(content)
        text = base.replace("port: 1883,", f"port: 1883, username: k, password_file: {pw},")
        with pytest.raises(ConfigError) as err:
            load_checked_config(_write(tmp_path, text))
        (problem,) = err.value.problems
        assert problem.key == "mqtt.password_file" and says in problem.message
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    text = base.replace("port: 1883,", f"port: 8883, tls: {{ca_file: {ca}}},")
    with pytest.raises(ConfigError) as err:
        load_checked_config(_write(tmp_path, text))
    (problem,) = err.value.problems
    assert problem.key == "mqtt.tls.ca_file" and "holds no PEM CA certificate" in problem.message


def test_real_tls_files_pass_and_a_mismatched_key_does_not(tmp_path: Path) -> None:
    from installation.config_check import tls_problem
    from tests.mqtt_fixtures import make_ca

    a = make_ca(tmp_path / "a", client=True)
    b = make_ca(tmp_path / "b", client=True)
    assert tls_problem(a["ca"]) is None
    assert tls_problem(a["ca"], a["client_crt"], a["client_key"]) is None
    bad = tls_problem(a["ca"], a["client_crt"], b["client_key"])
    assert bad is not None and bad[0] == "cert_file" and "matching key" in bad[2]


def test_a_corrupt_bundle_fails_validate_config(tmp_path: Path, bundles: Path) -> None:
    """validate-config checked only that a bundle's files were there: a model that is not the
    one its card names, or a card that breaks the contract, passed and failed at start."""
    path = _write(tmp_path, _valid_yaml(bundles))
    load_checked_config(path, thorough=True)
    model = bundles / "baseline" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-16])
    load_checked_config(path)  # at start, the loader reports it, per side (tests/test_kiosk.py)
    with pytest.raises(ConfigError) as err:
        load_checked_config(path, thorough=True)
    (problem,) = err.value.problems
    assert problem.key == "models.left" and "does not match card.json" in problem.message
    (bundles / "debiased" / "card.json").write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_checked_config(path, thorough=True)
    assert [p.key for p in err.value.problems] == ["models.left", "models.right"]
    assert "does not follow the bundle contract" in err.value.problems[1].message


def test_a_password_folder_is_named_a_folder(tmp_path: Path, bundles: Path) -> None:
    text = _valid_yaml(bundles).replace("port: 1883,", f"port: 1883, password_file: {tmp_path},")
    with pytest.raises(ConfigError) as err:
        load_checked_config(_write(tmp_path, text))
    assert "is a folder" in err.value.problems[0].message


def test_duplicate_keys_under_aliases_are_reported_once() -> None:
    """An alias shares its anchor's node: the duplicate check walks it once (walking every
    alias made a 1 KB alias bomb take minutes), so a repeat inside an anchor is one problem."""
    from installation.config import duplicate_keys

    root = yaml.compose("a: &a {x: 1, x: 2}\nb: [*a, *a, *a]\nc: {d: *a}\n", Loader=yaml.SafeLoader)
    assert duplicate_keys(root) == [("a.x", 1, 1)]
