"""Training, fairness evaluation and int8 export of the two Bias Mirror models (Keras 3).

Nothing runs at import time; every entry point takes explicit seeds.
"""

from installation import __version__  # one version for the project (pyproject.toml)

__all__ = ["__version__"]
