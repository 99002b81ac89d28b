"""
====================================
Which digits does the model confuse?
====================================

Accuracy is one number; a confusion matrix shows which classes are mistaken
for which. :class:`~sklearn.metrics.ConfusionMatrixDisplay` works directly on
the fitted pipeline, because it is an ordinary scikit-learn classifier that
takes the table of test ids.
"""

# %%
# Train
# -----
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.pipeline import make_pipeline

from skimgclf import CNNClassifier, ImageFolderLoader
from skimgclf.datasets import make_sample_dataset

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-confusion-"))
paths = make_sample_dataset(workdir)
train = pd.read_csv(paths["train_csv"])
test = pd.read_csv(paths["test_labels_csv"])  # test ids with their true labels

model = make_pipeline(
    ImageFolderLoader(workdir / "train", target_size=(8, 8)),
    CNNClassifier(
        conv_blocks=1, filters=16, units=64, epochs=15,
        random_state=0,
    ),
)
model.fit(train, train["label"])
model.set_params(imagefolderloader__image_dir=workdir / "test")

# %%
# The confusion matrix
# --------------------
# Rows are the true digits, columns the predicted ones; normalising over the
# rows shows the fraction of each digit predicted as each class.
import matplotlib.pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay, classification_report

y_pred = model.predict(test)
fig, ax = plt.subplots(figsize=(6, 5.5))
ConfusionMatrixDisplay.from_predictions(
    test["label"], y_pred, normalize="true", values_format=".2f", cmap="Blues", ax=ax, colorbar=False
)
ax.set_title("Test set, normalised over the true digits")
fig.tight_layout()

# %%
# Precision and recall of each digit:
print(classification_report(test["label"], y_pred, digits=3))

# %%
# The mistakes
# ------------
# The misclassified test images, with the true and the predicted digit, and
# how sure the model was (its predicted probability):
from PIL import Image

proba = model.predict_proba(test).max(axis=1)
wrong = test.assign(pred=y_pred, proba=proba)[y_pred != test["label"]]
wrong = wrong.sort_values("proba", ascending=False).head(12)
fig, axes = plt.subplots(2, 6, figsize=(8, 3.2))
for ax in axes.ravel():
    ax.axis("off")
for ax, row in zip(axes.ravel(), wrong.itertuples()):
    ax.imshow(Image.open(workdir / "test" / f"{row.id}.png"), cmap="gray_r")
    ax.set_title(f"{row.label} as {row.pred}\n({row.proba:.0%})", fontsize=9)
fig.tight_layout()

# %%
# Clean up the example's files.
import shutil

shutil.rmtree(workdir)
