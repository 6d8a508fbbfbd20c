"""Builds the parts every entry point shares: config, the two classifiers, the pipeline.

Also turns the errors a user can fix (bad config, bad bundle, bad source) into one clear line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from installation.config import Config, ConfigError
from installation.config_check import load_checked_config
from installation.heatmap import OccludedLogitsFn
from installation.inference import BackendError, BundleError, Classifier, load_classifier
from installation.inference.card import CardError
from installation.inference.classifier import load_occluder
from installation.inference.concurrent import judge_at_once
from installation.pipeline import Pipeline
from installation.presence import OccupancyDetector
from installation.region import RegionError, RegionFinder
from installation.sources import SourceError
from installation.types import SIDES

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


# Exit codes of every command (README "Commands"): 1 is left to Python's own exit on an
# unhandled exception (a bug, with its traceback); 2 is something the user can fix (the unit's
# RestartPreventExitStatus=2: restarting cannot fix a config, so systemd stops trying).
EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_SHORT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def report_user_error(exc: BaseException) -> int:
    """Print a user-fixable error to stderr and return the exit code (EXIT_USER)."""
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_USER


@dataclass
class Runtime:
    config: Config
    classifiers: dict[str, Classifier]  # the sides that loaded
    pipeline: Pipeline
    # side -> why its bundle did not load (the kiosk runs on the other side and says so).
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        backends = sorted({c.backend for c in self.classifiers.values()})
        return "+".join(backends)


def load_heatmap_occluders(config: Config, sides: Iterable[str] = SIDES) -> dict[str, Classifier]:
    """side -> a second CPU classifier of the same int8 model for the heatmaps
    (installation.heatmap), its occlusions batched when they can be (`load_occluder`): the
    pipeline thread owns the first, and an Edge TPU is one device, so the heatmaps never compete
    with the live verdicts for it. Only `sides` (the ones whose bundle loaded)."""
    m = config.models
    paths = {"left": m.left, "right": m.right}
    return {side: load_occluder(paths[side]) for side in sides}


def load_heatmap_models(
    config: Config, sides: Iterable[str] = SIDES
) -> dict[str, OccludedLogitsFn]:
    """side -> the occluded logits of a crop, as the kiosk's heatmap worker calls them."""
    return {side: o.occluded_logits for side, o in load_heatmap_occluders(config, sides).items()}


def load_models(
    config: Config, *, allow_one_failed: bool = False
) -> tuple[dict[str, Classifier], dict[str, str]]:
    """(side -> classifier, side -> error message). Without `allow_one_failed` any broken
    bundle raises; with it (the kiosk) one broken side is returned as a message, so the
    exhibit keeps running on the other. Both broken raises one BundleError naming both."""
    m = config.models
    classifiers: dict[str, Classifier] = {}
    failed: dict[str, str] = {}
    for side, path in (("left", m.left), ("right", m.right)):
        try:
            classifiers[side] = load_classifier(
                path,
                accelerator=m.accelerator,
                edgetpu_device=m.edgetpu_device,
                num_threads=m.num_threads,
            )
        except BackendError:
            raise  # the accelerator, not the bundle: the same for both sides
        except (BundleError, CardError) as exc:
            if not allow_one_failed:
                raise
            failed[side] = str(exc)
    if not classifiers:
        raise BundleError(
            "neither model bundle loads: "
            + " | ".join(f"models.{side}: {msg}" for side, msg in failed.items())
        )
    for side, msg in failed.items():
        logger.error(
            "models.%s did not load, the kiosk runs on the other model and shows a notice: %s",
            side,
            msg,
        )
    for side, clf in classifiers.items():
        logger.info(
            # `kind` is the network family of the contract (baseline: a plain classifier; dbvae:
            # with a latent output), not a verdict on the model: a balanced model is "baseline".
            "%s model: %s %s (%s network) on %s",
            side,
            clf.card.name,
            clf.card.version,
            "classifier" if clf.card.kind == "baseline" else "DB-VAE",
            clf.backend,
        )
    return classifiers, failed


def build_runtime(
    config_path: Path | None, *, keep_frame: bool, allow_one_failed: bool = False
) -> Runtime:
    """Config -> classifiers -> pipeline. Raises one of USER_ERRORS on bad input.

    `allow_one_failed` (the kiosk): one broken bundle leaves that side out (`Runtime.failed`)
    instead of raising; `replay` and `bench` need both and keep it off."""
    # With one side allowed to fail, a missing bundle is the loader's to report, per side.
    config = load_checked_config(config_path, models=not allow_one_failed)
    classifiers, failed = load_models(config, allow_one_failed=allow_one_failed)
    right = classifiers.get("right")
    pipeline = Pipeline(
        RegionFinder(config.region),
        classifiers,
        rarity=right.rarity if right is not None else None,
        keep_frame=keep_frame,
        presence=OccupancyDetector(config.region.occupancy_min),
        parallel=judge_at_once(
            [c.backend for c in classifiers.values()], config.models.num_threads
        ),
    )
    if pipeline.parallel:
        logger.info("both models judge each crop at once, the right-hand one on its own thread")
    return Runtime(config=config, classifiers=classifiers, pipeline=pipeline, failed=failed)
