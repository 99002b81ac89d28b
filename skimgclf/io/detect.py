"""What a folder of images holds: the suffix, colour mode and size to load them with.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import os
from collections import Counter
from itertools import islice

import numpy as np

from ..errors import InputError

__all__ = ["GRAY_MODES", "MAX_DETECTED_SIDE", "detect_format"]

#: PIL modes read as one channel by the colour-mode detection.
GRAY_MODES = {"1", "L", "LA", "P;L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: Largest side of a detected target size; larger images are shrunk to it.
MAX_DETECTED_SIDE = 128
#: Files sampled to decide the colour mode and the size.
_SAMPLED = 25


def detect_format(image_dir, suffix=None, color_mode=None, target_size=None):
    """Fill in the suffix, colour mode and target size not given, from the folder's files.

    The suffix is the most common image extension in the folder; the colour
    mode is grayscale if 25 sampled images are all 1-channel (PIL modes 1,
    L, LA, I;16, ...), rgb otherwise; the size is the sampled images' own if
    they all agree (shrunk to 128 pixels on the longer side if larger), else
    28x28 for grayscale and 64x64 for colour.

    Parameters
    ----------
    image_dir : str or path-like
        The folder.
    suffix, color_mode, target_size : str, str, tuple or None, default=None
        Values given; only those that are None are detected.

    Returns
    -------
    settings : dict
        ``suffix``, ``color_mode`` and ``target_size`` (a tuple).
    notes : list of str
        What was detected, for a message.

    Raises
    ------
    InputError
        If the folder holds no image files, or a sampled file cannot be read.
    """
    from PIL import Image

    image_dir = os.fspath(image_dir)
    target = tuple(target_size) if target_size else None
    notes = []
    if suffix is not None and suffix and not suffix.startswith("."):
        suffix = "." + suffix
    if suffix is None or color_mode is None or target is None:
        Image.init()
        known = set(Image.registered_extensions())
        with os.scandir(image_dir) as entries:
            names = [e.name for e in islice(entries, 50_000) if not e.name.startswith(".") and e.is_file()]
        images = [n for n in names if os.path.splitext(n)[1].lower() in known]
        if suffix is None:
            counts = Counter(os.path.splitext(n)[1] for n in images)
            if not counts:
                raise InputError(f"no image files in {image_dir} (looked for "
                                 f"{', '.join(sorted(known)[:8])}, ...)", path=image_dir)
            suffix = counts.most_common(1)[0][0]
            notes.append(f"suffix {suffix}")
        pool = sorted(n for n in images if not suffix or n.endswith(suffix)) or sorted(images)
        if not pool:
            raise InputError(f"no {suffix or 'image'} files in {image_dir}", path=image_dir)
        picks = [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, min(_SAMPLED, len(pool))).astype(int))]
        modes, sizes = set(), set()
        for name in picks:
            path = os.path.join(image_dir, name)
            try:
                with Image.open(path) as img:
                    modes.add(img.mode)
                    sizes.add((img.height, img.width))
            except Exception as exc:  # noqa: BLE001 - any decoder error is the file's
                raise InputError(f"cannot read image {path} ({exc.__class__.__name__}: {exc})",
                                 path=path) from None
        if color_mode is None:
            color_mode = "grayscale" if modes <= GRAY_MODES else "rgb"
            notes.append(f"{color_mode} (modes {', '.join(sorted(modes))})")
        if target is None:
            if len(sizes) == 1:
                h, w = next(iter(sizes))
                if max(h, w) > MAX_DETECTED_SIDE:
                    scale = MAX_DETECTED_SIDE / max(h, w)
                    h, w = max(1, round(h * scale)), max(1, round(w * scale))
                target = (h, w)
                notes.append(f"target size {h}x{w}")
            else:
                target = (28, 28) if color_mode == "grayscale" else (64, 64)
                notes.append(f"target size {target[0]}x{target[1]} (sampled sizes differ)")
        notes.insert(0, f"detected from {len(picks)} files")
    return {"suffix": suffix, "color_mode": color_mode, "target_size": tuple(target)}, notes
