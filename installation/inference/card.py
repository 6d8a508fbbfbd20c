"""The model card (`card.json`) of a bundle: the contract between model_export and installation.

model_export writes it (and validates it with these models before writing); installation reads it.
Unknown keys are kept (`extra="allow"`) so an older kiosk can read a newer card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from installation.inference.views import ZOOM_MAX, ZOOM_MIN

CARD_SCHEMA = 1
ModelKind = Literal["baseline", "dbvae"]  # the model family; a DB-VAE bundle has a latent output


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TensorSpec(_Open):
    """Shape and int8 quantization of one tensor: real = scale * (q - zero_point)."""

    name: str = Field(description="Human name, e.g. 'image', 'face_logit', 'latent_mean'.")
    shape: list[int] = Field(description="Tensor shape, batch first, e.g. [1, 64, 64, 3].")
    dtype: Literal["int8", "uint8", "float32"] = Field(description="Element type in the model.")
    scale: float = Field(gt=0, description="Quantization scale.")
    zero_point: int = Field(description="Quantization zero point.")


class InputSpec(TensorSpec):
    color_order: Literal["RGB", "BGR"] = Field("RGB", description="Channel order of the input.")
    pixel_range: tuple[float, float] = Field(
        (0.0, 1.0),
        description="Real value range the 0..255 pixels are scaled to before quantizing.",
    )


class GroupMetric(_Open):
    """Recall of one group on one evaluation set (faces only)."""

    key: str = Field(description="Stable id, e.g. 'race=Black,gender=Female'.")
    label: str = Field(description="Short human label, e.g. 'Black women'.")
    attrs: dict[str, str] = Field(default_factory=dict, description="Attribute -> value.")
    recall: float = Field(ge=0, le=1, description="Share of faces detected at the threshold.")
    recall_std: float | None = Field(None, ge=0, description="Spread over training seeds.")
    recall_mean: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Mean recall of the same recipe over its training seeds (the method's effect, "
        "not one seed's luck); the kiosk shows it when present.",
    )
    mean_p: float = Field(ge=0, le=1, description="Mean face probability.")
    count: int = Field(ge=0, description="Faces in the group.")

    @property
    def shown(self) -> float:
        """The recall the kiosk shows: the multi-seed mean when the card has it, else this
        model's own."""
        return self.recall if self.recall_mean is None else self.recall_mean


class SetMetrics(_Open):
    """All metrics of one model variant (float or int8) on one evaluation set."""

    recall: float = Field(ge=0, le=1, description="Recall over all faces of the set.")
    fpr: float | None = Field(None, ge=0, le=1, description="False-positive rate on non-faces.")
    count: int = Field(ge=0, description="Faces in the set.")
    groups: list[GroupMetric] = Field(default_factory=list, description="Per-group metrics.")
    worst_group: str | None = Field(None, description="Key of the group with the lowest recall.")
    gap: float | None = Field(None, ge=0, le=1, description="Best minus worst group recall.")


class DisplayHint(_Open):
    """Which evaluation set and groups the kiosk panel shows (a few bars, readable at 2 m)."""

    eval_set: str = Field(description="Key into metrics.int8 shown on the kiosk.")
    group_keys: list[str] = Field(default_factory=list, description="Group keys, in display order.")
    gap_real: bool | None = Field(
        None,
        description="Whether the report's bootstrap interval of this model's gap between groups "
        "on eval_set excludes zero; the screen calls a difference a gap only when true.",
    )
    gap_ci95: tuple[float, float] | None = Field(
        None,
        description="The report's 95 % bootstrap interval (over faces, seed means) of this "
        "model's own best minus worst group recall on eval_set; the screen shows it with the "
        "gap. Without it the screen works one out from the groups' Wilson intervals.",
    )


class Card(_Open):
    schema_version: int = Field(CARD_SCHEMA, alias="schema", description="Card schema version.")
    name: str = Field(description="Short model name shown on screen, e.g. 'Baseline CNN'.")
    kind: ModelKind = Field(description="Model family.")
    method: str = Field("", description="How it was trained, in one truthful sentence.")
    version: str = Field(description="Model version.")
    created: str = Field(description="ISO 8601 creation time.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of model.tflite.")
    edgetpu_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of model_edgetpu.tflite, when the export compiled one.",
    )
    input: InputSpec
    outputs: list[TensorSpec] = Field(min_length=1, description="0 = face logit, 1 = latent mean.")
    threshold: float = Field(
        gt=0,
        lt=1,
        allow_inf_nan=False,  # NaN: "not a finite number", not "should be less than 1"
        description="Decision threshold on the face probability.",
    )
    zoom: float | None = Field(
        None,
        ge=ZOOM_MIN,
        le=ZOOM_MAX,
        description="Second view (installation.inference.views): the centre of the crop, this "
        "share of its side, resized back to the input; the face logit is the larger of the two "
        "views' and the threshold is set on that score. None: the crop alone.",
    )
    flip_average: bool = Field(
        False,
        description="Judge each view as it is and mirrored left to right, and average the two "
        "face logits (installation.inference.views); the threshold is set on that score. "
        "False: each view once.",
    )
    license: str = Field(description="License of the weights.")
    training_data: dict[str, Any] = Field(default_factory=dict, description="Recipe and counts.")
    metrics: dict[str, dict[str, SetMetrics]] = Field(
        default_factory=dict, description="'float' / 'int8' -> eval set -> metrics."
    )
    display: DisplayHint | None = Field(None, description="What the kiosk panel shows.")
    debiased: bool | None = Field(
        None,
        description="Right-hand models: whether the report measured the debiasing targets as "
        "met; when false the screen names the method (e.g. 'DB-VAE resampling'), never "
        "'Debiased'.",
    )
    seed_statistics: dict[str, Any] = Field(
        default_factory=dict,
        description="Means and spread over the training seeds of the recipe ('seeds': how many).",
    )

    @property
    def seeds(self) -> int:
        """Training seeds behind the shown recall means (0: one model's own numbers)."""
        return int(self.seed_statistics.get("seeds", 0) or 0)

    @property
    def latent_dim(self) -> int | None:
        return self.outputs[1].shape[-1] if len(self.outputs) > 1 else None

    def display_groups(self) -> list[GroupMetric]:
        """The per-group recall bars for the kiosk panel (int8 metrics, as the kiosk runs int8)."""
        sets = self.metrics.get("int8") or self.metrics.get("float") or {}
        if not sets:
            return []
        name = self.display.eval_set if self.display and self.display.eval_set in sets else None
        chosen = sets[name] if name else next(iter(sets.values()))
        if self.display and self.display.group_keys:
            by_key = {g.key: g for g in chosen.groups}
            return [by_key[k] for k in self.display.group_keys if k in by_key]
        return list(chosen.groups)


def validation_summary(exc: ValidationError) -> str:
    """A pydantic ValidationError on one line: `key.path: message` per problem, no URLs."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
    )


class CardError(ValueError):
    """A card.json that is missing or does not follow the contract."""


def load_card(path: Path) -> Card:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(
            f"{path}: card.json is missing. Fix: re-export the bundle with "
            "`bias-mirror-export export` or copy the whole bundle folder."
        ) from None
    except UnicodeDecodeError as exc:
        raise CardError(
            f"{path}: card.json is not UTF-8 text (byte {exc.start}). Fix: re-export the bundle "
            "or copy the whole bundle folder again."
        ) from None
    except RecursionError:
        raise CardError(
            f"{path}: card.json is nested too deeply to be a model card. Fix: re-export the "
            "bundle or copy the whole bundle folder again."
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CardError(
            f"{path}: card.json is not readable JSON ({exc}). Fix: re-export the bundle."
        ) from None
    try:
        return Card.model_validate(raw)
    except ValidationError as exc:
        raise CardError(
            f"{path}: card.json does not follow the bundle contract ({validation_summary(exc)}). "
            "Fix: re-export the bundle with a matching bias-mirror-export."
        ) from None
