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
from typing import Any

import numpy as np

from installation.files import sha256_file
from installation.inference.card import CARD_SCHEMA, Card, ModelKind
from model_export.bundle_check import TfliteSummary, check_tflite
from model_export.latent_stats import LatentStats

logger = logging.getLogger(__name__)


INPUT_SHAPE = (1, 64, 64, 3)  # the contract: batch fixed at 1, 64x64 RGB


class ExportError(RuntimeError):
    """The export cannot produce a bundle that follows the contract; the message says why."""


def convert_int8(model: Any, calibration: np.ndarray, max_calibration: int = 500) -> bytes:
    """Full-integer int8 conversion with batch 1; outputs named output_0 (logit), output_1.

    calibration: [N, 64, 64, 3] float32 pixels in [0, 1], real training images (N >= 10; the
    first `max_calibration` are used, ~100-500 is plenty for per-tensor activation ranges).
    """
    if calibration.ndim != 4 or calibration.shape[1:] != (64, 64, 3):
        raise ExportError(
            f"calibration images must be [N, 64, 64, 3], got {calibration.shape}; pass the "
            "training images resized to 64x64 RGB"
        )
    if calibration.dtype != np.float32 or calibration.min() < 0 or calibration.max() > 1:
        raise ExportError(
            "calibration images must be float32 pixels in [0, 1]; divide uint8 images by 255"
        )
    if len(calibration) < 10:
        raise ExportError(
            f"need at least 10 real calibration images, got {len(calibration)}; pass ~100-500 "
            "training images"
        )
    return _to_tflite(model, calibration[:max_calibration], INPUT_SHAPE)


def _to_tflite(model: Any, calibration: np.ndarray, input_shape: tuple[int, ...]) -> bytes:
    """Keras 3 model -> int8 TFLite bytes with a fixed `input_shape` signature (no checks)."""
    import keras
    import tensorflow as tf

    def serve(x: Any) -> dict[str, Any]:
        out = model(x, training=False)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        # Named outputs: the converter may reorder tensors, the signature keeps the contract order.
        return {f"output_{i}": o for i, o in enumerate(outs)}

    with tempfile.TemporaryDirectory(prefix="bias-mirror-savedmodel-") as tmp:
        # Keras 3 -> SavedModel with a fixed [1, 64, 64, 3] signature; converting a tf.function
        # directly leaves READ_VARIABLE ops that the calibrator cannot run.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve", serve, input_signature=[tf.TensorSpec(input_shape, tf.float32)]
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # One image [1, 64, 64, 3] per calibration step.
        converter.representative_dataset = lambda: ([img[None]] for img in calibration)
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
    kind: ModelKind,
    name: str,
    calibration: np.ndarray,
    card_fields: dict[str, Any],
    latent_stats: LatentStats | None = None,
) -> Path:
    """Convert, check and write one bundle atomically. Returns `out_dir`.

    model: Keras model, input [B, 64, 64, 3] float in [0, 1]; output 0 the face logit [B, 1], for
    kind="dbvae" output 1 the latent mean [B, D] and nothing else (pass a serving sub-model).
    calibration: [N, 64, 64, 3] float32 in [0, 1], real training images.
    card_fields: at least `threshold` and `license`; anything else (method, version,
    training_data, metrics, display, ...) goes into card.json as given, after validation.
    latent_stats: required for kind="dbvae"; written as latent.npz.
    """
    out_dir = Path(out_dir)
    if kind == "dbvae" and latent_stats is None:
        raise ExportError("a DB-VAE bundle needs latent_stats for latent.npz")
    for key in ("threshold", "license"):
        if key not in card_fields:
            raise ExportError(f"card_fields must set {key!r}")
    _check_replaceable(out_dir)
    tflite = convert_int8(model, calibration)
    summary = check_tflite(tflite, expect_latent=kind == "dbvae")
    if latent_stats is not None and latent_stats.density.shape[0] != summary.outputs[-1].shape[-1]:
        raise ExportError(
            f"latent_stats has {latent_stats.density.shape[0]} dimensions, the model's latent "
            f"output {summary.outputs[-1].shape}; compute them with the same model"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the kiosk user must be able to read the bundle
    try:
        _write(tmp / "model.tflite", tflite)
        fields = dict(card_fields)
        if _compile_edgetpu(tmp):
            fields["edgetpu_sha256"] = sha256_file(tmp / "model_edgetpu.tflite")
        card = build_card(summary, sha256_file(tmp / "model.tflite"), kind, name, fields)
        _write(tmp / "card.json", (json.dumps(card, indent=2) + "\n").encode())
        if latent_stats is not None:
            latent_stats.save(tmp / "latent.npz")
        _fsync_dir(tmp)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s (%s, %d bytes) to %s", name, kind, len(tflite), out_dir)
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an earlier bundle (e.g. a typo'd `--out assets/models`)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a folder; choose a bundle folder")
    entries = {p.name for p in out_dir.iterdir()}
    if entries and not entries & {"card.json", "model.tflite"}:
        raise ExportError(
            f"{out_dir}: exists and is not a model bundle (no card.json or model.tflite); "
            "refusing to replace it. Choose a bundle folder such as assets/models/baseline"
        )


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename the finished `tmp` over `out_dir`; on any failure the old bundle is put back."""
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    moved = False
    try:
        if out_dir.exists():
            os.replace(out_dir, old)
            moved = True
        os.replace(tmp, out_dir)
    except BaseException:
        if moved and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(out_dir.parent)


def _compile_edgetpu(folder: Path) -> bool:
    """model.tflite -> model_edgetpu.tflite when edgetpu_compiler is installed; True if made."""
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        logger.info(
            "edgetpu_compiler not found: no model_edgetpu.tflite. For a Coral, install Coral's "
            "Debian package edgetpu-compiler (x86_64 only, https://coral.ai/software/) and "
            "re-run the export."
        )
        return False
    res = subprocess.run(
        [compiler, "-s", "-o", str(folder), str(folder / "model.tflite")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    compiled = folder / "model_edgetpu.tflite"
    if res.returncode != 0 or not compiled.is_file():
        raise ExportError(
            f"edgetpu_compiler failed (exit {res.returncode}): "
            f"{(res.stderr or res.stdout).strip()[-400:]}; fix the model or uninstall the "
            "compiler to export a CPU-only bundle"
        )
    logger.info("edgetpu_compiler: %s", res.stdout.strip().splitlines()[-1:] or "done")
    return True
