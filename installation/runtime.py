"""Builds the parts every entry point shares: config, the two classifiers, the pipeline.

Also turns the errors a user can fix (bad config, bad bundle, bad source) into one clear line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from installation.config import Config, ConfigError
from installation.config_check import load_checked_config
from installation.inference import BackendError, BundleError, Classifier, load_classifier
from installation.inference.card import CardError
from installation.pipeline import Pipeline
from installation.presence import OccupancyDetector
from installation.region import RegionError, RegionFinder
from installation.sources import SourceError
from installation.types import ImageU8

logger = logging.getLogger(__name__)


class ReportError(OSError):
    """An output file that cannot be written."""


# The errors a user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    BundleError,
    BackendError,
    CardError,
    SourceError,
    RegionError,
    ReportError,
)


def report_user_error(exc: BaseException) -> int:
    """Print a user-fixable error to stderr and return the exit code (1)."""
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 1


@dataclass
class Runtime:
    config: Config
    classifiers: dict[str, Classifier]
    pipeline: Pipeline

    @property
    def backend(self) -> str:
        backends = sorted({c.backend for c in self.classifiers.values()})
        return "+".join(backends)


def load_heatmap_models(config: Config) -> dict[str, Callable[[ImageU8], float]]:
    """side -> the face logit of a crop through a second CPU interpreter of the same int8
    model (installation.heatmap): the pipeline thread owns the first, and an Edge TPU is one
    device, so the heatmaps never compete with the live verdicts for it."""
    m = config.models
    out: dict[str, Callable[[ImageU8], float]] = {}
    for side, path in (("left", m.left), ("right", m.right)):
        out[side] = load_classifier(path, accelerator="cpu", num_threads=1).logit
    return out


def load_models(config: Config) -> dict[str, Classifier]:
    m = config.models
    classifiers = {
        side: load_classifier(
            path,
            accelerator=m.accelerator,
            edgetpu_device=m.edgetpu_device,
            num_threads=m.num_threads,
        )
        for side, path in (("left", m.left), ("right", m.right))
    }
    for side, clf in classifiers.items():
        logger.info(
            "%s model: %s %s (%s) on %s",
            side,
            clf.card.name,
            clf.card.version,
            clf.card.kind,
            clf.backend,
        )
    return classifiers


def build_runtime(config_path: Path | None, *, keep_frame: bool) -> Runtime:
    """Config -> classifiers -> pipeline. Raises one of USER_ERRORS on bad input."""
    config = load_checked_config(config_path)
    classifiers = load_models(config)
    rarity = classifiers["right"].rarity
    pipeline = Pipeline(
        RegionFinder(config.region),
        classifiers,
        rarity=rarity,
        keep_frame=keep_frame,
        presence=OccupancyDetector(config.region.occupancy_min),
    )
    return Runtime(config=config, classifiers=classifiers, pipeline=pipeline)
