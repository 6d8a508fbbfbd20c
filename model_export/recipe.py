"""The training-set recipe: how many faces of each group and how many non-faces are drawn.

The shipped recipe is deliberately skewed toward White faces (95 %, `skewed-strong.yaml`; 80 %,
`skewed.yaml`, until 2026-12-03), like CelebA: the exhibit is about what a model learns from a
skewed training set. The recipe is written into each model card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_export.data import DataError, Row

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "skewed-strong.yaml"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Recipe name, recorded in the card.")
    group_by: str = Field("race", description="Attribute the face shares refer to.")
    faces: dict[str, int] = Field(description="Faces drawn per group value.")
    nonfaces: int = Field(gt=0, description="Non-face images drawn.")
    seed: int = Field(6191, description="Seed of the draw.")
    note: str = Field("", description="Why this recipe; shown in the card.")


def load_recipe(path: Path = DEFAULT_RECIPE) -> Recipe:
    try:
        return Recipe.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        from installation.inference.card import validation_summary

        raise DataError(
            f"{path}: not a valid training recipe ({validation_summary(exc)}); see "
            "model_export/recipes/ for examples"
        ) from None
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise DataError(f"{path}: not a valid training recipe ({exc})") from None


def draw(rows: list[Row], recipe: Recipe) -> list[Row]:
    """Draw the recipe's counts from `rows` (training split, validation removed)."""
    rng = np.random.default_rng(recipe.seed)
    out: list[Row] = []
    for value, n in recipe.faces.items():
        pool = [r for r in rows if r.is_face and r.attrs.get(recipe.group_by) == value]
        if not pool:
            known = sorted({r.attrs.get(recipe.group_by, "") for r in rows if r.is_face} - {""})
            raise DataError(
                f"recipe {recipe.name}: no training face has {recipe.group_by}={value}; "
                + (
                    f"use one of {', '.join(known)}"
                    if known
                    else f"no face has a {recipe.group_by} column value: fix group_by"
                )
            )
        if len(pool) < n:
            raise DataError(
                f"recipe {recipe.name}: {n} faces with {recipe.group_by}={value} wanted, "
                f"only {len(pool)} available; lower the count in the recipe"
            )
        out += [pool[i] for i in rng.choice(len(pool), n, replace=False)]
    pool = [r for r in rows if not r.is_face]
    if len(pool) < recipe.nonfaces:
        raise DataError(
            f"recipe {recipe.name}: {recipe.nonfaces} non-faces wanted, only {len(pool)} available"
        )
    out += [pool[i] for i in rng.choice(len(pool), recipe.nonfaces, replace=False)]
    return out
