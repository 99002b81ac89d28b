"""
=====================================================
Choosing layers, units and activations by grid search
=====================================================

The tutorial's model-design questions (how many layers, how many units,
which activation) are plain parameters of :class:`~skimgclf.CNNClassifier`,
so scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` can answer
them by cross-validation. The pipeline starts from the table of image ids:
:class:`~skimgclf.ImageFolderLoader` keeps decoded images in a process-wide
cache, so the images are decoded once, not once per fold and candidate.
"""

# %%
# Data
# ----
import tempfile
from pathlib import Path

import pandas as pd

from skimgclf.datasets import make_sample_dataset

workdir = Path(tempfile.mkdtemp(prefix="skimgclf-grid-"))
paths = make_sample_dataset(workdir)
train = pd.read_csv(paths["train_csv"])

# %%
# Image caching
# -------------
# The first load decodes the PNG files; the second is served from the cache,
# which is keyed by each file's path, size and modification time and by the
# decoding parameters (a changed file or another ``target_size`` misses).
from time import perf_counter

import skimgclf
from skimgclf import ImageFolderLoader

skimgclf.clear_cache()
loader = ImageFolderLoader(workdir / "train", target_size=(8, 8)).fit(train)  # decides: grayscale
for attempt in ("first load (decoding)", "second load (cached)"):
    start = perf_counter()
    X = loader.transform(train)
    print(f"{attempt}: {X.shape} in {perf_counter() - start:.3f} s")

# %%
# The search
# ----------
# Eight candidates: one or two hidden layers of 16 or 64 units, with ReLU or
# tanh activations. As in the tutorial, each candidate is scored on one
# held-out validation set (a stratified quarter of the training table); with
# more time, ``cv=5`` averages over five folds instead. The estimator is a
# classifier to scikit-learn, so integer ``cv`` values give stratified folds
# too. The search does the validating, so the classifier trains on all it is
# given (``validation_split=0``, no early stopping). The networks are tiny:
# most of each fit's time is building the network, not training it.
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline

from skimgclf import CNNClassifier

pipe = make_pipeline(
    ImageFolderLoader(workdir / "train", target_size=(8, 8)),
    CNNClassifier(
        conv_blocks=1, filters=8, epochs=8, batch_size=32, validation_split=0,
        random_state=0,
    ),
)
param_grid = {
    "cnnclassifier__hidden_layers": [1, 2],
    "cnnclassifier__units": [16, 64],
    "cnnclassifier__activation": ["relu", "tanh"],
}
validation = StratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
search = GridSearchCV(pipe, param_grid, cv=validation)
search.fit(train, train["label"])
print("best parameters:", search.best_params_)
print(f"best validation accuracy: {search.best_score_:.3f}")

# %%
# The results
# -----------
# ``cv_results_`` is a table of every candidate's scores and fit times.
results = pd.DataFrame(search.cv_results_)
results["candidate"] = [
    f"{p['cnnclassifier__hidden_layers']} x {p['cnnclassifier__units']} {p['cnnclassifier__activation']}"
    for p in results["params"]
]
results = results.sort_values("mean_test_score")
print(results[["candidate", "mean_test_score", "mean_fit_time"]].to_string(index=False))

# %%
# The validation accuracy of each candidate:
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 4))
colors = ["tab:blue" if "relu" in c else "tab:orange" for c in results["candidate"]]
ax.barh(results["candidate"], results["mean_test_score"], color=colors)
ax.set(xlabel="validation accuracy", ylabel="hidden layers x units, activation",
       xlim=(max(0.0, results["mean_test_score"].min() - 0.1), 1.0),
       title="Grid search over the dense head")
fig.tight_layout()

# %%
# The best model
# --------------
# ``GridSearchCV`` refits the best candidate on all the training data;
# ``best_estimator_`` is an ordinary fitted pipeline, ready to predict the
# test folder.
best = search.best_estimator_.set_params(imagefolderloader__image_dir=workdir / "test")
test = pd.read_csv(paths["test_labels_csv"])
print(f"test accuracy of the best candidate: {best.score(test, test['label']):.3f}")

# %%
# Clean up the example's files.
import shutil

shutil.rmtree(workdir)
