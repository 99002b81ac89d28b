"""A fitted model as skimgclf uses it: a loader first, a classifier last.

The one check that a model is such a pipeline (:func:`split_pipeline`), and
the one way to read a long table chunk by chunk with a copy of its loader
(:func:`chunk_loader`), for scoring here and on Dask workers alike.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import os

__all__ = ["chunk_loader", "split_pipeline"]


def split_pipeline(model):
    """``(loader, rest)`` of a fitted ``Pipeline(ImageFolderLoader, ..., classifier)``.

    Parameters
    ----------
    model : object
        The model to check.

    Returns
    -------
    loader : ImageFolderLoader
        The first step.
    rest : Pipeline
        The steps after it (``model[1:]``), ending with the fitted classifier;
        its ``classes_`` are the classifier's.

    Raises
    ------
    TypeError
        If ``model`` is not a pipeline that starts with an ImageFolderLoader
        and ends with a fitted classifier.
    """
    from sklearn.pipeline import Pipeline

    from .io.loader import ImageFolderLoader

    if not (isinstance(model, Pipeline) and len(model.steps) >= 2
            and isinstance(model.steps[0][1], ImageFolderLoader) and hasattr(model.steps[-1][1], "classes_")):
        raise TypeError(
            f"expected a fitted Pipeline whose first step is an ImageFolderLoader and whose last step is a "
            f"fitted classifier, not {type(model).__name__}; save Pipeline([('imagefolderloader', ...), "
            "('cnnclassifier', ...)])")
    return model.steps[0][1], model[1:]


def chunk_loader(loader, *, image_dir=None, id_column="id", n_jobs=None):
    """A copy of ``loader`` for reading a table chunk by chunk, each chunk once.

    Neither cache is used: no chunk is read again, and the in-memory cache
    would grow with the length of the table.

    Parameters
    ----------
    loader : ImageFolderLoader
        The fitted pipeline's loader (not changed).
    image_dir : str, path-like or None, default=None
        Folder of the images; ``None`` keeps the loader's.
    id_column : str, default="id"
        The column of ids.
    n_jobs : int or None, default=None
        Decoding threads; ``None`` keeps the loader's.

    Returns
    -------
    ImageFolderLoader
        The copy, ready to transform chunks.
    """
    params = loader.get_params()
    params["color_mode"], params["target_size"] = loader._settings()  # what the fitted loader decided
    if image_dir is not None:
        params["image_dir"] = os.path.abspath(os.fspath(image_dir))
    if n_jobs is not None and params.get("n_jobs") is None:
        params["n_jobs"] = n_jobs
    params.update(id_column=id_column, cache=False, cache_dir=None, verbose=0)
    return type(loader)(**params)
