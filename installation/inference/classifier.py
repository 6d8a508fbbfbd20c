"""One bundle -> one classifier: uint8 RGB crop [64, 64, 3] -> `Prediction`.

The model is read through `installation.inference.int8` (input lookup table, dequantized
outputs); this module checks the model against its card and turns the logit into a verdict.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from installation.inference.backends import BackendError, make_interpreter
from installation.inference.batch import BatchError, Int8BatchReader, load_batch_reader
from installation.inference.bundle import FIX, Bundle, BundleError, ModelFile, load_bundle
from installation.inference.int8 import Int8Reader, ordered_outputs
from installation.inference.rarity import Rarity, RarityError
from installation.inference.views import (
    Views,
    combine,
    flip_views,
    mirrored_corners,
    zoom_view,
    zoom_views,
)
from installation.logits import logit_of, sigmoid
from installation.types import Prediction

logger = logging.getLogger(__name__)

INPUT_SHAPE = (1, 64, 64, 3)


def _check_crop(crop_rgb: np.ndarray) -> None:
    if crop_rgb.shape != INPUT_SHAPE[1:] or crop_rgb.dtype != np.uint8:
        raise ValueError(f"crop must be uint8 [64, 64, 3], got {crop_rgb.dtype} {crop_rgb.shape}")


def _shape(detail: dict[str, Any]) -> list[int]:
    """A tensor detail's shape as plain ints (readable in error messages)."""
    return [int(v) for v in detail["shape"]]


class Classifier:
    """Not thread-safe: one pipeline thread calls `predict`."""

    def __init__(self, bundle: Bundle, interp: Any, backend: str, model: ModelFile) -> None:
        self.bundle = bundle
        self.card = bundle.card
        self.backend = backend
        self.model = model  # the bytes the interpreter runs (checked against the card)
        model_file = model.path
        inp = interp.get_input_details()
        if len(inp) != 1 or tuple(inp[0]["shape"]) != INPUT_SHAPE:
            shapes = [_shape(d) for d in inp]
            raise BundleError(
                f"{model_file}: input {shapes} is not the contract's [1, 64, 64, 3]; {FIX}"
            )
        scale, zp = inp[0]["quantization"]
        if inp[0]["dtype"] not in (np.int8, np.uint8) or scale == 0:
            raise BundleError(f"{model_file}: input is not quantized int8; {FIX}")
        spec = self.card.input
        if not (math.isclose(spec.scale, scale, rel_tol=1e-5) and spec.zero_point == zp):
            raise BundleError(
                f"{bundle.dir / 'card.json'}: card does not match model (input scale/zero point "
                f"{spec.scale}/{spec.zero_point} vs {scale}/{zp}); {FIX}"
            )
        outs = ordered_outputs(interp)
        self._check_outputs(outs, model_file)
        self._reader = Int8Reader(interp, inp[0], outs)
        # The heatmaps' occlusions in one invoke (load_occluder), when that reads the same logits.
        self._batch: Int8BatchReader | None = None
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

    @property
    def model_file(self) -> Path:
        """The file the running model was read from (model.tflite or model_edgetpu.tflite)."""
        return self.model.path

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

    @property
    def zoom(self) -> float | None:
        """The card's second view (installation.inference.views), or None for the crop alone."""
        return self.card.zoom

    @property
    def flip_average(self) -> bool:
        """Whether each view's logit is the mean of its own and its mirror image's."""
        return self.card.flip_average

    @property
    def views(self) -> Views:
        """How the card has each crop judged (its `count` images per crop)."""
        return Views(self.zoom, self.flip_average)

    def _with_mirror(self, logit: float, image: np.ndarray) -> float:
        # `logit` is the image's own; with flip_average, the mean with its mirror image's.
        if not self.flip_average:
            return logit
        mirrored = self._reader.logit(flip_views(image))
        return float(combine(np.array([logit]), np.array([mirrored]))[0])

    def _image_logit(self, image: np.ndarray) -> float:
        """One view's score (the image as it is, and mirrored with flip_average)."""
        return self._with_mirror(self._reader.logit(image), image)

    def view_logit(self, crop_rgb: np.ndarray, zoomed: bool) -> float:
        """The face logit of one view: the crop itself, or (`zoomed`) its zoomed centre."""
        _check_crop(crop_rgb)
        if not zoomed:
            return self._image_logit(crop_rgb)
        if self.zoom is None:
            raise ValueError(f"{self.bundle.dir}: the card sets no zoom, so there is no view")
        return self._image_logit(zoom_view(crop_rgb, self.zoom))

    def zoom_decides(self, crop_rgb: np.ndarray) -> bool:
        """Whether the zoomed view gave the crop's score (False without a zoom)."""
        if self.zoom is None:
            return False
        return self.view_logit(crop_rgb, True) > self.view_logit(crop_rgb, False)

    def logit(self, crop_rgb: np.ndarray) -> float:
        """The face logit alone (the heatmaps' occlusions need nothing else: no latent, no
        timing; about a tenth cheaper than `predict` per occluded crop): with a zoom, the larger
        of the crop's and its zoomed view's."""
        logit = self.view_logit(crop_rgb, False)
        if self.zoom is not None:
            logit = max(logit, self.view_logit(crop_rgb, True))
        return logit

    def occluded_logits(
        self,
        crop_rgb: np.ndarray,
        fill_rgb: np.ndarray,
        corners: Sequence[tuple[int, int]],
        patch: int,
    ) -> tuple[float, np.ndarray]:
        """The heatmaps' occlusions in one call (installation.heatmap; Int8Reader says how, and
        installation.inference.batch how they run in one invoke when `batched`).

        With a zoom, the occlusions are measured on the view that decided the crop's score: the
        crop itself (as without a zoom), or its zoomed view, each covered square of the crop
        then zoomed with it (the part of a square outside the view's centre changes nothing
        there, truly: that view does not see it). A map costs one view's invokes either way."""
        _check_crop(crop_rgb)
        if not self.zoom_decides(crop_rgb):
            reader = self._reader if self._batch is None else self._batch
            base, covered = reader.occluded_logits(crop_rgb, fill_rgb, corners, patch)
            if not self.flip_average:
                return base, covered
            # The mirror image with the same squares covered: mirrored squares of the mirror
            # image, so its k-th logit belongs to the k-th square (twice the invokes).
            side = crop_rgb.shape[1]
            m_base, m_covered = reader.occluded_logits(
                flip_views(crop_rgb), fill_rgb, mirrored_corners(corners, patch, side), patch
            )
            both = combine(np.array([base, *covered]), np.array([m_base, *m_covered]))
            return float(both[0]), both[1:].astype(np.float32)
        assert self.zoom is not None  # zoom_decides is False without one
        # [1 + K, S, S, 3]: the crop, then each covered copy; all zoomed as the view sees them.
        crops = np.repeat(crop_rgb[None], 1 + len(corners), axis=0)
        for k, (y, x) in enumerate(corners):
            crops[k + 1, y : y + patch, x : x + patch] = fill_rgb
        views = zoom_views(crops, self.zoom)
        logits = self._many_logits(views)
        if self.flip_average:
            logits = combine(logits, self._many_logits(flip_views(views)))
        return float(logits[0]), logits[1:].astype(np.float32)

    def _many_logits(self, views: np.ndarray) -> np.ndarray:
        # uint8 [B, S, S, 3] -> float [B]: in one invoke when a batch interpreter is loaded.
        if self._batch is not None:
            return self._batch.logits(views)
        return np.array([self._reader.logit(v) for v in views])

    @property
    def batched(self) -> bool:
        """Whether the occlusions run in one invoke (load_occluder)."""
        return self._batch is not None

    def predict(self, crop_rgb: np.ndarray) -> Prediction:
        _check_crop(crop_rgb)
        t0 = time.perf_counter()
        # The latent (DB-VAE rarity) is always the crop's own: rarity describes what the camera
        # sees, not the view that scored higher.
        logit, latent = self._reader.read(crop_rgb)
        logit = self._with_mirror(logit, crop_rgb)
        if self.zoom is not None:
            logit = max(logit, self.view_logit(crop_rgb, True))
        ms = (time.perf_counter() - t0) * 1e3
        p = sigmoid(logit)
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
        interp, backend, model = make_interpreter(
            bundle.model, accelerator, edgetpu_device, num_threads, bundle.edgetpu
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
    return Classifier(bundle, interp, backend, model)


def load_occluder(folder: Path) -> Classifier:
    """The heatmaps' own classifier of a bundle (installation.heatmap): a CPU interpreter of its
    int8 model, never the Edge TPU the verdicts may use, with the occlusions batched into one
    invoke (installation.inference.batch) when that reads the very logits one by one does;
    otherwise one by one, with the reason in the log."""
    clf = load_classifier(folder, accelerator="cpu", num_threads=1)
    try:
        clf._batch = load_batch_reader(clf.model.content, clf._reader.occluded_logits)
    except BatchError as exc:
        logger.info("%s: heatmaps read one occluded crop at a time: %s", folder, exc)
    return clf
