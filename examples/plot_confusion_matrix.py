"""
===============================================
Learning curves, confusion matrix and mistakes
===============================================

After training, three pictures tell most of the story: the learning curves
(did it learn, did it overfit?), the confusion matrix (which classes are
mistaken for which?) and the images the model got most confidently wrong
(mislabelled, ambiguous, or a real weakness?). :mod:`skimgclf.plots` draws
each from a fitted pipeline, following scikit-learn's ``*Display``
conventions; in a notebook they show inline.
"""

# %%
# Train
# -----
# The sample digits (8x8 PNG files), read as text as the docs advise, with
# 20 % of the training rows watched as a validation split.
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.pipeline import make_pipeline

from skimgclf import CNNClassifier, ImageFolderLoader
from skimgclf.datasets import make_sample_dataset

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-plots-"))
paths = make_sample_dataset(workdir)
train = pd.read_csv(paths["train_csv"], dtype=str)
test = pd.read_csv(paths["test_labels_csv"], dtype=str)  # test ids with their true labels

model = make_pipeline(
    ImageFolderLoader(workdir / "train"),
    CNNClassifier(conv_blocks=1, filters=16, units=64, epochs=15, validation_split=0.2,
                  random_state=0, verbose=0),
)
model.fit(train, train["label"])
model.set_params(imagefolderloader__image_dir=workdir / "test")

# %%
# The learning curves
# -------------------
# Loss and accuracy per epoch on the training images and on the validation
# split; the dashed line marks the epoch of lowest validation loss, the
# network early stopping keeps.
from skimgclf.plots import ConfusionMatrixDisplay, TopLossesDisplay, TrainingHistoryDisplay

curves = TrainingHistoryDisplay.from_estimator(model)

# %%
# The confusion matrix
# --------------------
# Rows are the true digits, columns the predicted ones; normalised over the
# rows, each cell is the share of a digit predicted as each class. The
# labels are text ("0" ... "9"); skimgclf's display orders labels that look
# like numbers as numbers (scikit-learn's would put "10" before "2").
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 5.5))
ConfusionMatrixDisplay.from_estimator(
    model, test, test["label"], normalize="true", values_format=".2f", cmap="Blues", ax=ax, colorbar=False
)
ax.set_title("Test set, normalised over the true digits")
fig.tight_layout()

# %%
# The pairs of digits mistaken most often, and precision and recall per digit:
from sklearn.metrics import classification_report

from skimgclf.plots import most_confused

y_pred = model.predict(test)
print(pd.DataFrame(most_confused(test["label"], y_pred, n=5)))
print(classification_report(test["label"], y_pred, digits=3))

# %%
# The most confident mistakes
# ---------------------------
# The test images with the largest loss, ``-log p(true digit)``: each is
# titled true → predicted, with the probability the model gave its wrong
# answer. The pipeline loads only the images shown.
display = TopLossesDisplay.from_estimator(model, test, test["label"], n_images=12)

# %%
# The same rows as a table, to find the files:
display.table_.assign(id=test["id"].to_numpy()[display.table_["row"]])

# %%
# Clean up the example's files.
import shutil

shutil.rmtree(workdir)
