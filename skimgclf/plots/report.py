"""The files ``skimgclf train --report`` and ``evaluate --report`` write: PNG figures and metrics.json.

Figures are drawn without pyplot (no display needed); each file is written
whole or not at all. Importing this module imports neither matplotlib nor
TensorFlow.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .._files import atomic_write
from .displays import ConfusionMatrixDisplay, TopLossesDisplay, TrainingHistoryDisplay, _label_text
from .tables import sort_labels


def _figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def _save(fig, path):
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return os.fspath(path)


def write_learning_curves(history, path, *, title="Learning curves", fine_tuning_from=None, marks=None):
    """Draw :class:`TrainingHistoryDisplay` into a PNG file (no pyplot, no display needed).

    Parameters
    ----------
    history : dict of list of float
        ``CNNClassifier.history_``.
    path : str or path-like
        The PNG file to write (whole or not at all).
    title : str, default="Learning curves"
        Title of the figure.
    fine_tuning_from : int or None, default=None
        First epoch of fine-tuning, marked (see :class:`TrainingHistoryDisplay`).
    marks : dict of int to str or None, default=None
        Other phases, by their first epoch (see :class:`TrainingHistoryDisplay`).

    Returns
    -------
    str
        The path written.
    """
    fig = _figure((10, 4))
    TrainingHistoryDisplay(history, fine_tuning_from=fine_tuning_from, marks=marks).plot(ax=fig.subplots(1, 2))
    fig.suptitle(title)
    return _save(fig, path)


def write_confusion_matrix(y_true, y_pred, path, *, labels=None, title="Confusion matrix"):
    """Draw :class:`ConfusionMatrixDisplay` into a PNG file (no pyplot, no display needed).

    Counts are written in the cells when there are at most 30 classes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    path : str or path-like
        The PNG file to write (whole or not at all).
    labels : array-like or None, default=None
        Classes in display order; by default :func:`sort_labels` of both.
    title : str, default="Confusion matrix"
        Title of the figure.

    Returns
    -------
    str
        The path written.
    """
    if labels is None:
        labels = sort_labels(np.concatenate([np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)]))
    n = len(labels)
    side = min(24.0, max(5.0, 0.45 * n + 3))
    fig = _figure((side, side * 0.9))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, display_labels=[_label_text(v) for v in labels], ax=ax, colorbar=True,
        include_values=n <= 30, xticks_rotation="vertical" if n > 12 else "horizontal", cmap="Blues",
    )
    accuracy = float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)))
    ax.set_title(f"{title}\naccuracy {accuracy:.4f} on {len(y_true)} images")
    return _save(fig, path)


def write_top_losses(images, table, path, *, title="Most confident mistakes", ncols=6):
    """Draw :class:`TopLossesDisplay` of the rows of a :func:`top_losses` table into a PNG file.

    Parameters
    ----------
    images : ndarray of shape (len(table), height, width, channels) or None
        The images of the table's rows, in its order (None: the table is empty).
    table : DataFrame
        :func:`top_losses`' table (``true``, ``predicted``, ``probability``,
        ``true_probability``).
    path : str or path-like
        The PNG file to write (whole or not at all).
    title : str, default="Most confident mistakes"
        Title of the figure.
    ncols : int, default=6
        Tiles per row.

    Returns
    -------
    str
        The path written.
    """
    if images is None:
        images = np.zeros((0, 1, 1, 1), dtype=np.float32)
    n = max(1, len(table))
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig = _figure((1.7 * ncols, 1.9 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    display = TopLossesDisplay._from_table(images, table).plot(ax=axes)
    fig.suptitle(f"{title}: {display.legend()}", fontsize=10, wrap=True)
    return _save(fig, path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def write_json(data, path):
    """Write ``data`` as indented JSON (NumPy values converted, keys as text).

    Parameters
    ----------
    data : dict
        The metrics.
    path : str or path-like
        The JSON file to write (whole or not at all).

    Returns
    -------
    str
        The path written.
    """
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(data), fh, indent=2, sort_keys=False)
            fh.write("\n")
    return os.fspath(path)
