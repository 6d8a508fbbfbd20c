"""`bias-mirror bench --soak`: a short soak through the real pipeline, stats and a real broker.
The day-long run (864,000 frames) is not part of the suite; its figures are in the README."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from installation.cli import main
from installation.soak import CHECKPOINTS, SoakError, parse_broker
from tests.mqtt_fixtures import free_port, run_broker

FRAMES = 300


@pytest.fixture
def config(tmp_path: Path, tiny_bundles: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the demo clip
    shutil.copytree(tiny_bundles / "tiny_baseline", tmp_path / "b")
    shutil.copytree(tiny_bundles / "tiny_dbvae", tmp_path / "d")
    cfg = tmp_path / "k.yaml"
    cfg.write_text("models: {left: b, right: d}\n")
    return cfg


def soak(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["bench", "--soak", str(FRAMES), "--json", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def check(r: dict[str, Any]) -> None:
    assert r["frames"] == FRAMES and r["fps"] > 0
    assert r["cpu"]["cores"] >= 1 and r["cpu"]["model"]  # the machine its speed belongs to
    samples = r["samples"]
    assert [s["frames"] for s in samples] == [FRAMES * k // CHECKPOINTS for k in range(11)]
    for s in samples:
        assert s["rss_mb"] > 10 and s["fds"] > 0 and s["threads"] >= 1
    growth = r["growth_from_start"]
    assert growth["rss_mb"] == round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 1)
    assert growth["fds"] == samples[-1]["fds"] - samples[0]["fds"]
    # Every interval arrived at the broker, and the last one counts every frame pushed.
    stats = r["mqtt"]["stats"]
    assert stats["received"] >= 1 and stats["missing_seqs"] == []
    assert stats["cumulative_frames"] == FRAMES


def test_soak_local_broker(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = soak(capsys, "--config", str(config))
    assert r["mqtt"]["broker"].endswith("(local)")
    check(r)


def test_soak_given_broker(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_broker(tmp_path / "broker") as broker:
        r = soak(capsys, "--config", str(config), "--broker", f"127.0.0.1:{broker.port}")
    assert r["mqtt"]["broker"] == f"127.0.0.1:{broker.port}"
    check(r)


def test_soak_broker_unreachable(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    rc = main(["bench", "--soak", "10", "--config", str(config), "--broker", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2 and f"no MQTT broker answered at 127.0.0.1:{port}" in err


def test_soak_bad_arguments(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--soak", "0", "--config", str(config)]) == 2
    assert "give a number of frames >= 1" in capsys.readouterr().err
    assert parse_broker("broker.museum") == ("broker.museum", 1883)
    assert parse_broker("10.0.0.2:8883") == ("10.0.0.2", 8883)
    for bad in ("host:x", ":1883", "host:0"):
        with pytest.raises(SoakError, match="use HOST or HOST:PORT"):
            parse_broker(bad)


def test_soak_text_names_its_machine(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from installation.bench_parts import cpu_info

    assert main(["bench", "--soak", "30", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cpu = cpu_info()
    simd = " ".join(cpu["simd"]) or "none known"
    want = f"machine: {cpu['model']}, {cpu['cores']} cores for this process; SIMD: {simd}"
    assert lines[1] == want
