"""
=============================================
Quick start: the image tutorial as a pipeline
=============================================

The classic "first image classifier" tutorial reads ``train.csv``, loads
every image of ``train/`` into an array, holds out a validation set, defines a
small convolutional network, trains it and predicts the images of ``test/``.
Here the same steps are a scikit-learn :class:`~sklearn.pipeline.Pipeline`
of :class:`~skimgclf.ImageFolderLoader` and :class:`~skimgclf.CNNClassifier`,
and the learning curves come from the fitted classifier's ``history_``.
"""

# %%
# The data: a CSV of ids and a folder of images
# ---------------------------------------------
# :func:`~skimgclf.datasets.make_sample_dataset` writes scikit-learn's 1,797
# handwritten digits (8x8 grayscale) in the tutorial's layout: ``train.csv``
# with ``id,label``, the images as ``train/<id>.png``, and ``test.csv`` with
# ids only, for ``test/<id>.png``.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from skimgclf.datasets import make_sample_dataset

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-quickstart-"))
paths = make_sample_dataset(workdir)
train = pd.read_csv(paths["train_csv"])
test = pd.read_csv(paths["test_csv"])
print(sorted(p.name for p in workdir.iterdir()))
print(train.head())
print(f"{len(train)} labelled training images, {len(test)} test images")

# %%
# A few training images with their labels:
fig, axes = plt.subplots(1, 8, figsize=(8, 1.6))
for ax, row in zip(axes, train.itertuples()):
    ax.imshow(Image.open(workdir / "train" / f"{row.id}.png"), cmap="gray_r")
    ax.set_title(str(row.label))
    ax.axis("off")
fig.tight_layout()

# %%
# A validation set
# ----------------
# Split the *table* rather than the images: the loader reads only the images
# each part needs. Stratifying keeps the class proportions in both parts.
from sklearn.model_selection import train_test_split

train_part, valid_part = train_test_split(
    train, test_size=0.2, random_state=42, stratify=train["label"]
)

# %%
# The model
# ---------
# :class:`~skimgclf.ImageFolderLoader` maps each id to ``train/<id>.png`` and
# returns a float32 array of shape ``(n, height, width, channels)`` scaled to
# [0, 1]. :class:`~skimgclf.CNNClassifier` is the network; the tutorial's
# questions "how many layers, which activation, how many units" are its
# parameters. These images are tiny, so one convolution block and one hidden
# layer suffice. The classifier's training-time augmentation (random shifts
# and flips for photos, shifts, rotations and zooms for grayscale scans; see
# the architecture guide for the rules of ``"auto"``) is off for images as
# small as these 8x8 digits, where moving a digit by a fraction of its size
# only blurs it.
from sklearn.pipeline import make_pipeline

from skimgclf import CNNClassifier, ImageFolderLoader

model = make_pipeline(
    ImageFolderLoader(workdir / "train", target_size=(8, 8), color_mode="grayscale"),
    CNNClassifier(
        conv_blocks=1,  # convolution + pooling blocks
        filters=16,  # filters of the first block
        hidden_layers=1,  # dense layers after the convolutions
        units=64,  # units of each dense layer
        activation="relu",
        epochs=15,
        validation_split=0.1,  # hold out 10% to monitor progress and stop early
        random_state=0,
    ),
)
model

# %%
# Training
# --------
# ``fit`` takes the table of ids and the labels. With
# ``validation_split=0.1`` the classifier keeps 10% of what it is given aside
# to monitor its progress, and stops when the validation loss no longer
# improves.
model.fit(train_part, train_part["label"])
print(f"accuracy on the validation set: {model.score(valid_part, valid_part['label']):.3f}")

# %%
# Learning curves
# ---------------
# ``history_`` holds the per-epoch loss and accuracy on the training data and
# on the classifier's internal validation split. The training figures are
# measured with dropout active, so they trail the validation figures.
history = pd.DataFrame(model[-1].history_)
history.index = history.index + 1
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
history[["loss", "val_loss"]].plot(ax=ax_loss, marker="o")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
history[["accuracy", "val_accuracy"]].plot(ax=ax_acc, marker="o")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
fig.tight_layout()

# %%
# Predicting the test set
# -----------------------
# The loader learns nothing from the data, so pointing the fitted pipeline at
# the test folder is a parameter change. The predictions go to a CSV in the
# format of ``train.csv``.
model.set_params(imagefolderloader__image_dir=workdir / "test")
predictions = test.assign(label=model.predict(test))
predictions.to_csv(workdir / "predictions.csv", index=False)
print(pd.read_csv(workdir / "predictions.csv").head())

# %%
# The sample data set also ships the true test labels, so the predictions can
# be scored:
truth = pd.read_csv(paths["test_labels_csv"])
print(f"test accuracy: {(truth['label'] == predictions['label']).mean():.3f}")

# %%
# Clean up the example's files.
import shutil

shutil.rmtree(workdir)
