"""Bias Mirror kiosk runtime: source -> region -> two int8 classifiers -> display / stats.

This package never imports TensorFlow or Keras; it reads model bundles only.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Pygame prints a banner to stdout on import; it would corrupt `bias-mirror bench --json`.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

try:
    # pyproject.toml is the one place the version is written; an install records it.
    __version__ = version("bias-mirror")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
