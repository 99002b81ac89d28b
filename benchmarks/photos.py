"""A benchmark set of real colour photos, made here without any download.

scikit-learn ships two real photographs (``china.jpg`` and ``flower.jpg``,
427x640). Random crops, flips, rescaling and colour jitter turn them into a
few hundred distinct ~500x375 JPEGs, the size of a typical web photo.
"""

from __future__ import annotations

import os

import numpy as np

#: Bump when the recipe changes, so an old set on disk is not reused.
VERSION = 2


def make_photos(folder, n=300, seed=0):
    """Write ``n`` distinct photo-like JPEGs ``0.jpg ... (n-1).jpg`` into ``folder``.

    ``labels.csv`` (``id,label``) beside them names the photo each was cut
    from (``china`` or ``flower``): a small two-class colour task.

    Parameters
    ----------
    folder : str or path-like
        Where to write them (created if needed). A complete set written by
        the same recipe is reused.
    n : int, default=300
        Number of photos.
    seed : int, default=0
        Seed of the random crops and colour changes.

    Returns
    -------
    list of str
        The ids (file-name stems).
    """
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    stamp = os.path.join(folder, f".complete-v{VERSION}-{n}-{seed}")
    ids = [str(i) for i in range(n)]
    if os.path.exists(stamp):
        return ids
    data = load_sample_images()  # two uint8 (427, 640, 3) photos
    names = [os.path.splitext(os.path.basename(f))[0] for f in data.filenames]
    rng = np.random.default_rng(seed)
    labels = []
    for i in ids:
        k = rng.integers(len(data.images))
        src = data.images[k]
        labels.append(names[k])
        h, w = src.shape[:2]
        # A random crop of 55-100 % of each side...
        ch, cw = int(h * rng.uniform(0.55, 1.0)), int(w * rng.uniform(0.55, 1.0))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        img = src[top:top + ch, left:left + cw].astype(np.float32)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        # ...with colour jitter: per-channel gain, brightness, contrast...
        img = img * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20)
        img = (img - img.mean()) * rng.uniform(0.8, 1.25) + img.mean()
        out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
        # ...scaled to a landscape or portrait ~500x375 photo.
        size = (500, 375) if rng.random() < 0.8 else (375, 500)
        out = out.resize(size, Image.Resampling.BICUBIC)
        out.save(os.path.join(folder, f"{i}.jpg"), quality=int(rng.integers(80, 96)))
    with open(os.path.join(folder, "labels.csv"), "w") as f:
        f.write("id,label\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, labels)))
    with open(stamp, "w") as f:
        f.write("ok\n")
    return ids
