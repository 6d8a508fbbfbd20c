"""Where the project's files live, and how relative paths in a config are resolved."""

from __future__ import annotations

import os
from pathlib import Path

# The checkout (or installed tree) root: installation/ and assets/ sit side by side.
PROJECT_ROOT = Path(os.environ.get("BIAS_MIRROR_HOME", Path(__file__).resolve().parent.parent))
ASSETS_DIR = PROJECT_ROOT / "assets"
DEFAULT_CONFIG = ASSETS_DIR / "config" / "default.yaml"
TEXTS_DIR = ASSETS_DIR / "texts"
MODELS_DIR = ASSETS_DIR / "models"
SCREENSHOTS_DIR = ASSETS_DIR / "screenshots"  # the README's, written by `make assets`
# The bundle contract's two folders (DESIGN.md): the left-hand model's, then the right-hand one's.
BUNDLE_FOLDERS: tuple[str, str] = ("baseline", "debiased")


def cache_dir() -> Path:
    """A writable folder for re-creatable files (the demo clip); never for visitor data."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "bias-mirror"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(path: Path, *bases: Path) -> Path:
    """Resolve a relative path against each base in turn (first that exists wins).

    Order used for config files: the config file's folder, the working directory, the project
    root. If none exists the project-root candidate is returned so error messages name it.
    """
    if path.is_absolute():
        return path
    candidates = [b / path for b in (*bases, Path.cwd(), PROJECT_ROOT)]
    for cand in candidates:
        if cand.exists():
            return cand.resolve()
    return candidates[-1]


def state_dir() -> Path:
    """Where the kiosk keeps what staff set and must survive a restart (the language set over
    MQTT). Never frames or visitor data. systemd's StateDirectory= sets $STATE_DIRECTORY."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bias-mirror"
