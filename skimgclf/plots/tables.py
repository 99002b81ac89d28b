"""The tables behind the plots: labels in order, the most confident mistakes, the most confused pairs.

Importing this module imports neither matplotlib nor TensorFlow.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _as_number(label):
    """``label`` as a float if it is a number or text that reads as one, else None."""
    if isinstance(label, (bool, np.bool_)):
        return None
    if isinstance(label, numbers.Real):
        return float(label) if math.isfinite(label) else None
    if isinstance(label, str):
        try:
            value = float(label.strip())
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    return None


def sort_labels(labels):
    """The distinct class labels in reading order: numbers as numbers, other text as text.

    Labels read from a CSV with ``dtype=str`` (as the docs advise for ids)
    sort as text: ``"0", "1", "10", "11", "2"``. When every label reads as a
    number they are ordered by value (``"0", "1", "2", ..., "10"``; ``"007"``
    sits with ``7``); otherwise they are ordered as text.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Labels, repeats allowed.

    Returns
    -------
    ndarray of shape (n_distinct,)
        The distinct labels, as given (not converted), in that order.

    Examples
    --------
    >>> from skimgclf.plots import sort_labels
    >>> sort_labels(["10", "2", "1", "2", "0"]).tolist()
    ['0', '1', '2', '10']
    >>> sort_labels(["cat", "dog", "bird"]).tolist()
    ['bird', 'cat', 'dog']
    """
    values = np.asarray(labels, dtype=object).ravel()
    distinct = list(dict.fromkeys(values.tolist()))
    numbers_ = [_as_number(v) for v in distinct]
    if all(n is not None for n in numbers_):
        order = sorted(range(len(distinct)), key=lambda i: (numbers_[i], str(distinct[i])))
    else:
        order = sorted(range(len(distinct)), key=lambda i: str(distinct[i]))
    out = np.empty(len(order), dtype=object)
    out[:] = [distinct[i] for i in order]
    plain = np.asarray(labels)
    return out.astype(plain.dtype) if plain.dtype.kind in "iufUSb" else out


def _check_proba(y_true, y_proba, classes):
    y_true = np.asarray(y_true, dtype=object).ravel()
    y_proba = np.asarray(y_proba, dtype=np.float64)
    classes = np.asarray(classes, dtype=object).ravel()
    if y_proba.ndim != 2 or y_proba.shape != (y_true.shape[0], classes.shape[0]):
        raise ValueError(
            f"y_proba has shape {y_proba.shape}; expected (len(y_true), len(classes)) = "
            f"({y_true.shape[0]}, {classes.shape[0]})")
    return y_true, y_proba, classes


def top_losses(y_true, y_proba, classes, n=12, *, unseen="error"):
    """The rows the model got most confidently wrong, worst first.

    A row's loss is the cross-entropy of its true label, ``-log p(true)``:
    the largest losses are the mistakes made with the most confidence. Only
    misclassified rows are listed.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``
        (``predict_proba``).
    classes : array-like of shape (n_classes,)
        The classifier's ``classes_``.
    n : int, default=12
        At most this many rows.
    unseen : {"error", "include"}, default="error"
        A true label that is not among ``classes`` (often integer labels
        against text classes): an error, or a mistake with probability 0.

    Returns
    -------
    DataFrame
        Columns ``row`` (position in the input), ``true``, ``predicted``,
        ``probability`` (of the predicted label), ``true_probability`` and
        ``loss``; at most ``n`` rows, the largest loss first (ties: the
        earlier row first).
    """
    import pandas as pd

    y_true, y_proba, classes = _check_proba(y_true, y_proba, classes)
    pred_col = np.argmax(y_proba, axis=1)
    predicted = classes[pred_col]
    index = {c: i for i, c in enumerate(classes.tolist())}
    true_col = np.array([index.get(v, -1) for v in y_true.tolist()], dtype=np.int64)
    if unseen == "error" and (true_col < 0).any():
        missing = sort_labels(y_true[true_col < 0]).tolist()
        raise ValueError(f"y_true has labels that are not among the classes {classes.tolist()}: {missing[:5]} "
                         "(labels of another type than the classifier's classes_?)")
    rows = np.arange(y_true.shape[0])
    p_true = np.where(true_col >= 0, y_proba[rows, np.maximum(true_col, 0)], 0.0)
    loss = -np.log(np.clip(p_true, 1e-12, 1.0))
    wrong = np.flatnonzero(true_col != pred_col)
    order = wrong[np.lexsort((wrong, -loss[wrong]))][: max(0, int(n))]
    return pd.DataFrame({
        "row": order,
        "true": y_true[order],
        "predicted": predicted[order],
        "probability": y_proba[order, pred_col[order]],
        "true_probability": p_true[order],
        "loss": loss[order],
    })


def most_confused(y_true, y_pred, n=10):
    """The pairs of classes mistaken for each other most often.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    n : int, default=10
        At most this many pairs.

    Returns
    -------
    list of dict
        ``{"true", "predicted", "count", "fraction"}`` for each pair seen at
        least once, where ``fraction`` is the share of that true class's rows
        predicted as that class; the most frequent pair first (ties in
        :func:`sort_labels` order).
    """
    y_true = np.asarray(y_true, dtype=object).ravel()
    y_pred = np.asarray(y_pred, dtype=object).ravel()
    labels = sort_labels(np.concatenate([y_true, y_pred])).tolist()
    rank = {label: i for i, label in enumerate(labels)}
    totals, pairs = {}, {}
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        totals[t] = totals.get(t, 0) + 1
        if t != p:
            pairs[(t, p)] = pairs.get((t, p), 0) + 1
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], rank[kv[0][0]], rank[kv[0][1]]))
    return [{"true": t, "predicted": p, "count": count, "fraction": count / totals[t]}
            for (t, p), count in ranked[: max(0, int(n))]]
