"""One bundle -> one classifier: uint8 RGB crop [64, 64, 3] -> `Prediction`.

Quantization is folded into preprocessing: a 256-entry lookup table maps each 0..255 pixel
straight to the model's int8 input (real = pixel / 255, q = round(real / scale) + zero_point).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from installation.inference.backends import BackendError, make_interpreter
from installation.inference.bundle import FIX, Bundle, BundleError, load_bundle
from installation.inference.rarity import Rarity, RarityError
from installation.types import Prediction
from installation.verdicts import logit_of

logger = logging.getLogger(__name__)

INPUT_SHAPE = (1, 64, 64, 3)


def input_lut(scale: float, zero_point: int, dtype: type[np.integer[Any]]) -> npt.NDArray[Any]:
    """Pixel 0..255 -> quantized model input, for real values pixel / 255 in [0, 1]."""
    info = np.iinfo(dtype)
    q = np.round(np.arange(256, dtype=np.float64) / 255.0 / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def ordered_outputs(interp: Any) -> list[dict[str, Any]]:
    """Output details in contract order (0 = face logit, 1 = latent mean).

    The converter may store outputs in any order; the export's signature names them output_0,
    output_1. Without a signature (e.g. some compiled files), the [1, 1] output is the logit.
    """
    details = {d["index"]: d for d in interp.get_output_details()}
    try:
        sigs = interp._get_full_signature_list()
    except AttributeError:
        sigs = {}
    if len(sigs) == 1:
        outputs = next(iter(sigs.values()))["outputs"]
        if all(f"output_{i}" in outputs for i in range(len(outputs))):
            return [details[outputs[f"output_{i}"]] for i in range(len(outputs))]
    return sorted(details.values(), key=lambda d: (int(np.prod(d["shape"])) != 1, d["index"]))


def _shape(detail: dict[str, Any]) -> list[int]:
    """A tensor detail's shape as plain ints (readable in error messages)."""
    return [int(v) for v in detail["shape"]]


class Classifier:
    """Not thread-safe: one pipeline thread calls `predict`."""

    def __init__(self, bundle: Bundle, interp: Any, backend: str, model_file: Path) -> None:
        self.bundle = bundle
        self.card = bundle.card
        self.backend = backend
        self.model_file = model_file
        self._interp = interp
        inp = interp.get_input_details()
        if len(inp) != 1 or tuple(inp[0]["shape"]) != INPUT_SHAPE:
            shapes = [_shape(d) for d in inp]
            raise BundleError(
                f"{model_file}: input {shapes} is not the contract's [1, 64, 64, 3]; {FIX}"
            )
        self._in = inp[0]
        scale, zp = inp[0]["quantization"]
        if inp[0]["dtype"] not in (np.int8, np.uint8) or scale == 0:
            raise BundleError(f"{model_file}: input is not quantized int8; {FIX}")
        spec = self.card.input
        if not (math.isclose(spec.scale, scale, rel_tol=1e-5) and spec.zero_point == zp):
            raise BundleError(
                f"{bundle.dir / 'card.json'}: card does not match model (input scale/zero point "
                f"{spec.scale}/{spec.zero_point} vs {scale}/{zp}); {FIX}"
            )
        self._lut = input_lut(scale, zp, inp[0]["dtype"])
        outs = ordered_outputs(interp)
        self._check_outputs(outs, model_file)
        self._outs = [(d["index"], *d["quantization"]) for d in outs[:2]]
        self.rarity: Rarity | None = None
        if bundle.latent_path is not None and len(outs) > 1:
            try:
                self.rarity = Rarity.load(bundle.latent_path)
            except RarityError as exc:
                raise BundleError(str(exc)) from None
            if self.rarity.latent_dim != outs[1]["shape"][1]:
                raise BundleError(
                    f"{bundle.latent_path}: {self.rarity.latent_dim} dimensions, model has "
                    f"{outs[1]['shape'][1]}; {FIX}"
                )
        self._buf = np.empty(INPUT_SHAPE, dtype=inp[0]["dtype"])

    @property
    def threshold_logit(self) -> float:
        """The card's threshold as a logit: the stable verdict's decision line."""
        return logit_of(self.card.threshold)

    def _check_outputs(self, outs: list[dict[str, Any]], model_file: Path) -> None:
        """Output 0 = face logit [1, 1], output 1 = latent mean [1, D]; the card says the same."""
        if tuple(outs[0]["shape"]) != (1, 1):
            raise BundleError(
                f"{model_file}: output 0 has shape {_shape(outs[0])}, expected the face "
                f"logit [1, 1]; {FIX}"
            )
        if len(outs) > 2 or (
            len(outs) == 2 and (len(outs[1]["shape"]) != 2 or outs[1]["shape"][0] != 1)
        ):
            raise BundleError(
                f"{model_file}: outputs {[_shape(d) for d in outs]}, expected the face "
                f"logit [1, 1] and at most the latent mean [1, D]; {FIX}"
            )
        if self.card.kind == "dbvae" and len(outs) < 2:
            raise BundleError(
                f"{model_file}: a DB-VAE bundle needs output 1, the latent mean [1, D]; {FIX}"
            )
        model_shapes = [_shape(d) for d in outs]
        card_shapes = [o.shape for o in self.card.outputs]
        if model_shapes != card_shapes:
            raise BundleError(
                f"{self.bundle.dir / 'card.json'}: card does not match model (outputs "
                f"{card_shapes} vs {model_shapes}); {FIX}"
            )

    def logit(self, crop_rgb: np.ndarray) -> float:
        """The face logit alone (the heatmaps' occlusions need nothing else)."""
        return self.predict(crop_rgb).logit

    def predict(self, crop_rgb: np.ndarray) -> Prediction:
        if crop_rgb.shape != INPUT_SHAPE[1:] or crop_rgb.dtype != np.uint8:
            raise ValueError(
                f"crop must be uint8 [64, 64, 3], got {crop_rgb.dtype} {crop_rgb.shape}"
            )
        t0 = time.perf_counter()
        np.take(self._lut, crop_rgb, out=self._buf[0])
        self._interp.set_tensor(self._in["index"], self._buf)
        self._interp.invoke()
        idx, scale, zp = self._outs[0]
        logit = float(scale * (int(self._interp.get_tensor(idx)[0, 0]) - zp))
        latent = None
        if len(self._outs) > 1:
            idx, scale, zp = self._outs[1]
            latent = (scale * (self._interp.get_tensor(idx)[0].astype(np.float32) - zp)).astype(
                np.float32
            )
        ms = (time.perf_counter() - t0) * 1e3
        # Numerically safe sigmoid.
        p = (
            1.0 / (1.0 + math.exp(-logit))
            if logit >= 0
            else math.exp(logit) / (1 + math.exp(logit))
        )
        return Prediction(
            p_face=p, face=p >= self.card.threshold, logit=logit, ms=ms, latent=latent
        )


def load_classifier(
    folder: Path,
    accelerator: str = "auto",
    edgetpu_device: str | None = None,
    num_threads: int = 1,
) -> Classifier:
    bundle = load_bundle(Path(folder))
    try:
        interp, backend, model_file = make_interpreter(
            bundle.model_path, accelerator, edgetpu_device, num_threads, bundle.edgetpu_path
        )
    except BackendError:
        raise  # an accelerator that cannot load: its own message says what to install
    except ValueError as exc:  # the interpreter's own error for a file that is not a model
        raise BundleError(f"{bundle.model_path}: not a valid TFLite model ({exc}); {FIX}") from None
    except RuntimeError as exc:
        # allocate_tensors rejects a graph whose shapes do not fit together (e.g. a model
        # exported for another input size), before the contract's shape check could run.
        raise BundleError(
            f"{bundle.model_path}: the model cannot be prepared ({str(exc).strip()[:200]}); "
            f"it does not follow the contract's input [1, 64, 64, 3] int8; {FIX}"
        ) from None
    logger.info("%s: %s on %s", folder, bundle.card.name, backend)
    return Classifier(bundle, interp, backend, model_file)
