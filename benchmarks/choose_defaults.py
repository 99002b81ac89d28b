"""How the colour-photo defaults were chosen: candidate recipes on validation splits of cifar10k's train.csv.

Every candidate is trained on 8,000 images of ``train.csv`` and scored on
the other 2,000 (a stratified split per seed); ``test_labels.csv`` is never
read here. The seed tutorial's recipe (its network, Adam, batch 32, 10
epochs) is timed on the same split, so each fit time is also a ratio.

Usage::

    .venv/bin/python benchmarks/choose_defaults.py --list
    .venv/bin/python benchmarks/choose_defaults.py seed default flips two_convs --seeds 0
    .venv/bin/python benchmarks/choose_defaults.py --data ../shared/data/mnist10k default

Each line printed: candidate, seed, validation accuracy, fit seconds, fit
time / the seed recipe's. Results are appended to ``--out`` (CSV).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = Path(os.environ.get("SKIMGCLF_CIFAR10K", HERE.parent.parent / "shared" / "data" / "cifar10k"))

#: Candidates: CNNClassifier parameters. "seed" is the tutorial's recipe in raw Keras.
CANDIDATES = {
    "default": {},
    "flips": {"random_flip": "horizontal"},
    "two_convs": {"random_flip": "horizontal", "convs_per_block": 2, "padding": "same"},
    "two_convs_ls": {"random_flip": "horizontal", "convs_per_block": 2, "padding": "same", "label_smoothing": 0.1},
    "two_convs_ls_tta": {"random_flip": "horizontal", "convs_per_block": 2, "padding": "same",
                         "label_smoothing": 0.1, "test_time_flip": True},
    # crops and flips only (no rotation or zoom), two convolutions per block
    "two_shift": {"convs_per_block": 2, "padding": "same", "random_rotation": 0, "random_zoom": 0,
                  "label_smoothing": 0.1, "batch_size": 128, "epochs": 16},
    "two_shift_valid": {"convs_per_block": 2, "random_rotation": 0, "random_zoom": 0,
                        "label_smoothing": 0.1, "batch_size": 128, "epochs": 16},
    "two_shift_24": {"convs_per_block": 2, "padding": "same", "random_rotation": 0, "random_zoom": 0,
                     "label_smoothing": 0.1, "batch_size": 128, "epochs": 20, "filters": 24},
    "two_shift_e12": {"convs_per_block": 2, "padding": "same", "random_rotation": 0, "random_zoom": 0,
                      "label_smoothing": 0.1, "batch_size": 128, "epochs": 12, "learning_rate": 0.004},
    "stem_shift": {"filters": [[32], [64, 64], [128, 128]], "padding": "same", "random_rotation": 0,
                   "random_zoom": 0, "label_smoothing": 0.1, "batch_size": 128, "epochs": 16},
    "two_rz": {"convs_per_block": 2, "padding": "same", "label_smoothing": 0.1, "batch_size": 128, "epochs": 16},
    # second round, batches of 64: the old colour blocks for 13 epochs, and blocks that
    # pool between their two convolutions (cheaper per epoch) for more epochs
    "after_both_e13": {"filters": 32, "pool_after": 2, "label_smoothing": 0.1, "epochs": 13},
    "between_40_e16": {"filters": 40, "pool_after": 1, "label_smoothing": 0.1, "epochs": 16},
    "between_40_e18": {"filters": 40, "pool_after": 1, "label_smoothing": 0.1, "epochs": 18},
    "between_32_e20": {"filters": 32, "pool_after": 1, "label_smoothing": 0.1, "epochs": 20},
    # photos (clothing, 64x48): cheaper networks for the same epochs
    "photo_f16": {"filters": 16},
    "photo_pool_early": {"conv_blocks": 4, "filters": [[32], [32], [64, 64], [128, 128]], "pool_after": 2},
    "photo_widen_late": {"filters": [[32], [32, 64], [64, 128]]},
}


def load(data, split_seed, n_train=0.8):
    """(X_train, y_train, X_val, y_val) of a stratified 80/20 split of ``data/train.csv`` (uint8 images)."""
    from sklearn.model_selection import train_test_split

    from skimgclf import ImageFolderLoader

    cache = Path("/tmp") / f"skimgclf-choose-{data.name}.npz"
    table = pd.read_csv(data / "train.csv", dtype=str)
    if cache.exists():
        X = np.load(cache)["X"]
    else:
        X = ImageFolderLoader(data / "train", scale=None, verbose=0).fit_transform(table).astype(np.uint8)
        np.savez(cache, X=X)
    y = table["label"].to_numpy()
    tr, va = train_test_split(np.arange(len(y)), train_size=n_train, stratify=y, random_state=split_seed)
    return X[tr], y[tr], X[va], y[va]


def seed_recipe(X, y, Xv, yv):
    """The tutorial's network, Adam, batch 32, 10 epochs on what it is given; validation accuracy."""
    import keras
    from keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D

    classes, codes = np.unique(y, return_inverse=True)
    model = keras.models.Sequential([
        keras.Input(shape=X.shape[1:]), Conv2D(32, (3, 3), activation="relu"), Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)), Dropout(0.25), Flatten(), Dense(128, activation="relu"), Dropout(0.5),
        Dense(len(classes), activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(X / 255.0, keras.utils.to_categorical(codes, len(classes)), epochs=10, batch_size=32, verbose=0)
    return float((classes[model.predict(Xv / 255.0, verbose=0).argmax(1)] == yv).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="*", default=["seed", "default"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=None, help="override every candidate's epochs")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra CNNClassifier parameters for every candidate (Python literals)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/skimgclf-choose.csv"))
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, params in CANDIDATES.items():
            print(f"{name:<20} {params}")
        return
    import ast

    from skimgclf import CNNClassifier

    extra = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    seed_seconds = None
    for split_seed in args.seeds:
        X, y, Xv, yv = load(args.data, split_seed)
        for name in args.candidates:
            t0 = time.perf_counter()
            if name == "seed":
                acc = seed_recipe(X, y, Xv, yv)
            else:
                params = {**CANDIDATES[name], **extra, **({"epochs": args.epochs} if args.epochs else {})}
                clf = CNNClassifier(random_state=split_seed, **params).fit(X, y)
                acc = float(clf.score(Xv, yv))
            seconds = time.perf_counter() - t0
            if name == "seed":
                seed_seconds = seconds
            ratio = f"{seconds / seed_seconds:.2f}" if seed_seconds else "-"
            line = f"{name},{split_seed},{acc:.4f},{seconds:.1f},{ratio},{args.data.name},{extra or ''}"
            print(line, flush=True)
            with open(args.out, "a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
