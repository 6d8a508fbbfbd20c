"""`bias-mirror bench` runs end to end, measures every figure a target is stated in, and its
report says what each line measured."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from installation.bench import bench_main
from installation.bench_report import TARGETS, print_human, targets


def test_bench_json_and_report(
    tmp_path: Path,
    tiny_bundles: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copytree(tiny_bundles / "tiny_baseline", tmp_path / "b")
    shutil.copytree(tiny_bundles / "tiny_dbvae", tmp_path / "d")
    cfg = tmp_path / "k.yaml"
    cfg.write_text("models: {left: b, right: d}\nmqtt: {enabled: false}\n")
    with caplog.at_level(logging.INFO):
        assert bench_main(as_json=True, config=cfg, seconds=0.2) == 0
    r = json.loads(capsys.readouterr().out)
    # The broker-down runs talk to no broker on purpose: nothing may read as a fault.
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING] == []

    assert r["backend"] == "litert-cpu"
    for key in ("left", "right", "both"):
        assert r["models"][key]["runs"] >= 50
    # Two independent measurements agree: every replayed frame runs both models, so replay
    # cannot be much faster than both models' latency allows.
    for mode in ("guide_box", "detector"):
        assert r["replay"][mode]["frames"] == 90
        assert 0 < r["replay"][mode]["fps"] <= 1.5 * 1000 / r["models"]["both"]["median_ms"]
    assert r["render"]["size"] == [1920, 1080] and r["render"]["driver"] == "dummy"
    assert r["latency"]["samples"] > 0
    # Frames drawn per second of camera time: some, and never more than the 30 fps clip has.
    assert 0 < r["latency"]["shown_fps"] <= 31.0
    assert 50 < r["peak_rss_mb"] < 4000
    # The kiosk alone (a fresh process) needs no more than the bench process that also ran it.
    assert 50 < r["kiosk_peak_rss_mb"] <= r["peak_rss_mb"]
    # Every target is measured (none left as "not measured") and judged.
    assert [row["what"] for row in r["targets"]] == [t.what for t in TARGETS]
    assert all(row["measured"] is not None and row["met"] in (True, False) for row in r["targets"])

    print_human(r)
    lines = capsys.readouterr().out.splitlines()
    broker = next(line for line in lines if line.startswith("broker down"))
    bd = r["broker_down"]
    change = (
        f"{abs(bd['slower_percent']):.1f} % {'slower' if bd['slower_percent'] >= 0 else 'faster'}"
    )
    assert f"{bd['fps_broker_down']:.1f} frames/s vs {bd['fps_without_mqtt']:.1f}" in broker
    assert f"medians of {bd['rounds']} back-to-back pairs" in broker and bd["rounds"] >= 6
    assert broker.endswith(change) and "drop" not in broker
    # Both models as the pipeline judges them: at once where this machine has two cores.
    from installation.inference.concurrent import judge_at_once

    judged = r["models"]["as_judged"]
    assert judged["runs"] >= 50 and judged["cpu_ms"] > 0
    assert judged["at_once"] is judge_at_once(["litert-cpu", "litert-cpu"])
    line = next(ln for ln in lines if ln.endswith("as the pipeline judges them"))
    assert ("both at once (two threads)" in line) is judged["at_once"]
    assert f"{judged['cpu_ms']:.3f} ms of CPU time a crop" in line
    # The machine that measured: the same models run at very different speeds on another CPU.
    cpu = r["cpu"]
    assert cpu["model"] and cpu["cores"] >= 1
    machine = next(ln for ln in lines if ln.startswith("machine: "))
    assert f"{cpu['cores']} cores for this process" in machine
    assert all(flag in machine for flag in cpu["simd"])
    memory = next(line for line in lines if "the kiosk alone" in line)
    assert f"{r['kiosk_peak_rss_mb']:.1f} MB peak" in memory
    # The tiny bundles batch their occlusions as the shipped ones do, and the line says so.
    assert r["heatmaps"]["batched"] is True
    heat = next(line for line in lines if line.startswith("heatmaps: one update"))
    assert "each the crop and 16 covered copies, in one batched invoke" in heat
    # The kiosk alone on a real X server (Xvfb, which .ci/run installs): flips included, and
    # by default its window is not drawn through OpenGL (display.gl_framebuffer).
    x11_line = next(line for line in lines if line.startswith("kiosk on a real X server"))
    if shutil.which("Xvfb"):
        x11 = r["kiosk_x11"]
        assert x11["cpu_percent"] > 0 and x11["xserver_cpu_percent"] >= 0
        assert x11["opengl_loaded"] is False, "the kiosk drew its window through OpenGL"
        assert f"{x11['cpu_percent']:.1f} % of one core" in x11_line
        assert "drawn through OpenGL: no" in x11_line
    else:
        assert r["kiosk_x11"] is None and "not measured, no Xvfb" in x11_line
    render = next(line for line in lines if line.startswith("render"))
    assert "flips cost nothing" in render  # under the dummy driver the flip is not measured
    # The kiosk's CPU split per part (main thread = display), each part's figure on its line.
    for key, label in (("latency", "heatmaps on"), ("latency_no_heatmaps", "heatmaps off")):
        split = r[key]["cpu_by_part"]
        assert "display" in split and all(v >= 0 for v in split.values())
        line = next(ln for ln in lines if ln.startswith(f"CPU by part of the kiosk, {label}:"))
        assert all(f"{part} {v:.1f} %" in line for part, v in split.items())
    kiosk = next(ln for ln in lines if ln.startswith("kiosk running on the demo clip"))
    on, off = r["latency"], r["latency_no_heatmaps"]
    assert f"CPU at steady state {on['cpu_percent']:.1f} % of one core" in kiosk
    assert f"{on['cpu_percent_whole_run']:.1f} / {off['cpu_percent_whole_run']:.1f} %" in kiosk
    assert sum(
        line.startswith("  ") and line.rstrip().endswith(("met", "MISSED")) for line in lines
    ) == len(TARGETS)

    # An X server that does not start costs its own line and row, not the other figures.
    r["kiosk_x11"] = {"error": "Xvfb did not start within 20 s (display ?)"}
    r["targets"] = targets(r)
    print_human(r)
    lines = capsys.readouterr().out.splitlines()
    assert any(
        ln.startswith("kiosk on a real X server: not measured, Xvfb did not") for ln in lines
    )
    row = next(line for line in lines if line.startswith("  kiosk CPU on X (Xvfb)"))
    assert row.endswith("not measured")


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


@pytest.mark.parametrize("seconds", ["nan", "inf", "-1", "0", "three"])
def test_a_time_budget_that_is_not_one_is_refused(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench --seconds nan` ended in a ValueError traceback and `-1` ran the whole bench."""
    from installation.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--seconds", seconds])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is not a number of seconds > 0" in err and "Traceback" not in err


def test_the_machine_is_read_from_cpuinfo_on_x86_and_arm(tmp_path: Path) -> None:
    from installation.bench_parts import cpu_info, parse_cpuinfo

    x86 = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma sha_ni\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
    )
    assert parse_cpuinfo(x86) == {
        "model": "AMD EPYC 7B13",
        "simd": ["sse4_2", "avx", "avx2", "fma"],
    }
    vnni = "model name : Intel Xeon\nflags : avx2 fma avx512f avx512bw avx512_vnni\n"
    assert parse_cpuinfo(vnni)["simd"] == ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"]
    # A Raspberry Pi 5 names its features, not flags, and its board as Hardware/Model.
    arm = "processor : 0\nBogoMIPS : 108.00\nFeatures : fp asimd evtstrm crc32 asimddp\n"
    assert parse_cpuinfo(arm) == {"model": "", "simd": ["asimd", "asimddp"]}
    # No /proc/cpuinfo (not Linux): still a model name and a core count, no flags invented.
    info = cpu_info(tmp_path / "missing")
    assert info["simd"] == [] and info["model"] and info["cores"] >= 1
