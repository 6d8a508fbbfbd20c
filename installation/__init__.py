"""Bias Mirror kiosk runtime: source -> region -> two int8 classifiers -> display / stats.

This package never imports TensorFlow or Keras; it reads model bundles only.
"""

import os

# Pygame prints a banner to stdout on import; it would corrupt `bias-mirror bench --json`.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

__version__ = "0.1.0"
