"""`bias-mirror bench` runs end to end and reports every figure the targets are stated in."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from installation.bench import bench_main


def test_bench_json(
    tmp_path: Path,
    tiny_bundles: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copytree(tiny_bundles / "tiny_baseline", tmp_path / "b")
    shutil.copytree(tiny_bundles / "tiny_dbvae", tmp_path / "d")
    cfg = tmp_path / "k.yaml"
    cfg.write_text("models: {left: b, right: d}\nmqtt: {enabled: false}\n")
    assert bench_main(as_json=True, config=cfg, seconds=0.2) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["backend"] == "litert-cpu"
    for key in ("left", "right", "both"):
        assert r["models"][key]["median_ms"] > 0
        assert r["models"][key]["p95_ms"] >= r["models"][key]["median_ms"]
    assert r["models"]["both"]["median_ms"] > r["models"]["left"]["median_ms"] * 0.5
    for mode in ("guide_box", "detector"):
        assert r["replay"][mode]["frames"] == 90 and r["replay"][mode]["fps"] > 0
    assert r["broker_down"]["fps_broker_down"] > 0 and r["broker_down"]["fps_without_mqtt"] > 0
    assert r["render"]["size"] == [1920, 1080] and r["render"]["fps"] > 0
    assert r["latency"]["samples"] > 0 and r["latency"]["p95_ms"] > 0
    assert 50 < r["peak_rss_mb"] < 4000


def test_cpu_is_attributed_to_the_part_of_the_kiosk_that_spends_it() -> None:
    """Per-thread counters: a busy thread named like the pipeline's shows up as "pipeline"."""
    import sys
    import threading

    from installation.bench import _thread_cpu

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread CPU counters are read from /proc (Linux)")
    done = threading.Event()
    seen: dict[str, float] = {}

    def spin() -> None:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            sum(range(1000))
        seen.update(_thread_cpu())  # while the thread still runs
        done.set()

    worker = threading.Thread(target=spin, name="pipeline")
    worker.start()
    assert done.wait(30)
    worker.join()
    assert seen.get("pipeline", 0.0) >= 0.1, seen
    assert "display" in seen  # the test's own main thread
