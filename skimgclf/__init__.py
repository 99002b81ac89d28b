"""skimgclf: scikit-learn compatible image classification.

``ImageFolderLoader`` turns a table of image ids into a normalised array;
``CNNClassifier`` is a configurable convolutional network with the
scikit-learn classifier API. ``import skimgclf`` does not import TensorFlow:
the classifier and the model files are loaded on first use.
"""

from ._loader import ImageFolderLoader, clear_cache
from ._persistence import ModelFileError, load, save

__version__ = "0.1.0"

__all__ = [
    "CNNClassifier",
    "ImageFolderLoader",
    "ModelFileError",
    "clear_cache",
    "load",
    "save",
    "__version__",
]

# The classifier imports TensorFlow (seconds): load it on first use.
_LAZY = {"CNNClassifier": "._classifier"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
