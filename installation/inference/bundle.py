"""A model bundle on disk: model.tflite + card.json (+ model_edgetpu.tflite, latent.npz)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from installation.files import sha256_file
from installation.inference.card import Card, CardError, load_card

logger = logging.getLogger(__name__)

FIX = "re-copy the bundle folder, or rebuild it with `make models`"


class BundleError(ValueError):
    """A bundle that is missing, corrupt or does not follow the contract."""


@dataclass(frozen=True)
class Bundle:
    dir: Path
    card: Card
    model_path: Path
    edgetpu_path: Path | None
    latent_path: Path | None


def load_bundle(folder: Path) -> Bundle:
    """Parse card.json and verify model.tflite (and model_edgetpu.tflite) against its sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: model bundle folder not found; {FIX}")
    model = folder / "model.tflite"
    if not model.is_file():
        raise BundleError(f"{model}: missing; {FIX}")
    try:
        card = load_card(folder / "card.json")
    except CardError as exc:
        raise BundleError(str(exc)) from None
    try:
        actual = sha256_file(model)
    except OSError as exc:
        raise BundleError(
            f"{model}: cannot be read ({exc}); check its permissions or {FIX}"
        ) from None
    if actual != card.sha256:
        raise BundleError(
            f"{model}: sha256 {actual[:12]}... does not match card.json ({card.sha256[:12]}...): "
            f"the file is corrupt or from another export; {FIX}"
        )
    edgetpu = folder / "model_edgetpu.tflite"
    if card.edgetpu_sha256 is not None and edgetpu.is_file():
        actual = sha256_file(edgetpu)
        if actual != card.edgetpu_sha256:
            raise BundleError(
                f"{edgetpu}: sha256 {actual[:12]}... does not match card.json "
                f"({card.edgetpu_sha256[:12]}...): the file is corrupt or from another export; "
                f"{FIX}"
            )
    latent = folder / "latent.npz"
    if card.kind == "dbvae" and not latent.is_file():
        logger.warning("%s: DB-VAE bundle without latent.npz; no rarity meter", folder)
    return Bundle(
        dir=folder,
        card=card,
        model_path=model,
        edgetpu_path=edgetpu if edgetpu.is_file() else None,
        latent_path=latent if latent.is_file() else None,
    )
