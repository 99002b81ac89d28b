"""The ``*Display`` classes (scikit-learn's conventions), drawn with matplotlib when asked.

Importing this module imports neither matplotlib nor TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as _metrics

from .tables import sort_labels, top_losses


def _classifier(estimator):
    """The final step of a pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _new_axes(n, ncols, size):
    import matplotlib.pyplot as plt

    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), layout="constrained",
                             squeeze=False)
    return fig, axes.ravel()


def _axes_array(ax):
    axes = np.asarray(ax, dtype=object).ravel()
    if axes.size == 0:
        raise ValueError("ax is empty: give a matplotlib Axes, or an array of them")
    return axes


def _figure_of(ax):
    fig = ax.figure
    # A SubFigure's figure is the top-level Figure; the user drew into it.
    return getattr(fig, "figure", fig) if fig is not None else None


def _displayable(images):
    """Images scaled to [0, 1] for ``imshow``: the loader's 0-1, -1..1 and 0-255 scales."""
    images = np.asarray(images, dtype=np.float32)
    if images.size and images.min() < -1e-3:
        images = (images + 1.0) / 2.0
    elif images.size and images.max() > 1.0 + 1e-3:
        images = images / 255.0
    return np.clip(images, 0.0, 1.0)


def _label_text(value):
    return str(value)


# ----------------------------------------------------------------------------- displays
class TrainingHistoryDisplay:
    """Learning curves: loss and accuracy per epoch, on the training and the validation images.

    Build it with :meth:`from_estimator` (a fitted classifier's
    ``history_``) or :meth:`from_history`; :meth:`plot` draws it.

    Parameters
    ----------
    history : dict of list of float
        Per-epoch values: ``loss``, ``accuracy`` and, when a validation split
        was watched, ``val_loss`` and ``val_accuracy`` (Keras' names).
    fine_tuning_from : int or None, default=None
        With a pretrained backbone, the first epoch of fine-tuning (after
        training the head alone); marked on the plot.
    marks : dict of int to str or None, default=None
        Other phases of training to mark, by their first epoch:
        ``{23: "all rows"}`` draws "all rows from epoch 23".

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
        One panel per metric.
    ax_ : matplotlib Axes
        The first panel.
    figure_ : matplotlib Figure
        The figure drawn into.
    lines_ : dict
        ``{key: Line2D}`` for each curve drawn (``"loss"``, ``"val_loss"``, ...).

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against training-set size.

    Examples
    --------
    >>> from skimgclf.plots import TrainingHistoryDisplay
    >>> history = {"loss": [1.2, 0.8, 0.6], "accuracy": [0.5, 0.7, 0.8],
    ...            "val_loss": [1.0, 0.9, 0.95], "val_accuracy": [0.6, 0.65, 0.64]}
    >>> display = TrainingHistoryDisplay.from_history(history)
    >>> [ax.get_title() for ax in display.axes_]
    ['loss', 'accuracy']
    """

    def __init__(self, history, *, fine_tuning_from=None, marks=None):
        self.history = history
        self.fine_tuning_from = fine_tuning_from
        self.marks = marks

    @classmethod
    def from_estimator(cls, estimator, *, metrics=("loss", "accuracy"), ax=None):
        """Plot the learning curves of a fitted classifier.

        Parameters
        ----------
        estimator : CNNClassifier or Pipeline
            Fitted; a pipeline's last step is used.
        metrics : sequence of str, default=("loss", "accuracy")
            The panels, one per metric (each with its ``val_`` curve when
            there is one).
        ax : matplotlib Axes, array of Axes or None, default=None
            One Axes per metric; ``None`` makes a new figure.

        Returns
        -------
        TrainingHistoryDisplay
            The display, drawn.
        """
        clf = _classifier(estimator)
        history = getattr(clf, "history_", None)
        if history is None:
            raise ValueError(f"{type(clf).__name__} has no history_: fit it first")
        return cls(history, marks=phase_marks(clf)).plot(metrics=metrics, ax=ax)

    @classmethod
    def from_history(cls, history, *, metrics=("loss", "accuracy"), ax=None):
        """Plot learning curves from a history dict (``history_``, or Keras' ``History.history``).

        Parameters
        ----------
        history : dict of list of float
            Per-epoch values.
        metrics : sequence of str, default=("loss", "accuracy")
            The panels.
        ax : matplotlib Axes, array of Axes or None, default=None
            One Axes per metric; ``None`` makes a new figure.

        Returns
        -------
        TrainingHistoryDisplay
            The display, drawn.
        """
        return cls(history).plot(metrics=metrics, ax=ax)

    def plot(self, *, metrics=("loss", "accuracy"), ax=None):
        """Draw the curves.

        Parameters
        ----------
        metrics : sequence of str, default=("loss", "accuracy")
            The panels, one per metric.
        ax : matplotlib Axes, array of Axes or None, default=None
            One Axes per metric; ``None`` makes a new figure.

        Returns
        -------
        TrainingHistoryDisplay
            ``self``.
        """
        from matplotlib.ticker import MaxNLocator

        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in metrics if not self.history.get(m)]
        if missing:
            raise ValueError(f"the history holds no {missing[0]!r} (it has {sorted(self.history)})")
        if ax is None:
            fig, axes = _new_axes(len(metrics), len(metrics), (5.0, 3.8))
        else:
            axes = _axes_array(ax)
            if axes.size != len(metrics):
                raise ValueError(f"ax holds {axes.size} Axes for {len(metrics)} metrics {metrics}: give one each")
            fig = _figure_of(axes[0])
        val_loss = self.history.get("val_loss") or []
        best = int(np.nanargmin(val_loss)) + 1 if val_loss and np.isfinite(val_loss).any() else None
        self.lines_ = {}
        for panel, metric in zip(axes, metrics):
            for key, name, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
                values = self.history.get(key) or []
                if values:
                    (self.lines_[key],) = panel.plot(np.arange(1, len(values) + 1), values, style, markersize=3,
                                                     label=name)
            if best is not None:
                panel.axvline(best, color="grey", linestyle="--", linewidth=1,
                              label=f"lowest validation loss (epoch {best})")
            marks = dict(self.marks or {})
            if self.fine_tuning_from is not None:
                marks[self.fine_tuning_from] = "fine-tuning"
            for (epoch, name), colour in zip(sorted(marks.items()), ("tab:red", "tab:purple", "tab:brown")):
                panel.axvline(epoch - 0.5, color=colour, linestyle=":", linewidth=1, label=f"{name} from epoch {epoch}")
            panel.set_xlabel("epoch")
            panel.set_ylabel(metric)
            panel.set_title(metric)
            panel.xaxis.set_major_locator(MaxNLocator(integer=True))
            panel.grid(True, alpha=0.3)
            panel.legend(loc="best", fontsize="small")
        self.axes_, self.ax_, self.figure_ = axes, axes[0], fig
        return self


class ConfusionMatrixDisplay(_metrics.ConfusionMatrixDisplay):
    """scikit-learn's confusion matrix display, classes in :func:`sort_labels` order.

    The same class as :class:`sklearn.metrics.ConfusionMatrixDisplay` (same
    parameters and attributes); only the default order of the classes
    differs: when ``labels`` is not given, labels that read as numbers are
    ordered as numbers (``"2"`` before ``"10"``), where scikit-learn orders
    text labels as text.

    Parameters
    ----------
    confusion_matrix : ndarray of shape (n_classes, n_classes)
        The confusion matrix.
    display_labels : ndarray of shape (n_classes,) or None, default=None
        The class names shown.

    Attributes
    ----------
    im_ : matplotlib AxesImage
        The matrix drawn.
    text_ : ndarray of matplotlib Text or None
        The counts written in the cells.
    ax_ : matplotlib Axes
        The axes drawn into.
    figure_ : matplotlib Figure
        The figure drawn into.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : The display this one extends.

    Examples
    --------
    >>> from skimgclf.plots import ConfusionMatrixDisplay
    >>> y_true = ["10", "2", "2", "1"]
    >>> y_pred = ["10", "2", "1", "1"]
    >>> display = ConfusionMatrixDisplay.from_predictions(y_true, y_pred)
    >>> display.display_labels.tolist()
    ['1', '2', '10']
    """

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, labels=None, **kwargs):
        """Plot the confusion matrix of true and predicted labels.

        ``ConfusionMatrixDisplay.from_estimator`` calls this too, so both
        order the classes the same way.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_pred : array-like of shape (n_samples,)
            Predicted labels.
        labels : array-like of shape (n_classes,) or None, default=None
            The classes in display order; ``None``: every label seen in
            ``y_true`` or ``y_pred``, in :func:`sort_labels` order.
        **kwargs : dict
            As :meth:`sklearn.metrics.ConfusionMatrixDisplay.from_predictions`
            (``normalize``, ``ax``, ``cmap``, ``values_format``, ...).

        Returns
        -------
        ConfusionMatrixDisplay
            The display, drawn.
        """
        if labels is None:
            labels = sort_labels(np.concatenate([np.asarray(y_true, dtype=object).ravel(),
                                                 np.asarray(y_pred, dtype=object).ravel()]))
            # scikit-learn compares labels with np.unique of the union: give it the same type.
            common = np.asarray(np.concatenate([np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()]))
            if common.dtype.kind != "O":
                labels = labels.astype(common.dtype)
        return super().from_predictions(y_true, y_pred, labels=labels, **kwargs)


def _take_rows(X, rows):
    """Rows ``rows`` of a DataFrame, an array or a list (what a pipeline's first step takes)."""
    if hasattr(X, "iloc"):
        return X.iloc[rows]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in rows]
    return np.asarray(X)[rows]


class TopLossesDisplay:
    """A gallery of the images the model got most confidently wrong.

    Each image is titled ``true → predicted`` with the probability the model
    gave the true label and the one it gave its (wrong) prediction
    (``true 3% · pred 72%``); the worst mistake comes first: the lowest
    probability of the true label (the largest loss, ``-log p(true)``). Build it with :meth:`from_estimator` or
    :meth:`from_predictions`; :meth:`plot` draws it.

    Parameters
    ----------
    images : ndarray of shape (n, height, width, channels)
        The images to show, in order (as the loader gives them: 0-1, -1..1
        or 0-255 values).
    y_true : array-like of shape (n,)
        Their true labels.
    y_pred : array-like of shape (n,)
        Their predicted labels.
    probability : array-like of shape (n,)
        The probability of each predicted label.
    true_probability : array-like of shape (n,) or None, default=None
        The probability of each true label, the number the order follows;
        None shows the predicted label's alone.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
        The tiles (unused ones switched off).
    ax_ : matplotlib Axes
        The first tile.
    figure_ : matplotlib Figure
        The figure drawn into.
    table_ : DataFrame or None
        With ``from_estimator`` / ``from_predictions``: the rows shown
        (:func:`top_losses`).

    Examples
    --------
    >>> import numpy as np
    >>> from skimgclf.plots import TopLossesDisplay
    >>> images = np.random.default_rng(0).random((3, 8, 8, 1))
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> display = TopLossesDisplay.from_predictions(["a", "b", "b"], proba, images, classes=["a", "b"])
    >>> display.table_[["row", "true", "predicted"]].values.tolist()
    [[2, 'b', 'a']]
    """

    def __init__(self, images, y_true, y_pred, probability, true_probability=None):
        self.images = images
        self.y_true = y_true
        self.y_pred = y_pred
        self.probability = probability
        self.true_probability = true_probability
        self.table_ = None

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n_images=12, ncols=6, ax=None):
        """Show the most confident mistakes of a fitted classifier or pipeline on ``(X, y)``.

        Parameters
        ----------
        estimator : CNNClassifier or Pipeline
            Fitted. With a pipeline (``ImageFolderLoader`` first), ``X`` is
            what it takes (the table of ids) and the images shown are its
            loader's output for the rows shown.
        X : array-like
            Images, or the pipeline's input.
        y : array-like of shape (n_samples,)
            True labels.
        n_images : int, default=12
            At most this many images.
        ncols : int, default=6
            Tiles per row when a new figure is made.
        ax : array of matplotlib Axes or None, default=None
            The tiles to draw into (as many images as tiles at most);
            ``None`` makes a new figure.

        Returns
        -------
        TopLossesDisplay
            The display, drawn.
        """
        clf = _classifier(estimator)
        table = top_losses(y, estimator.predict_proba(X), clf.classes_, n=n_images)
        rows = table["row"].to_numpy()
        chosen = _take_rows(X, rows) if len(rows) else None
        steps = getattr(estimator, "steps", None)
        if chosen is None:
            images = np.zeros((0, 1, 1, 1), dtype=np.float32)
        elif steps and len(steps) > 1:
            images = estimator[:-1].transform(chosen)
        else:
            images = np.asarray(chosen)
        return cls._from_table(images, table).plot(ncols=ncols, ax=ax)

    @classmethod
    def from_predictions(cls, y_true, y_proba, images, *, classes, n_images=12, ncols=6, ax=None):
        """Show the most confident mistakes given the probabilities and the images.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_proba : array-like of shape (n_samples, n_classes)
            Predicted probabilities (``predict_proba``).
        images : ndarray of shape (n_samples, height, width, channels)
            The images, in the rows' order.
        classes : array-like of shape (n_classes,)
            The columns of ``y_proba`` (the classifier's ``classes_``).
        n_images : int, default=12
            At most this many images.
        ncols : int, default=6
            Tiles per row when a new figure is made.
        ax : array of matplotlib Axes or None, default=None
            The tiles to draw into; ``None`` makes a new figure.

        Returns
        -------
        TopLossesDisplay
            The display, drawn.
        """
        if len(images) != len(y_true):
            raise ValueError(f"images has {len(images)} rows but y_true {len(y_true)}")
        table = top_losses(y_true, y_proba, classes, n=n_images)
        return cls._from_table(np.asarray(images)[table["row"].to_numpy()], table).plot(ncols=ncols, ax=ax)

    @classmethod
    def _from_table(cls, images, table):
        display = cls(images, table["true"].to_numpy(), table["predicted"].to_numpy(),
                      table["probability"].to_numpy(), table["true_probability"].to_numpy())
        display.table_ = table
        return display

    def plot(self, *, ncols=6, ax=None):
        """Draw the gallery.

        Parameters
        ----------
        ncols : int, default=6
            Tiles per row when a new figure is made.
        ax : array of matplotlib Axes or None, default=None
            The tiles; ``None`` makes a new figure with one tile per image.

        Returns
        -------
        TopLossesDisplay
            ``self``.
        """
        images = np.asarray(self.images)
        if images.ndim == 3:  # (n, height, width): one channel
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            raise ValueError(f"images must have shape (n, height, width, 1, 3 or 4 channels); got {images.shape}")
        n = images.shape[0]
        if ax is None:
            ncols = max(1, min(int(ncols), max(n, 1)))
            fig, axes = _new_axes(max(n, 1), ncols, (1.7, 1.9))
        else:
            axes = _axes_array(ax)
            fig = _figure_of(axes[0])
        shown = _displayable(images[: axes.size]) if n else images
        for i, tile in enumerate(axes):
            tile.set_axis_off()
            if i >= shown.shape[0]:
                continue
            image = shown[i]
            if image.shape[-1] == 1:
                tile.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                tile.imshow(image[..., :4])
            tile.set_title(f"{_label_text(self.y_true[i])} → {_label_text(self.y_pred[i])}\n"
                           f"{self._numbers(i)}", fontsize=9)
        if n == 0:
            axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center",
                         transform=axes[0].transAxes)
        if fig is not None and ax is None:
            fig.suptitle(f"Most confident mistakes: {self.legend()}", fontsize=10)
        self.axes_, self.ax_, self.figure_ = axes, axes[0], fig
        return self

    def _numbers(self, i):
        """The probabilities under tile ``i``: of the true label (the order) and of the prediction."""
        if self.true_probability is None:
            return f"{float(self.probability[i]):.0%}"
        return f"true {float(self.true_probability[i]):.0%} · pred {float(self.probability[i]):.0%}"

    def legend(self):
        """What each tile's title says, for the figure's title.

        Returns
        -------
        str
        """
        if self.true_probability is None:
            return "true → predicted (probability of the prediction)"
        return ("true → predicted (probability of the true label · of the prediction), "
                "lowest probability of the true label first")


def phase_marks(clf):
    """``{first epoch: phase}`` of a fitted classifier's training: fine-tuning after the head, with a backbone.

    Parameters
    ----------
    clf : CNNClassifier
        Fitted.

    Returns
    -------
    dict of int to str
        Empty without a backbone, or when one phase took every epoch.
    """
    head = getattr(clf, "freeze_epochs_", 0) if getattr(clf, "backbone", None) else 0
    epochs = len(getattr(clf, "history_", {}).get("loss", []))
    return {head + 1: "fine-tuning"} if 0 < head < epochs else {}
