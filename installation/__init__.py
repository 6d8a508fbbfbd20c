"""Bias Mirror kiosk runtime: source -> region -> two int8 classifiers -> display / stats.

This package never imports TensorFlow or Keras; it reads model bundles only.
"""

__version__ = "0.1.0"
