"""A small embedded sample data set in the seed layout (no download needed)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

__all__ = ["make_sample_dataset"]


def make_sample_dataset(path, *, test_size=0.2, upscale=1, random_state=0):
    """Write scikit-learn's bundled digits as PNG files in the seed layout.

    Creates ``train.csv`` (``id,label``), ``train/<id>.png``, ``test.csv``
    (``id`` only), ``test/<id>.png`` and ``test_labels.csv`` (``id,label``, to
    score predictions) under ``path``: 1,797 grayscale 8x8 digits in ten
    classes, shuffled with ``random_state``. Nothing is downloaded: the
    images ship with scikit-learn.

    Parameters
    ----------
    path : str or path-like
        Folder to write into (created if needed).
    test_size : float, default=0.2
        Fraction of the images that go to the test set.
    upscale : int, default=1
        Integer factor to enlarge the 8x8 images by (nearest neighbour), e.g.
        ``upscale=4`` writes 32x32 images.
    random_state : int, default=0
        Seed of the shuffle.

    Returns
    -------
    dict of str to str
        Paths of ``train_csv``, ``train_dir``, ``test_csv``, ``test_dir`` and
        ``test_labels_csv``.

    Examples
    --------
    >>> import tempfile
    >>> from skimgclf.datasets import make_sample_dataset
    >>> paths = make_sample_dataset(tempfile.mkdtemp())
    >>> sorted(paths)
    ['test_csv', 'test_dir', 'test_labels_csv', 'train_csv', 'train_dir']
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    if upscale > 1:
        images = images.repeat(upscale, axis=1).repeat(upscale, axis=2)
    order = np.random.default_rng(random_state).permutation(len(images))
    n_test = int(round(test_size * len(images)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    path = os.fspath(path)
    out = {
        "train_csv": os.path.join(path, "train.csv"),
        "train_dir": os.path.join(path, "train"),
        "test_csv": os.path.join(path, "test.csv"),
        "test_dir": os.path.join(path, "test"),
        "test_labels_csv": os.path.join(path, "test_labels.csv"),
    }
    for split, idx in (("train", train_idx), ("test", test_idx)):
        folder = out[f"{split}_dir"]
        os.makedirs(folder, exist_ok=True)
        for i in idx:
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, f"{i}.png"))
    pd.DataFrame({"id": train_idx, "label": digits.target[train_idx]}).to_csv(out["train_csv"], index=False)
    pd.DataFrame({"id": test_idx}).to_csv(out["test_csv"], index=False)
    pd.DataFrame({"id": test_idx, "label": digits.target[test_idx]}).to_csv(out["test_labels_csv"], index=False)
    return out
