"""Keras model -> full-integer int8 TFLite bundle (model.tflite, card.json, latent.npz).

The model handed in takes [B, 64, 64, 3] float pixels in [0, 1] and returns the face logit [B, 1]
and, for a DB-VAE, the latent mean [B, D] as second output (pass a serving sub-model of the
encoder, not the full VAE). Conversion fixes the batch at 1, calibrates on real training images,
and the bundle is written atomically: built in a temp folder beside `out_dir`, then renamed over
it, so an interrupted export leaves the previous bundle intact.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from installation.inference.bundle import sha256_file
from installation.inference.card import CARD_SCHEMA, Card
from model_export.bundle_check import TfliteSummary, check_tflite
from model_export.latent_stats import LatentStats

logger = logging.getLogger(__name__)


class ExportError(RuntimeError):
    pass


def convert_int8(model: Any, calibration: np.ndarray, max_calibration: int = 500) -> bytes:
    """Full-integer int8 conversion with batch 1; outputs named output_0 (logit), output_1."""
    import tensorflow as tf

    if calibration.ndim != 4 or calibration.shape[1:] != (64, 64, 3):
        raise ExportError(f"calibration images must be [N, 64, 64, 3], got {calibration.shape}")
    if calibration.dtype != np.float32 or calibration.min() < 0 or calibration.max() > 1:
        raise ExportError("calibration images must be float32 pixels in [0, 1]")
    if len(calibration) < 10:
        raise ExportError(f"need at least 10 real calibration images, got {len(calibration)}")
    import keras

    cal = calibration[:max_calibration]

    def serve(x: Any) -> dict[str, Any]:
        out = model(x, training=False)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        return {f"output_{i}": o for i, o in enumerate(outs)}

    with tempfile.TemporaryDirectory(prefix="bias-mirror-savedmodel-") as tmp:
        # Keras 3 -> SavedModel with a fixed [1, 64, 64, 3] signature; converting a tf.function
        # directly leaves READ_VARIABLE ops that the calibrator cannot run.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve", serve, input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)]
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None]] for img in cal)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return bytes(converter.convert())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def build_card(
    summary: TfliteSummary,
    sha: str,
    kind: str,
    name: str,
    card_fields: dict[str, Any],
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "name": name,
        "kind": kind,
        "version": card_fields.get("version", dt.date.today().isoformat()),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha,
        "input": {
            "name": "image",
            "shape": [1, 64, 64, 3],
            "dtype": summary.input_dtype,
            "scale": summary.input_scale,
            "zero_point": summary.input_zero_point,
            "color_order": "RGB",
            "pixel_range": [0.0, 1.0],
        },
        "outputs": [
            {
                "name": n,
                "shape": o.shape,
                "dtype": o.dtype,
                "scale": o.scale,
                "zero_point": o.zero_point,
            }
            for n, o in zip(("face_logit", "latent_mean"), summary.outputs, strict=False)
        ],
        "ops": summary.ops,
        "size_bytes": summary.size_bytes,
    }
    for key, value in card_fields.items():
        card.setdefault(key, value)
    # Validate against the contract before anything is written.
    Card.model_validate(card)
    return card


def export_bundle(
    model: Any,
    out_dir: Path,
    *,
    kind: Literal["baseline", "dbvae"],
    name: str,
    calibration: np.ndarray,
    card_fields: dict[str, Any],
    latent_stats: LatentStats | None = None,
) -> Path:
    """Convert, check and write one bundle atomically. Returns `out_dir`."""
    if kind == "dbvae" and latent_stats is None:
        raise ExportError("a DB-VAE bundle needs latent_stats for latent.npz")
    for key in ("threshold", "license"):
        if key not in card_fields:
            raise ExportError(f"card_fields must set {key!r}")
    tflite = convert_int8(model, calibration)
    summary = check_tflite(tflite, expect_latent=kind == "dbvae")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the kiosk user must be able to read the bundle
    try:
        _write(tmp / "model.tflite", tflite)
        card = build_card(summary, sha256_file(tmp / "model.tflite"), kind, name, card_fields)
        _write(tmp / "card.json", (json.dumps(card, indent=2) + "\n").encode())
        if latent_stats is not None:
            latent_stats.save(tmp / "latent.npz")
        _compile_edgetpu(tmp)
        _fsync_dir(tmp)
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s (%s, %d bytes) to %s", name, kind, len(tflite), out_dir)
    return out_dir


def _compile_edgetpu(folder: Path) -> None:
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        logger.info(
            "edgetpu_compiler not found: no model_edgetpu.tflite. For a Coral, install Coral's "
            "Debian package edgetpu-compiler (x86_64) and re-run the export."
        )
        return
    res = subprocess.run(
        [compiler, "-s", "-o", str(folder), str(folder / "model.tflite")],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise ExportError(f"edgetpu_compiler failed: {res.stderr.strip()[-400:]}")
