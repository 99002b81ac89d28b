"""Small sample data sets in the seed layout, made from data scikit-learn ships (no download).

- :func:`make_sample_dataset`: 1,797 handwritten digits, 8x8 grayscale PNGs.
- :func:`make_sample_photos`: colour JPEG photos of many sizes, two classes.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

__all__ = ["make_sample_dataset", "make_sample_photos"]


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
    out = _layout(path)
    for split, idx in (("train", train_idx), ("test", test_idx)):
        folder = out[f"{split}_dir"]
        os.makedirs(folder, exist_ok=True)
        for i in idx:
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, f"{i}.png"))
    pd.DataFrame({"id": train_idx, "label": digits.target[train_idx]}).to_csv(out["train_csv"], index=False)
    pd.DataFrame({"id": test_idx}).to_csv(out["test_csv"], index=False)
    pd.DataFrame({"id": test_idx, "label": digits.target[test_idx]}).to_csv(out["test_labels_csv"], index=False)
    return out


def make_sample_photos(path, *, n_images=300, max_side=500, test_size=0.25, random_state=0):
    """Write colour JPEG photos of two classes, of many sizes, in the seed layout.

    scikit-learn ships two real photographs (``china.jpg``, a temple, and
    ``flower.jpg``); random crops (55-100 % of each side), mirror images,
    colour jitter and rescaling to landscape or portrait sizes turn them into
    ``n_images`` distinct photos, labelled by the photograph they come from
    (``"china"`` or ``"flower"``). Files and CSVs are as in
    :func:`make_sample_dataset`: ``train.csv`` (``id,label``), ``train/<id>.jpg``,
    ``test.csv``, ``test/<id>.jpg``, ``test_labels.csv``; the ids are
    zero-padded (``0007``), so read the CSVs with ``dtype={"id": str}``.

    Parameters
    ----------
    path : str or path-like
        Folder to write into (created if needed).
    n_images : int, default=300
        Number of photos, train and test together.
    max_side : int, default=500
        Longer side of the largest photos; each photo's longer side is drawn
        between 60 % and 100 % of it, its shorter side is 3/4 of that.
    test_size : float, default=0.25
        Fraction of the photos that go to the test set.
    random_state : int, default=0
        Seed of the crops, colours and sizes.

    Returns
    -------
    dict of str to str
        Paths of ``train_csv``, ``train_dir``, ``test_csv``, ``test_dir`` and
        ``test_labels_csv``.

    Examples
    --------
    >>> import tempfile
    >>> from skimgclf.datasets import make_sample_photos
    >>> paths = make_sample_photos(tempfile.mkdtemp(), n_images=8, max_side=64)
    >>> sorted(paths)
    ['test_csv', 'test_dir', 'test_labels_csv', 'train_csv', 'train_dir']
    """
    from sklearn.datasets import load_sample_images

    data = load_sample_images()  # two uint8 (427, 640, 3) photographs
    names = [os.path.splitext(os.path.basename(f))[0] for f in data.filenames]
    rng = np.random.default_rng(random_state)
    out = _layout(path)
    n_test = int(round(test_size * n_images))
    ids = [f"{i:04d}" for i in range(n_images)]
    labels = []
    for row, image_id in enumerate(ids):
        k = int(rng.integers(len(data.images)))
        labels.append(names[k])
        photo = _random_photo(data.images[k], rng, max_side)
        folder = out["test_dir"] if row < n_test else out["train_dir"]
        os.makedirs(folder, exist_ok=True)
        photo.save(os.path.join(folder, f"{image_id}.jpg"), quality=int(rng.integers(80, 96)))
    table = pd.DataFrame({"id": ids, "label": labels})
    table.iloc[n_test:].to_csv(out["train_csv"], index=False)
    table.iloc[:n_test][["id"]].to_csv(out["test_csv"], index=False)
    table.iloc[:n_test].to_csv(out["test_labels_csv"], index=False)
    return out


def _layout(path):
    """The files of the seed layout under ``path``: the CSVs and the image folders."""
    path = os.fspath(path)
    return {
        "train_csv": os.path.join(path, "train.csv"),
        "train_dir": os.path.join(path, "train"),
        "test_csv": os.path.join(path, "test.csv"),
        "test_dir": os.path.join(path, "test"),
        "test_labels_csv": os.path.join(path, "test_labels.csv"),
    }


def _random_photo(src, rng, max_side):
    """A random crop of the photograph ``src``, maybe mirrored, colour-jittered and resized: a PIL image."""
    from PIL import Image

    h, w = src.shape[:2]
    ch, cw = int(h * rng.uniform(0.55, 1.0)), int(w * rng.uniform(0.55, 1.0))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    img = src[top:top + ch, left:left + cw].astype(np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = img * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20)
    img = (img - img.mean()) * rng.uniform(0.8, 1.25) + img.mean()
    long_side = max(8, int(max_side * rng.uniform(0.6, 1.0)))
    size = (long_side, long_side * 3 // 4) if rng.random() < 0.8 else (long_side * 3 // 4, long_side)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").resize(size, Image.Resampling.BICUBIC)
