"""Plots of a trained classifier: learning curves, confusion matrix, the most confident mistakes.

The displays follow scikit-learn's ``*Display`` conventions: build one with
``from_estimator`` (a fitted :class:`~skimgclf.CNNClassifier` or a pipeline
ending in one) or ``from_predictions``, draw into your own axes with
``ax=``, and find what was drawn in the ``ax_``/``figure_`` attributes. In
a notebook they show inline like any matplotlib figure.

- :class:`TrainingHistoryDisplay`: loss and accuracy per epoch, training and
  validation, from ``history_``.
- :class:`ConfusionMatrixDisplay`: scikit-learn's, with classes whose names
  look like numbers ordered as numbers (``"2"`` before ``"10"``).
- :class:`TopLossesDisplay`: a gallery of the images the model got most
  confidently wrong, with the true and predicted labels and the probability.

:func:`sort_labels`, :func:`top_losses` and :func:`most_confused` are the
tables behind them. The ``write_*`` functions are what ``skimgclf train
--report`` and ``skimgclf evaluate --report`` write: figures drawn without
pyplot (no display needed), each file written whole or not at all.

Three modules, by job: :mod:`.tables` (the tables), :mod:`.displays` (the
Displays) and :mod:`.report` (the report files); their public names are
importable from :mod:`skimgclf.plots` itself. Importing this package imports
scikit-learn's metrics, not matplotlib (it is imported when a figure is
drawn) and not TensorFlow.
"""

from .displays import ConfusionMatrixDisplay, TopLossesDisplay, TrainingHistoryDisplay, _displayable, phase_marks
from .report import write_confusion_matrix, write_json, write_learning_curves, write_top_losses
from .tables import most_confused, sort_labels, top_losses

__all__ = [
    "ConfusionMatrixDisplay",
    "TopLossesDisplay",
    "TrainingHistoryDisplay",
    "most_confused",
    "phase_marks",
    "sort_labels",
    "top_losses",
    "write_confusion_matrix",
    "write_json",
    "write_learning_curves",
    "write_top_losses",
]
