"""
======================================================
Batch scoring: save, load in a fresh process, predict
======================================================

Training and scoring usually happen in different processes, often on
different machines. :func:`skimgclf.save` writes a fitted pipeline to a
single file; :func:`skimgclf.load` reads it back *without running any code
from the file*, unlike ``joblib.load`` or ``pickle.load`` (see
:ref:`persistence`). This example trains a pipeline, saves it, then scores
the test folder in a separate Python process that only knows the model file,
and writes the predictions CSV.
"""

# %%
# Train and save
# --------------
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.pipeline import make_pipeline

import skimgclf
from skimgclf import CNNClassifier, ImageFolderLoader
from skimgclf.datasets import make_sample_dataset

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-batch-"))
paths = make_sample_dataset(workdir)
train = pd.read_csv(paths["train_csv"])

model = make_pipeline(
    ImageFolderLoader(workdir / "train", target_size=(8, 8)),
    CNNClassifier(
        conv_blocks=1, filters=16, units=64, epochs=15,
        random_state=0,
    ),
)
model.fit(train, train["label"])
model_file = skimgclf.save(model, workdir / "digits.skimgclf")
print(f"saved {Path(model_file).name}: {Path(model_file).stat().st_size / 1024:.0f} KiB")

# %%
# Score in a fresh process
# ------------------------
# The scoring script below is all a batch job needs: the model file, the
# table of ids and the image folder. It runs in a new Python interpreter, so
# nothing is shared with the training process but the file. The loader is
# pointed at the test folder with ``set_params``; the predictions CSV is
# written to a temporary name and renamed into place, so a failed run never
# leaves a half-written file behind.
import subprocess
import sys

scoring_script = """
import os, sys
import pandas as pd
import skimgclf

model_file, ids_csv, image_dir, out_csv = sys.argv[1:]
model = skimgclf.load(model_file)
model.set_params(imagefolderloader__image_dir=image_dir)
ids = pd.read_csv(ids_csv)
predictions = ids[["id"]].assign(label=model.predict(ids))
predictions.to_csv(out_csv + ".tmp", index=False)
os.replace(out_csv + ".tmp", out_csv)
print(f"wrote {len(predictions)} predictions to {os.path.basename(out_csv)}")
"""
out_csv = workdir / "predictions.csv"
result = subprocess.run(
    [sys.executable, "-c", scoring_script, model_file, paths["test_csv"], paths["test_dir"], out_csv],
    capture_output=True,
    text=True,
    check=True,
)
print(result.stdout)

# %%
# The predictions CSV
# -------------------
predictions = pd.read_csv(out_csv)
print(predictions.head())

# %%
# The fresh process predicts exactly what the training process does:
same = model.set_params(imagefolderloader__image_dir=workdir / "test").predict(predictions)
print("identical to the in-process predictions:", bool((same == predictions["label"]).all()))

truth = pd.read_csv(paths["test_labels_csv"])
print(f"test accuracy: {(truth['label'] == predictions['label']).mean():.3f}")

# %%
# A few test images with the labels predicted for them:
import matplotlib.pyplot as plt
from PIL import Image

fig, axes = plt.subplots(2, 8, figsize=(8, 2.6))
for ax, row in zip(axes.ravel(), predictions.itertuples()):
    ax.imshow(Image.open(workdir / "test" / f"{row.id}.png"), cmap="gray_r")
    ax.set_title(f"predicted {row.label}", fontsize=8)
    ax.axis("off")
fig.tight_layout()

# %%
# Clean up the example's files.
import shutil

shutil.rmtree(workdir)
