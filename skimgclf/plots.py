"""Plots and report files: learning curves, confusion matrix, metrics.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot
state, no display needed) and every file is written whole or not at all
(:func:`skimgclf._files.atomic_write`). matplotlib is imported only when a
figure is drawn.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ._files import atomic_write

__all__ = [
    "plot_confusion_matrix",
    "plot_learning_curves",
    "write_json",
]


def _save(fig, path):
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return os.fspath(path)


def plot_learning_curves(history, path, *, title="Learning curves"):
    """Draw loss and accuracy per epoch, training vs validation, into a PNG.

    Parameters
    ----------
    history : dict of list of float
        ``CNNClassifier.history_``: ``loss``, ``accuracy`` and, when the
        network watched a validation split, ``val_loss`` and ``val_accuracy``.
    path : str or path-like
        The PNG file to write.
    title : str, default="Learning curves"
        Title of the figure.

    Returns
    -------
    str
        The path written.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    val_loss = history.get("val_loss") or []
    best = int(np.argmin(val_loss)) + 1 if val_loss else None
    for ax, metric, label in ((axes[0], "loss", "loss (cross-entropy)"), (axes[1], "accuracy", "accuracy")):
        for key, name, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
            values = history.get(key) or []
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, markersize=3, label=name)
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1,
                       label=f"lowest validation loss (epoch {best})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(y_true, y_pred, path, *, labels=None, title="Confusion matrix"):
    """Draw the confusion matrix of predictions into a PNG.

    Uses :class:`sklearn.metrics.ConfusionMatrixDisplay`; counts are
    written in the cells when there are at most 30 classes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    path : str or path-like
        The PNG file to write.
    labels : array-like or None, default=None
        Classes in display order; by default the sorted union of both.
    title : str, default="Confusion matrix"
        Title of the figure.

    Returns
    -------
    str
        The path written.
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    if labels is None:
        labels = np.unique(np.concatenate([np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)]))
    n = len(labels)
    side = min(24.0, max(5.0, 0.45 * n + 3))
    fig = Figure(figsize=(side, side * 0.9), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=True, include_values=n <= 30,
        xticks_rotation="vertical" if n > 12 else "horizontal", cmap="Blues",
    )
    accuracy = float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)))
    ax.set_title(f"{title}\naccuracy {accuracy:.4f} on {len(y_true)} images")
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
        The JSON file to write.

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
