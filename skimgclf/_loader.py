"""ImageFolderLoader: a transformer from image ids to a normalised array.

Importing this module must never import TensorFlow.
"""

from __future__ import annotations

import numbers
import os
import re
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from tqdm.auto import tqdm

from ._images import COLOR_MODES, DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image

__all__ = ["ImageFolderLoader", "clear_cache", "ids_from_table"]

_UNSAFE_PART = re.compile(r"(^|[\\/])\.\.([\\/]|$)")


# --------------------------------------------------------------------------- ids
def _id_to_str(value, row):
    """Turn one id cell into the file-name stem it stands for."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"row {row}: id {value!r} is a boolean, not an image id")
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        if value != value:  # NaN
            raise ValueError(f"row {row}: the id is missing (NaN)")
        # Integer ids that pandas read as float (because of a NaN elsewhere)
        # still name "12.png", never "12.0.png".
        text = str(int(value)) if float(value).is_integer() else repr(float(value))
    elif isinstance(value, bytes):
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValueError(f"row {row}: id {value!r} is not valid UTF-8") from exc
    elif value is None or value is pd.NA:
        raise ValueError(f"row {row}: the id is missing")
    else:
        raise ValueError(f"row {row}: id {value!r} of type {type(value).__name__} is not a string or integer")
    if not text:
        raise ValueError(f"row {row}: the id is empty")
    return text


def ids_from_table(X, id_column="id"):
    """Extract image ids as strings from a table, a column or a list.

    Parameters
    ----------
    X : DataFrame, Series, list, or array of shape (n,) or (n, 1)
        The ids. For a DataFrame they are read from ``id_column``.
    id_column : str, default="id"
        The DataFrame column that holds the ids.

    Returns
    -------
    list of str
        One id per row, whitespace stripped; integer-valued numbers are written
        without a decimal part (``12.0`` becomes ``"12"``).

    Raises
    ------
    ValueError
        If the column is missing, the shape is wrong, or an id is missing or empty.
    """
    if isinstance(X, pd.DataFrame):
        if id_column not in X.columns:
            raise ValueError(
                f"the id column {id_column!r} is not in the table; its columns are "
                f"{[str(c) for c in X.columns]} (set id_column=... to choose another)"
            )
        values = X[id_column].tolist()
    elif isinstance(X, pd.Series):
        values = X.tolist()
    elif isinstance(X, (str, bytes, os.PathLike)):
        raise ValueError(
            "X must be a table or a list of ids, not a single string; "
            "wrap one id in a list, or read a CSV with pandas.read_csv first"
        )
    else:
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"X must be a DataFrame, a Series, a list of ids, or an array of shape (n,) "
                f"or (n, 1); got an array of shape {arr.shape}"
            )
        values = arr.tolist()
    return [_id_to_str(v, row) for row, v in enumerate(values)]


def _resolve_path(root, image_id, suffix, row):
    """Map an id to a real path inside ``root`` (a realpath), refusing escapes."""
    if "\x00" in image_id:
        raise ValueError(f"row {row}: id {image_id!r} contains a NUL byte; refused")
    # Absolute, drive-letter, UNC (\\server) and '..' ids are refused on every
    # OS, so a table that is safe here is safe on Windows too.
    if os.path.isabs(image_id) or image_id[0] in "/\\" or _UNSAFE_PART.search(image_id) or (
        len(image_id) > 1 and image_id[1] == ":"
    ):
        raise ValueError(
            f"row {row}: id {image_id!r} points outside the image folder {root}; refused"
        )
    candidate = os.path.join(root, image_id)
    if suffix and not image_id.endswith(suffix) and not os.path.isfile(candidate):
        candidate += suffix
    real = os.path.realpath(candidate)
    if os.path.commonpath([real, root]) != root:
        raise ValueError(
            f"row {row}: id {image_id!r} resolves to {real}, outside the image folder "
            f"{root} (a symbolic link?); refused"
        )
    return real


# ------------------------------------------------------------------------- cache
class _ImageCache:
    """A thread-safe LRU of decoded ``uint8`` images bounded in bytes.

    Keys hold the file's real path, its size and modification time, and the
    decoding parameters, so a changed file or another target size misses.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._items = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key, arr):
        if arr.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self):
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self):
        return len(self._items)


_CACHE = _ImageCache(max_bytes=int(os.environ.get("SKIMGCLF_CACHE_BYTES", 2 * 1024**3)))


def clear_cache():
    """Empty the process-wide cache of decoded images used by :class:`ImageFolderLoader`.

    Returns
    -------
    None
    """
    _CACHE.clear()


# ------------------------------------------------------------------------ loader
class ImageFolderLoader(TransformerMixin, BaseEstimator):
    """Load the images named by a table of ids into a normalised array.

    The transformer of the classic "CSV of ids + folder of images" layout: it
    maps each id to ``image_dir/<id><suffix>``, decodes the image with Pillow
    (without importing TensorFlow), converts it to ``color_mode``, resizes it to
    ``target_size`` and scales the pixels. It learns nothing from the data, so
    ``set_params(image_dir=...)`` points a fitted pipeline at another folder.

    Decoded images are kept in a process-wide cache keyed by the file's path,
    size and modification time and by the decoding parameters, so loading the
    same ids again (cross-validation folds, grid-search candidates) does not
    decode them again.

    Parameters
    ----------
    image_dir : str or path-like, default="."
        The folder holding the images. Ids can never reach a file outside it:
        absolute ids, ``..`` components and symbolic links that leave the
        folder are refused.
    id_column : str, default="id"
        The column of a DataFrame that holds the ids.
    suffix : str, default=".png"
        Appended to ids that do not name an existing file themselves
        (``"12"`` becomes ``12.png``; ``"12.jpg"`` stays as it is if it exists).
    target_size : tuple of (int, int) or None, default=(28, 28)
        ``(height, width)`` every image is resized to. ``None`` keeps each
        image's size; all images must then have the same size.
    color_mode : {"grayscale", "rgb", "rgba"}, default="grayscale"
        Colour mode the images are converted to: 1, 3 or 4 channels.
    scale : {"unit", "symmetric"} or None, default="unit"
        Pixel scaling: ``"unit"`` maps to [0, 1], ``"symmetric"`` to [-1, 1],
        ``None`` keeps the raw 0-255 values (as float32).
    cache : bool, default=True
        Whether to keep decoded images in the process-wide cache.
    max_pixels : int or None, default=64_000_000
        Images with more pixels are refused before decoding (decompression
        bombs). ``None`` disables the check.
    n_jobs : int or None, default=None
        Threads used to decode. ``None`` means ``min(4, os.cpu_count())``.
    verbose : int, default=1
        ``0`` is silent; otherwise a progress bar appears on loads that take
        longer than a second, when standard error is a terminal.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images of the last transform.

    See Also
    --------
    skimgclf.CNNClassifier : The classifier this loader feeds.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from skimgclf import ImageFolderLoader
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(os.path.join(folder, f"{i}.png"))
    >>> X = ImageFolderLoader(image_dir=folder, target_size=(8, 8)).fit_transform([0, 1, 2])
    >>> X.shape, X.dtype, float(X.max())
    ((3, 8, 8, 1), dtype('float32'), 0.47058823704719543)
    """

    _parameter_constraints = {
        "image_dir": [str, os.PathLike],
        "id_column": [str, numbers.Integral],
        "suffix": [str],
        "target_size": [tuple, list, None],
        "color_mode": [StrOptions(set(COLOR_MODES))],
        "scale": [StrOptions({"unit", "symmetric"}), None],
        "cache": ["boolean"],
        "max_pixels": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_jobs": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        image_dir=".",
        *,
        id_column="id",
        suffix=".png",
        target_size=(28, 28),
        color_mode="grayscale",
        scale="unit",
        cache=True,
        max_pixels=DEFAULT_MAX_PIXELS,
        n_jobs=None,
        verbose=1,
    ):
        self.image_dir = image_dir
        self.id_column = id_column
        self.suffix = suffix
        self.target_size = target_size
        self.color_mode = color_mode
        self.scale = scale
        self.cache = cache
        self.max_pixels = max_pixels
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- checks ---------------------------------------------------------------
    def _check_params(self):
        self._validate_params()
        if self.target_size is not None:
            ts = tuple(self.target_size)
            if len(ts) != 2 or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in ts
            ):
                raise ValueError(
                    "The 'target_size' parameter of ImageFolderLoader must be None or a pair of "
                    f"positive integers (height, width). Got {self.target_size!r} instead."
                )
        root = os.fspath(self.image_dir)
        if not os.path.isdir(root):
            raise ValueError(
                f"The 'image_dir' parameter of ImageFolderLoader must be an existing folder. "
                f"Got {root!r} instead."
            )
        return os.path.realpath(root)

    # -- sklearn API ----------------------------------------------------------
    def fit(self, X=None, y=None):
        """Check the parameters; the loader learns nothing from the data.

        Parameters
        ----------
        X : DataFrame, Series, list or array of ids, default=None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageFolderLoader
            The loader itself.
        """
        self._check_params()
        return self

    def transform(self, X):
        """Load the images named by ``X``.

        Parameters
        ----------
        X : DataFrame, Series, list, or array of shape (n,) or (n, 1)
            Image ids. For a DataFrame they are read from ``id_column``.

        Returns
        -------
        ndarray of shape (n_samples, height, width, channels), dtype float32
            The images, scaled as ``scale`` says.

        Raises
        ------
        ValueError
            If an id is missing, leaves the image folder, or its image cannot be
            read; the message names the row, the id and the path.
        """
        root = self._check_params()
        ids = ids_from_table(X, self.id_column)
        paths = [_resolve_path(root, image_id, self.suffix, row) for row, image_id in enumerate(ids)]
        target = None if self.target_size is None else tuple(int(v) for v in self.target_size)
        n_channels = COLOR_MODES[self.color_mode][1]
        if not paths:
            shape = (0,) + (target or (0, 0)) + (n_channels,)
            self.image_shape_ = shape[1:]
            return np.zeros(shape, dtype=np.float32)

        read = self._reader(ids, target)
        first = read(0, paths[0])
        shape = first.shape
        out = np.empty((len(paths),) + shape, dtype=np.float32)
        factor, offset = {"unit": (1 / 255, 0.0), "symmetric": (2 / 255, -1.0), None: (1.0, 0.0)}[self.scale]

        def fill(i, arr):
            if arr.shape != shape:
                raise ValueError(
                    f"row {i}: image {paths[i]} has shape {arr.shape}, but {paths[0]} has "
                    f"{shape}; with target_size=None all images must have the same size "
                    "(set target_size=(height, width) to resize them)"
                )
            np.multiply(arr, np.float32(factor), out=out[i], casting="unsafe")
            if offset:
                out[i] += np.float32(offset)

        fill(0, first)
        n_jobs = self.n_jobs or min(4, os.cpu_count() or 1)
        show = bool(self.verbose) and sys.stderr.isatty()
        with tqdm(total=len(paths), initial=1, desc="loading images", unit="img",
                  disable=not show, delay=1.0, leave=False) as bar:
            chunk = 256
            starts = range(1, len(paths), chunk)

            def work(start):
                stop = min(start + chunk, len(paths))
                for i in range(start, stop):
                    fill(i, read(i, paths[i]))
                return stop - start

            if n_jobs == 1 or len(paths) <= chunk:
                for start in starts:
                    bar.update(work(start))
            else:
                with ThreadPoolExecutor(n_jobs) as pool:
                    for done in pool.map(work, starts):
                        bar.update(done)
        self.image_shape_ = shape
        return out

    def _reader(self, ids, target):
        """Return ``read(row, path) -> uint8 array`` using the cache if enabled."""
        color_mode, max_pixels, use_cache = self.color_mode, self.max_pixels, self.cache

        def read(row, path):
            try:
                if use_cache:
                    st = os.stat(path)
                    key = (path, st.st_size, st.st_mtime_ns, color_mode, target, max_pixels)
                    arr = _CACHE.get(key)
                    if arr is None:
                        arr = decode_image(path, color_mode, target, max_pixels)
                        _CACHE.put(key, arr)
                    return arr
                return decode_image(path, color_mode, target, max_pixels)
            except FileNotFoundError:
                raise ImageDecodeError(
                    f"row {row}: no image for id {ids[row]!r}: {path} does not exist"
                ) from None
            except ImageDecodeError as exc:
                if isinstance(exc.__cause__, FileNotFoundError):  # one message with or without cache
                    raise ImageDecodeError(
                        f"row {row}: no image for id {ids[row]!r}: {path} does not exist"
                    ) from None
                raise ImageDecodeError(f"row {row}: id {ids[row]!r}: {exc}") from exc

        return read

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
