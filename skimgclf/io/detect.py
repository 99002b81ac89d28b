"""What images a folder holds: the colour mode and the size to load them with (``"auto"``).

:class:`~skimgclf.ImageFolderLoader` decides ``color_mode="auto"`` and
``target_size="auto"`` at ``fit`` from a sample of the images it is given;
the command line does the same through the loader. The rule, on at most
:data:`SAMPLE` images spread evenly over the ids:

- colour mode: ``"grayscale"`` when every sampled image has one channel
  (Pillow modes 1, L, LA, I, I;16, F), else ``"rgb"``;
- size: the size that at least half of the sampled images share, else
  their median height and width; then shrunk, keeping its proportions, so
  that its longer side is at most :data:`MAX_SIDE` pixels (never enlarged).

Only the files' headers are read. Importing this module never imports
TensorFlow.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = ["GRAY_MODES", "MAX_SIDE", "SAMPLE", "decide", "sample_rows"]

#: PIL modes read as one channel by the colour-mode detection.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: Largest side of a detected target size; larger images are shrunk to it.
#: A small network learns from photos at this size about as well as from
#: larger ones, at a fraction of the cost (docs/performance.rst has the
#: measurements); give ``target_size`` for detail that needs more pixels.
MAX_SIDE = 64
#: Images sampled to decide the colour mode and the size.
SAMPLE = 50


def sample_rows(n, k=SAMPLE):
    """Up to ``k`` row numbers spread evenly over ``n`` rows (the first and the last included).

    Parameters
    ----------
    n : int
        Number of rows.
    k : int, default=SAMPLE
        Most rows to pick.

    Returns
    -------
    list of int
        Sorted, distinct row numbers.
    """
    if n <= 0:
        return []
    return sorted({int(v) for v in np.linspace(0, n - 1, min(k, n)).round()})


def decide(modes, sizes):
    """The colour mode and target size for images of these ``modes`` and ``sizes``.

    Parameters
    ----------
    modes : list of str
        The Pillow mode of each sampled image.
    sizes : list of (int, int)
        The ``(height, width)`` of each.

    Returns
    -------
    color_mode : {"grayscale", "rgb"}
        One channel when every image has one, else three.
    target_size : tuple of (int, int)
        The shared (or median) size, its longer side at most :data:`MAX_SIDE`.
    """
    color_mode = "grayscale" if set(modes) <= GRAY_MODES else "rgb"
    (common, count), = Counter(sizes).most_common(1)
    if 2 * count >= len(sizes):
        h, w = common
    else:
        h, w = (int(round(float(np.median([s[i] for s in sizes])))) for i in (0, 1))
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        h, w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    return color_mode, (int(h), int(w))
