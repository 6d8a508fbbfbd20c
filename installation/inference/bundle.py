"""A model bundle on disk: model.tflite + card.json (+ model_edgetpu.tflite, latent.npz)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

from installation.inference.card import Card, CardError, load_card

logger = logging.getLogger(__name__)

FIX = "re-copy the bundle folder, or rebuild it with `make models`"


class BundleError(ValueError):
    """A bundle that is missing, corrupt or does not follow the contract."""


@dataclass(frozen=True)
class ModelFile:
    """A model as read once: the path for messages, the bytes its sha256 was checked on and the
    interpreter runs. Never mapped from disk: TFLite maps a `model_path`, so a file copied over
    (cp truncates, then writes) or truncated while the kiosk ran killed it with SIGBUS, and a
    file swapped between the check and the load ran unchecked."""

    path: Path
    content: bytes = dataclass_field(repr=False)


@dataclass(frozen=True)
class Bundle:
    dir: Path
    card: Card
    model: ModelFile
    edgetpu: ModelFile | None
    latent_path: Path | None

    @property
    def model_path(self) -> Path:
        return self.model.path

    @property
    def edgetpu_path(self) -> Path | None:
        return self.edgetpu.path if self.edgetpu is not None else None


def _read_checked(path: Path, expected: str | None) -> ModelFile:
    """The file's bytes, once, checked against the card's sha256 (`expected`; None: a card from
    before edgetpu_sha256, the file as it is)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot be read ({exc.strerror or exc}); check its permissions or {FIX}"
        ) from None
    actual = hashlib.sha256(content).hexdigest()
    if expected is not None and actual != expected:
        raise BundleError(
            f"{path}: sha256 {actual[:12]}... does not match card.json ({expected[:12]}...): "
            f"the file is corrupt or from another export; {FIX}"
        )
    return ModelFile(path, content)


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
    checked = _read_checked(model, card.sha256)
    edgetpu = folder / "model_edgetpu.tflite"
    edgetpu_checked = _read_checked(edgetpu, card.edgetpu_sha256) if edgetpu.is_file() else None
    latent = folder / "latent.npz"
    if card.kind == "dbvae" and not latent.is_file():
        logger.warning("%s: DB-VAE bundle without latent.npz; no rarity meter", folder)
    return Bundle(
        dir=folder,
        card=card,
        model=checked,
        edgetpu=edgetpu_checked,
        latent_path=latent if latent.is_file() else None,
    )
