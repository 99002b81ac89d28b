"""
======================================================
Colour photos of many sizes, with the default settings
======================================================

Most folders of images are photos: JPEG files of several sizes, in colour.
:class:`~skimgclf.ImageFolderLoader` needs nothing to be told about them --
it finds each id's file whatever its extension and decides the colour mode
and the size from the images at ``fit`` -- and the defaults of
:class:`~skimgclf.CNNClassifier` that depend on the images switch on for
colour: random horizontal flips while training, and the average of each
image and its mirror image at prediction.
"""

# %%
# The photos
# ----------
# :func:`~skimgclf.datasets.make_sample_photos` cuts two photographs that
# ship with scikit-learn (a temple and a flower) into a few hundred photos of
# different sizes and colours, in the tutorial's layout. The ids are
# zero-padded, so the CSVs are read with ``dtype={"id": str}``.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from skimgclf.datasets import make_sample_photos

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-photos-"))
paths = make_sample_photos(workdir, n_images=240, max_side=400)
train = pd.read_csv(paths["train_csv"], dtype={"id": str})
test = pd.read_csv(paths["test_csv"], dtype={"id": str})
sizes = pd.Series([Image.open(Path(paths["train_dir"]) / f"{i}.jpg").size for i in train["id"]])
print(train.head())
print("sizes (width, height):", sizes.value_counts().head(5).to_dict())

# %%
fig, axes = plt.subplots(1, 6, figsize=(10, 2.2))
for ax, row in zip(axes, train.itertuples()):
    ax.imshow(Image.open(Path(paths["train_dir"]) / f"{row.id}.jpg"))
    ax.set_title(row.label)
    ax.axis("off")
fig.tight_layout()

# %%
# What the loader decides
# -----------------------
# Fitted on the training ids, the loader looks at up to 50 of the images:
# they are in colour, and no size is shared by half of them, so it takes
# their median size, shrunk to 64 pixels on the longer side.
from skimgclf import CNNClassifier, ImageFolderLoader

loader = ImageFolderLoader(paths["train_dir"]).fit(train)
print("colour mode:", loader.color_mode_, "- size:", loader.target_size_)

# %%
# Training with the defaults
# --------------------------
from sklearn.pipeline import make_pipeline

model = make_pipeline(ImageFolderLoader(paths["train_dir"]), CNNClassifier(random_state=0))
model.fit(train, train["label"])
network = model[-1].model_
print([layer.name for layer in network.layers if "random" in layer.name])  # the training-time augmentation

# %%
# Predicting the test photos
# --------------------------
# The test folder is loaded as the training folder was (colour, the same
# size), and each photo is predicted together with its mirror image.
model.set_params(imagefolderloader__image_dir=paths["test_dir"])
truth = pd.read_csv(paths["test_labels_csv"], dtype={"id": str})
predicted = model.predict(test)
print(f"test accuracy: {(predicted == truth['label'].to_numpy()).mean():.3f} on {len(test)} photos")

fig, axes = plt.subplots(1, 6, figsize=(10, 2.2))
for ax, image_id, label in zip(axes, test["id"], predicted):
    ax.imshow(Image.open(Path(paths["test_dir"]) / f"{image_id}.jpg"))
    ax.set_title(f"predicted: {label}", fontsize=9)
    ax.axis("off")
fig.tight_layout()
