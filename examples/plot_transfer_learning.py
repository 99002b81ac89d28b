"""
=======================================================
Transfer learning offline, with a weights file you make
=======================================================

A pretrained backbone learns a new task from far fewer images than a network
trained from scratch. ImageNet weights need a download; this example needs
no network at all: it pretrains a MobileNetV3Small on one task, saves its
weights in the format ``keras.applications`` uses, and fine-tunes it on a
second task of which only 50 images are labelled.

The tasks use scikit-learn's 8x8 digits: the upstream task is telling the
digits 0-4 apart, the downstream one telling 5-9 apart. (The backbone sees
each 8x8 image resized up to 32x32, the smallest size the applications take;
see :ref:`transfer_learning`.)
"""

# %%
# The two tasks
# -------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
X = (digits.images / 16.0).astype("float32")[..., None]  # (n, 8, 8, 1) in [0, 1]
y = digits.target
upstream = y < 5
X_up, y_up = X[upstream], y[upstream]
X_new, X_test, y_new, y_test = train_test_split(X[~upstream], y[~upstream], train_size=50, stratify=y[~upstream],
                                                random_state=0)
print(f"upstream: {len(y_up)} images of 0-4; downstream: {len(y_new)} labelled images of 5-9, "
      f"{len(y_test)} to test on")

# %%
# Pretraining a backbone
# ----------------------
# ``backbone_weights=None`` starts MobileNetV3Small from random weights;
# ``freeze_epochs=0`` and ``fine_tune_fraction=1`` train all of it from the
# first epoch, at the full learning rate. :meth:`~skimgclf.CNNClassifier.save_backbone_weights`
# then writes its weights as ``save_weights`` of
# ``keras.applications.MobileNetV3Small(include_top=False)`` would: the file
# format ``backbone_weights`` takes (an ImageNet file saved on a machine with
# a network is used the same way).
from skimgclf import CNNClassifier

pretrained = CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=None, freeze_epochs=0,
                           fine_tune_fraction=1.0, fine_tune_learning_rate=0.002, epochs=10, random_state=0)
pretrained.fit(X_up, y_up)
weights = Path(tempfile.mkdtemp(prefix="skimgclf-transfer-")) / "digits-0-4.weights.h5"
pretrained.save_backbone_weights(weights)
print("upstream training accuracy:", round(pretrained.score(X_up, y_up), 3))

# %%
# Fine-tuning it on 50 images
# ---------------------------
# All other parameters are the defaults: 12 epochs, the first 4 training
# only the new head on the frozen backbone, the last 8 the whole backbone
# too, at half the learning rate. For comparison, the same backbone from
# random weights and the plain CNN, each on the same 50 images.
candidates = {
    "pretrained backbone": CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=weights, random_state=0),
    "same backbone, random weights": CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=None,
                                                   random_state=0),
    "plain CNN from scratch": CNNClassifier(random_state=0),
}
scores = {}
for name, clf in candidates.items():
    clf.fit(X_new, y_new)
    scores[name] = clf.score(X_test, y_test)
    print(f"{name:<32} test accuracy {scores[name]:.3f}")

# %%
fig, ax = plt.subplots(figsize=(7, 2.4))
ax.barh(list(scores), list(scores.values()), color=["tab:green", "tab:gray", "tab:blue"])
ax.set_xlim(0, 1)
ax.set_xlabel(f"test accuracy on {len(y_test)} digits 5-9 (trained on 50)")
ax.invert_yaxis()
fig.tight_layout()

# %%
# The pretrained weights are what makes the backbone work on 50 images: from
# random weights it is near chance. On these tiny 8x8 digits the plain CNN,
# made for them, is still the better choice; a backbone pays off on photos,
# where its pretrained features are general (``benchmarks/transfer.py``
# measures cifar10k's cats and dogs, and ImageNet weights do far more than
# weights pretrained on a few thousand images).

# %%
# The fine-tuned classifier is saved like any other: :func:`skimgclf.save`
# keeps the whole network, backbone included, and :func:`skimgclf.load`
# needs neither the weights file nor a network.
import skimgclf

model_file = weights.with_name("digits-5-9.skimgclf")
skimgclf.save(candidates["pretrained backbone"], model_file)
weights.unlink()
reloaded = skimgclf.load(model_file)
print("reloaded predictions agree:",
      bool(np.array_equal(reloaded.predict(X_test), candidates["pretrained backbone"].predict(X_test))))
