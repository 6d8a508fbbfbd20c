"""Training, fairness evaluation and int8 export of the two Bias Mirror models (Keras 3).

Nothing runs at import time; every entry point takes explicit seeds.
"""

__version__ = "0.1.0"
