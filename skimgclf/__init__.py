"""skimgclf: scikit-learn compatible image classification.

``ImageFolderLoader`` turns a table of image ids into a normalised array;
``CNNClassifier`` is a configurable convolutional network with the
scikit-learn classifier API. ``import skimgclf`` does not import TensorFlow:
the classifier and the model files are loaded on first use.
"""

__version__ = "0.1.0"

__all__ = [
    "BackboneWeightsError",
    "CNNClassifier",
    "ImageFolderLoader",
    "ModelFileError",
    "clear_cache",
    "load",
    "save",
    "__version__",
]

# Every public name is imported on first use, so ``import skimgclf`` costs next
# to nothing: the loader brings scikit-learn (most of a second), the classifier
# TensorFlow (seconds).
_LAZY = {
    "BackboneWeightsError": ".errors",
    "CNNClassifier": ".model.classifier",
    "ImageFolderLoader": ".io.loader",
    "clear_cache": ".io.memcache",
    "ModelFileError": ".errors",
    "load": ".model.persistence",
    "save": ".model.persistence",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        import sys

        if _LAZY[name] == ".model.classifier" and "skimgclf.model.classifier" not in sys.modules:
            # TensorFlow's C++ start-up lines ("oneDNN custom operations are
            # on", "Could not find cuda drivers" on a machine without a GPU)
            # are not for users: a notebook shows them as a red block.
            from ._backend import import_backend

            import_backend()
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
