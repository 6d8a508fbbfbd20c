"""Answered: which calibration set keeps the int8 face logit closest to the float one?

    python -m model_export.diagnostics.int8_fidelity --data DATA --work WORK
        --seeds 0 1 2 3 4 5 --latent-dim 32

reloads the finished checkpoints of both models in WORK, converts each twice, once calibrated
on 400 clean training crops (the exporter until 2026-12-03) and once on the exporter's
`calibration_images` (the same crops under the training augmentation), and prints per model
and set the mean, 95th percentile and largest |float logit - int8 logit| (float clipped to the
served +-LOGIT_CLIP), and how many decisions differ at each model's own 2 % FPR threshold.
Nothing is written. Same training options as `bias-mirror-export all`, so the checkpoints'
settings match.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from installation.logits import sigmoid

logger = logging.getLogger(__name__)

VARIANTS = ("clean", "augmented")


def int8_logits(tflite: bytes, pixels: np.ndarray) -> np.ndarray:
    """int8 model bytes, uint8 [N, 64, 64, 3] -> face logits [N], read as the kiosk reads them
    (pixel LUT into the quantized input, output 0 dequantized)."""
    from ai_edge_litert.interpreter import Interpreter

    from installation.inference.int8 import Int8Reader

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    reader = Int8Reader(interp)
    return np.array([reader.read(img)[0] for img in pixels], dtype=np.float64)


def logit_error(float_logits: np.ndarray, q_logits: np.ndarray) -> dict[str, float]:
    """|float - int8| over a set, the float logit clipped to the served range first."""
    from model_export.fold import LOGIT_CLIP

    err = np.abs(np.clip(float_logits, -LOGIT_CLIP, LOGIT_CLIP) - q_logits)
    return {
        "mean": float(err.mean()),
        "p95": float(np.percentile(err, 95)),
        "max": float(err.max()),
    }


def main(argv: list[str] | None = None) -> int:
    from model_export.cli import _data
    from model_export.data import DataError
    from model_export.evaluate import fpr_arg, threshold_at_fpr
    from model_export.export import convert_int8
    from model_export.fold import int8_serving
    from model_export.steps import add_training_args, require_trained, train_config, train_method
    from model_export.train import predict_logits
    from model_export.workflow import calibration_images

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--work", type=Path, required=True, help="folder with finished checkpoints")
    p.add_argument("--recipe", type=Path, default=None, help="training recipe YAML")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--fpr", type=fpr_arg, default=0.02, help="false-positive rate of thresholds")
    p.add_argument("--method", choices=("dbvae", "balanced"), default="dbvae")
    add_training_args(p)
    args = p.parse_args(argv)
    data = _data(args)
    sets: dict[str, Any] = {"val": data.val_nonfaces.x, **{k: v.x for k, v in data.evals.items()}}
    totals: dict[tuple[str, str], list[float]] = {}
    for seed in args.seeds:
        for method in ("baseline", args.method):
            cfg = train_config(args, method, seed)
            try:
                require_trained(args.work, method, cfg)
            except DataError as exc:
                raise SystemExit(f"error: {exc}") from None
            model, _ = train_method(method, data, cfg, args.work)
            lf = {k: predict_logits(model, x).ravel() for k, x in sets.items()}
            thr_f = threshold_at_fpr(sigmoid(lf["val"]), args.fpr)
            for variant in VARIANTS:
                calib = calibration_images(data.train.x, augmented=variant == "augmented")
                tflite = convert_int8(int8_serving(model, calib), calib)
                lq = {k: int8_logits(tflite, x) for k, x in sets.items()}
                thr_q = threshold_at_fpr(sigmoid(lq["val"]), args.fpr)
                cells = []
                for k in sets:
                    e = logit_error(lf[k], lq[k])
                    flips = int(np.sum((sigmoid(lf[k]) >= thr_f) != (sigmoid(lq[k]) >= thr_q)))
                    cells.append(f"{k} {e['mean']:.3f}/{e['p95']:.3f}/{e['max']:.2f} ({flips})")
                    totals.setdefault((variant, k), []).append(e["p95"])
                print(f"s{seed} {method:8s} {variant:9s} " + "  ".join(cells), flush=True)
    print("mean over models of the 95th percentile |float - int8 logit|:")
    for variant in VARIANTS:
        row = "  ".join(f"{k} {np.mean(totals[(variant, k)]):.3f}" for k in sets)
        print(f"  {variant:9s} {row}")
    print("cells: mean/p95/max |logit error| (decisions that differ at each model's threshold)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
