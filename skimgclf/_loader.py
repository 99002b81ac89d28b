"""ImageFolderLoader: a transformer from image ids to a normalised array.

Importing this module must never import TensorFlow.
"""

from __future__ import annotations

import numbers
import os
import re
import stat
import struct
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from tqdm.auto import tqdm

from ._images import (
    _PNG_SIGNATURE,
    COLOR_MODES,
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    _decode_fast,
    _read_for_fast_path,
    decode_image,
)

__all__ = ["ImageFolderLoader", "clear_cache", "ids_from_table"]

#: Rows (at most) and seconds decoded in the calling thread first, to time the decoding.
_PROBE_ROWS, _PROBE_SECONDS = 32, 1e-3
#: Threads are used when one image takes at least this long to decode.
_THREADS_FROM_SECONDS = 100e-6

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
        X = X[id_column]
    if isinstance(X, pd.Series) and isinstance(X.dtype, np.dtype) and X.dtype.kind in "iu":
        X = X.to_numpy()  # NumPy integers (pandas' nullable Int64 stays a Series: it may hold NA)
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and (X.ndim == 1 or X.shape[1:] == (1,)):
        return [str(v) for v in X.reshape(-1).tolist()]  # NumPy integers: never missing, never booleans
    if isinstance(X, pd.Series):
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


_NOT_PLAIN = re.compile(r"[\\/:\x00]")


def _resolve_paths(root, ids, suffix):
    """``[_resolve_path(root, id, suffix, row) ...]``, listing ``root`` once.

    For a large table, one directory listing answers most ids without a
    system call: a plain file name (no separator, no ``:``, not ``.``/``..``)
    that the listing shows as a regular file, not a symbolic link, is
    ``root/name`` itself. Every other id (sub-folders, links, missing files,
    anything suspicious) goes through :func:`_resolve_path` and its checks.
    """
    entries = None
    if len(ids) >= 64:
        # A chunk of a much larger folder (a CSV scored in chunks): one
        # lstat per id costs far less than listing the whole folder again.
        known = _FOLDER_ENTRIES.get(root)
        if known is not None and 4 * len(ids) < known:
            return _resolve_paths_by_lstat(root, ids, suffix)
        try:
            with os.scandir(root) as it:
                entries = {e.name: e for e in it}
        except OSError:
            entries = None
        else:
            if len(_FOLDER_ENTRIES) >= 256:
                _FOLDER_ENTRIES.clear()
            _FOLDER_ENTRIES[root] = len(entries)
    if not entries:
        return [_resolve_path(root, image_id, suffix, row) for row, image_id in enumerate(ids)]
    prefix = os.path.join(root, "")
    out = []
    for row, image_id in enumerate(ids):
        real = None
        if image_id not in (".", "..") and not _NOT_PLAIN.search(image_id):
            entry = entries.get(image_id)
            if entry is None and suffix and not image_id.endswith(suffix):
                entry = entries.get(image_id + suffix)
            if entry is not None and not entry.is_symlink() and entry.is_file(follow_symlinks=False):
                real = prefix + entry.name
        out.append(real if real is not None else _resolve_path(root, image_id, suffix, row))
    return out


#: Entries of each folder at its last listing: only decides listing vs lstat.
_FOLDER_ENTRIES = {}


def _resolve_paths_by_lstat(root, ids, suffix):
    """:func:`_resolve_paths` with one ``lstat`` per id instead of a folder listing.

    The same answers: a plain name whose entry is a regular file, not a
    link, is ``root/name``; an entry of another kind (link, folder) or no
    entry at all goes through :func:`_resolve_path` and its checks.
    """
    prefix = os.path.join(root, "")
    out = []
    for row, image_id in enumerate(ids):
        real = None
        if image_id not in (".", "..") and not _NOT_PLAIN.search(image_id):
            names = (image_id, image_id + suffix) if suffix and not image_id.endswith(suffix) else (image_id,)
            for name in names:
                try:
                    mode = os.lstat(prefix + name).st_mode
                except (OSError, ValueError):
                    continue  # no such entry: try the name with the suffix
                if stat.S_ISREG(mode):
                    real = prefix + name
                break  # an entry of this name: as the listing, no second name
        out.append(real if real is not None else _resolve_path(root, image_id, suffix, row))
    return out


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

    def discard(self, key):
        with self._lock:
            arr = self._items.pop(key, None)
            if arr is not None:
                self._bytes -= arr.nbytes

    def clear(self):
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self):
        return len(self._items)


_CACHE = _ImageCache(max_bytes=int(os.environ.get("SKIMGCLF_CACHE_BYTES", 2 * 1024**3)))


# ------------------------------------------------------------------ batch cache
class _FolderChanges:
    """Cheap "has anything changed in these folders?" tokens from Linux inotify.

    ``token(dirs)`` returns a value that differs from every earlier one for
    the same folders once the kernel reported a write, attribute change
    (``touch``), creation, deletion or rename inside one of them, so a batch
    loaded under one token is still valid while the token is unchanged: a
    check costs one non-blocking ``read`` and no ``stat`` per file. Returns
    ``None`` where changes cannot be watched (not Linux, inotify limits
    reached), and the caller then checks every file's size and time instead.
    """

    _MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800  # see inotify(7)
    _GONE = 0x400 | 0x800 | 0x8000  # DELETE_SELF, MOVE_SELF, IGNORED: the watch ends
    _OVERFLOW = 0x4000

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._fd = None
        self._wd = {}  # folder -> watch descriptor
        self._dirs = {}  # watch descriptor -> set of folders
        self._gen = {}  # folder -> change counter
        self._epoch = 0  # bumped when events were lost

    def _ready(self):
        if self._pid == os.getpid():
            return self._fd is not None
        # New process (first use, or a fork that inherited the parent's
        # descriptor, whose events are the parent's): start afresh.
        self._pid, self._fd, self._epoch = os.getpid(), None, self._epoch + 1
        self._wd, self._dirs = {}, {}
        if not sys.platform.startswith("linux"):
            return False
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return False
        if fd < 0:
            return False
        self._libc, self._fd = libc, fd
        return True

    def _drain(self):
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                self._fd = None  # give up watching; callers check files instead
                return
            pos = 0
            while pos + 16 <= len(data):
                wd, mask, _, length = struct.unpack_from("iIII", data, pos)
                pos += 16 + length
                if mask & self._OVERFLOW:
                    self._epoch += 1
                for folder in self._dirs.get(wd, ()):
                    self._gen[folder] = self._gen.get(folder, 0) + 1
                if mask & self._GONE:
                    for folder in self._dirs.pop(wd, ()):
                        self._wd.pop(folder, None)

    def token(self, dirs):
        """A token of the state of ``dirs`` (real paths of folders), or None."""
        with self._lock:
            if not self._ready():
                return None
            self._drain()
            if self._fd is None:
                return None
            parts = [self._epoch]
            for folder in dirs:
                if folder not in self._wd:
                    wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), self._MASK)
                    if wd < 0:
                        return None
                    self._wd[folder] = wd
                    self._dirs.setdefault(wd, set()).add(folder)
                    self._gen[folder] = self._gen.get(folder, 0) + 1
                parts.append(self._gen[folder])
            return tuple(parts)


_CHANGES = _FolderChanges()


class _Batch:
    """A loaded batch: the (read-only) array and what it was loaded under."""

    __slots__ = ("out", "dirs", "token", "files")

    def __init__(self, out, dirs, token, files):
        self.out, self.dirs, self.token, self.files = out, dirs, token, files

    @property
    def nbytes(self):
        return self.out.nbytes


def _folders_of(paths):
    """``{os.path.dirname(p) for p in paths}``, with one ``dirname`` per distinct folder."""
    heads = {p[:p.rfind(os.sep) + 1] for p in paths}  # "folder/": cheap string methods per path
    return {os.path.dirname(head) for head in heads}


def _folder_ids(dirs):
    """``((folder, st_dev, st_ino), ...)``: notices a folder swapped for another."""
    out = []
    for folder in dirs:
        st = os.stat(folder)
        out.append((folder, st.st_dev, st.st_ino))
    return tuple(out)


def _file_signature(paths):
    sig = []
    for path in paths:
        st = os.stat(path)
        sig.append((st.st_size, st.st_mtime_ns, st.st_ino))
    return sig


def _batch_valid(batch):
    """Whether the files of ``batch`` are unchanged since it was loaded."""
    try:
        if _folder_ids([d for d, _, _ in batch.dirs]) != batch.dirs:
            return False
        if batch.token is not None:
            return _CHANGES.token([d for d, _, _ in batch.dirs]) == batch.token
        paths, sig = batch.files
        return _file_signature(paths) == sig
    except OSError:
        return False


def _raw_ids_key(X, id_column):
    """A cheap hashable key of the raw ids in ``X``, or None to use the parsed ids."""
    if isinstance(X, pd.DataFrame):
        if id_column not in X.columns:
            return None
        X = X[id_column]
    if isinstance(X, pd.Series):
        values = X.to_numpy()
    elif isinstance(X, (np.ndarray, list, tuple)):
        try:
            values = np.asarray(X)
        except (ValueError, TypeError):
            return None
        if values.ndim == 2 and values.shape[1:] == (1,):
            values = values[:, 0]
    else:
        return None
    if values.ndim != 1:
        return None
    if values.dtype.kind in "iuU":
        return (values.dtype.str, values.tobytes())
    if values.dtype == object:
        items = tuple(values.tolist())
        # 1 == 1.0 == True: keep the types, so a bad id is never served from cache.
        return ("object", frozenset(map(type, items)), items)
    return None


_BATCHES = _ImageCache(max_bytes=int(os.environ.get("SKIMGCLF_CACHE_BYTES", 2 * 1024**3)))


def clear_cache():
    """Empty the process-wide caches of images used by :class:`ImageFolderLoader`.

    Returns
    -------
    None
    """
    _CACHE.clear()
    _BATCHES.clear()


# ------------------------------------------------------------------------ loader
class ImageFolderLoader(TransformerMixin, BaseEstimator):
    """Load the images named by a table of ids into a normalised array.

    The transformer of the classic "CSV of ids + folder of images" layout: it
    maps each id to ``image_dir/<id><suffix>``, decodes the image (Pillow or OpenCV,
    never TensorFlow), converts it to ``color_mode``, resizes it to
    ``target_size`` and scales the pixels. It learns nothing from the data, so
    ``set_params(image_dir=...)`` points a fitted pipeline at another folder.

    Loading the same ids again with the same parameters (cross-validation
    folds, grid-search candidates) returns the array of the first load, as
    long as no file in the image folder changed since: on Linux the kernel
    reports every write, rename, creation or deletion in the folder
    (inotify), so the check costs no work per file; elsewhere every file's
    size and modification time are compared. Images that are slow to decode
    (resized, converted, JPEG) are also cached one by one, keyed by path, size,
    modification time and decoding parameters. Files changed by another
    machine on a network file system, or through a hard link in another
    folder, may go unnoticed: call :func:`skimgclf.clear_cache` then. Plain
    8-bit PNGs in the requested mode and size, and plain JPEGs to be resized,
    are decoded by OpenCV (the same pixels as the Pillow path, much faster);
    everything else by Pillow.

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
        Whether to keep loaded arrays and decoded images in the process-wide
        cache. The arrays returned are then shared with the cache and
        read-only (``X.copy()`` gives a writable one).
    cache_dir : str, path-like or None, default=None
        A folder on a local disk for an on-disk cache of decoded images
        (created if missing): each image is decoded once, stored in a
        memory-mapped file keyed by its path, size and modification time and
        this loader's colour mode, target size and ``max_pixels``, and read
        from there afterwards, by every process on the machine (grid-search
        and Dask workers included). Images are then not kept one by one in
        memory, and loaded arrays of 64 MiB or more are memory maps of a
        (deleted) file in the folder, so a data set larger than memory can
        be loaded; with ``cache=True`` such arrays are still reused while
        the files are unchanged. Delete the folder to reclaim its space.
    max_pixels : int or None, default=64_000_000
        Images with more pixels are refused before decoding (decompression
        bombs). ``None`` disables the check.
    n_jobs : int or None, default=None
        Threads used to decode images that are slow to decode (photos,
        resizing); small images that decode in microseconds are faster in
        one thread and stay in the calling one. ``None`` means
        ``min(4, os.cpu_count())``.
    verbose : int, default=1
        ``0`` is silent; otherwise a progress bar appears on loads that take
        longer than a second, when standard error is a terminal.

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
        "cache_dir": [str, os.PathLike, None],
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
        cache_dir=None,
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
        self.cache_dir = cache_dir
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
            The images, scaled as ``scale`` says; read-only when ``cache=True``.

        Raises
        ------
        ValueError
            If an id is missing, leaves the image folder, or its image cannot be
            read; the message names the row, the id and the path.
        """
        root = self._check_params()
        target = None if self.target_size is None else tuple(int(v) for v in self.target_size)
        params = (root, self.suffix, self.color_mode, target, self.scale, self.max_pixels)
        batch_key = None
        if self.cache:
            raw = _raw_ids_key(X, self.id_column)
            if raw is not None:
                batch_key = params + (raw,)
                hit = self._cached_batch(batch_key)
                if hit is not None:
                    return hit
        ids = ids_from_table(X, self.id_column)
        if self.cache and batch_key is None:
            batch_key = params + (("ids", tuple(ids)),)
            hit = self._cached_batch(batch_key)
            if hit is not None:
                return hit
        token_root = _CHANGES.token([root]) if self.cache else None
        paths = _resolve_paths(root, ids, self.suffix)
        n_channels = COLOR_MODES[self.color_mode][1]
        if not paths:
            return np.zeros((0,) + (target or (0, 0)) + (n_channels,), dtype=np.float32)

        batch = None
        if self.cache:
            # Taken before any file is read: a change while loading makes the
            # stored batch stale at once.
            dirs = sorted(_folders_of(paths) | {root})
            try:
                folders = _folder_ids(dirs)
                token = _CHANGES.token(dirs)
                stable = token is not None and _CHANGES.token([root]) == token_root
                files = None if stable else (paths, _file_signature(paths))
                batch = _Batch(None, folders, token if stable else None, files)
            except OSError:
                batch = None  # a missing file: the read below reports it

        read = self._reader(ids, target)
        store = None
        if self.cache_dir is not None:
            from ._diskcache import open_cache

            store = open_cache(self.cache_dir, self.color_mode, target, self.max_pixels)
            if store is not None:
                read = store.reader(paths, read)
        first = read(0, paths[0])
        shape = first.shape
        out = np.empty((len(paths),) + shape, dtype=np.float32) if store is None else \
            store.empty((len(paths),) + shape)
        factor, offset = {"unit": (1 / 255, 0.0), "symmetric": (2 / 255, -1.0), None: (1.0, 0.0)}[self.scale]

        def work(start, stop):
            # Decode a run of rows into a small uint8 buffer, then scale the
            # whole run at once: one NumPy call per run, not per image.
            buf = np.empty((stop - start,) + shape, dtype=np.uint8)
            for i in range(start, stop):
                arr = first if i == 0 else read(i, paths[i])
                if arr.shape != shape:
                    raise ValueError(
                        f"row {i}: image {paths[i]} has shape {arr.shape}, but {paths[0]} has "
                        f"{shape}; with target_size=None all images must have the same size "
                        "(set target_size=(height, width) to resize them)"
                    )
                buf[i - start] = arr
            np.multiply(buf, np.float32(factor), out=out[start:stop])
            if offset:
                out[start:stop] += np.float32(offset)
            return stop - start

        n = len(paths)
        n_jobs = self.n_jobs or min(4, os.cpu_count() or 1)
        show = bool(self.verbose) and sys.stderr.isatty()
        with tqdm(total=n, desc="loading images", unit="img", disable=not show, delay=1.0,
                  leave=False) as bar:
            # A first run decoded in this thread tells whether threads pay:
            # small images (a 28x28 PNG takes ~15 us) are mostly Python work
            # under the GIL, and two threads handing it back and forth were
            # measured 1.5x slower than one. Larger decodes (photos, resizing)
            # release the GIL for most of their time and scale with threads.
            # Either way every image is decoded the same way: only the number
            # of threads depends on the timing, never the pixels.
            # The probe stops after a millisecond: slow images are clear by then.
            done, t0, elapsed = 1, time.perf_counter(), 0.0
            bar.update(work(0, 1))
            while done < min(n, _PROBE_ROWS) and elapsed < _PROBE_SECONDS:
                bar.update(work(done, done + 1))
                done += 1
                elapsed = time.perf_counter() - t0
            per_image = elapsed / max(1, done - 1)
            # Chunks amortise the pool's overhead, yet give every thread
            # several of them on a few hundred large photos.
            chunk = max(8, min(256, -(-(n - done) // (4 * n_jobs))))
            runs = [(start, min(start + chunk, n)) for start in range(done, n, chunk)]
            if n_jobs == 1 or len(runs) < 2 or per_image < _THREADS_FROM_SECONDS:
                for start, stop in runs:
                    bar.update(work(start, stop))
            else:
                with ThreadPoolExecutor(n_jobs) as pool:
                    for count in pool.map(lambda run: work(*run), runs):
                        bar.update(count)
        if store is not None:
            store.close()  # writes the images decoded last
        if self.cache:
            # Shared with the cache, so nobody may change it in place.
            out.flags.writeable = False
            if batch is not None:
                batch.out = out
                _BATCHES.put(batch_key, batch)
        return out

    def _cached_batch(self, key):
        """The cached array for ``key`` if its files are unchanged, else None."""
        batch = _BATCHES.get(key)
        if batch is None:
            return None
        if not _batch_valid(batch):
            _BATCHES.discard(key)
            return None
        return batch.out

    def _reader(self, ids, target):
        """Return ``read(row, path) -> uint8 array`` using the cache if enabled."""
        # With a disk cache, decoded images are kept there, not in memory too.
        color_mode, max_pixels = self.color_mode, self.max_pixels
        use_cache = self.cache and self.cache_dir is None

        def read(row, path):
            try:
                # Plain PNGs decode faster than a cache lookup would cost:
                # never cached one by one (batches are). Other files are.
                data = _read_for_fast_path(path)
                png = data is not None and data.startswith(_PNG_SIGNATURE)
                if png:
                    arr = _decode_fast(path, color_mode, target, max_pixels, data)
                    if arr is not None:
                        return arr
                key = None
                if use_cache:
                    st = os.stat(path)
                    key = (path, st.st_size, st.st_mtime_ns, color_mode, target, max_pixels)
                    arr = _CACHE.get(key)
                    if arr is not None:
                        return arr
                arr = None if png or data is None else _decode_fast(path, color_mode, target, max_pixels, data)
                if arr is None:  # Pillow, for every other file (and the errors)
                    arr = decode_image(path, color_mode, target, max_pixels)
                if key is not None:
                    _CACHE.put(key, arr)
                return arr
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
        # Ids in, float32 images out: no input dtype is preserved.
        tags.transformer_tags.preserves_dtype = []
        return tags
