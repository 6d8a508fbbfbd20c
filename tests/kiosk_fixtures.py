"""A kiosk config on the tiny bundles and a short real clip, for tests that run the whole kiosk."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.video_fixtures import write_clip

DISPLAY = "{fullscreen: false, width: 960, height: 540, attract_after_s: 0.5}"


def write_kiosk_config(tmp_path: Path, tiny_bundles: Path, display: str = DISPLAY) -> Path:
    """tmp_path/kiosk.yaml: both tiny bundles, a 1 s clip at 30 fps, no MQTT."""
    shutil.copytree(tiny_bundles / "tiny_baseline", tmp_path / "baseline")
    shutil.copytree(tiny_bundles / "tiny_dbvae", tmp_path / "debiased")
    clip = write_clip(tmp_path / "clip.mp4", frames=30, fps=30.0)
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text(
        f"installation_id: test\nsource: {{uri: {clip}, width: 320, height: 240, fps: 30}}\n"
        "models: {left: baseline, right: debiased}\n"
        f"display: {display}\n"
        "mqtt: {enabled: false}\n",
        encoding="utf-8",
    )
    return cfg
