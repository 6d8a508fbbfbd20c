"""Model bundles -> classifiers. Reads only bundles; never imports TensorFlow or Keras."""

from installation.inference.backends import BackendError, make_interpreter
from installation.inference.bundle import Bundle, BundleError, load_bundle
from installation.inference.classifier import Classifier, load_classifier
from installation.inference.rarity import Rarity

__all__ = [
    "BackendError",
    "Bundle",
    "BundleError",
    "Classifier",
    "Rarity",
    "load_bundle",
    "load_classifier",
    "make_interpreter",
]
