"""ImageFolderLoader: a transformer from image ids to a normalised array.

The estimator only: ids are parsed by :mod:`.ids`, turned into paths by
:mod:`.paths`, decoded by :mod:`.decode`, and cached by :mod:`.memcache`
and :mod:`.diskcache`. Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import numbers
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions

from .._progress import bar
from ..errors import ImageDecodeError, InputError, shown
from .decode import (
    _PNG_SIGNATURE,
    COLOR_MODES,
    DEFAULT_MAX_PIXELS,
    _decode_fast,
    decode_image,
    probe_image,
)
from .detect import decide, sample_rows
from .ids import ids_from_table, raw_ids_key
from .memcache import BATCHES, IMAGES, Batch, batch_valid, file_signature, folder_ids, folders_of, stat_signature
from .paths import _read_file, missing_hint, resolve_paths
from .watch import CHANGES

__all__ = ["MAX_TARGET_SIDE", "ImageFolderLoader"]

#: Rows (at most) and seconds decoded in the calling thread first, to time the decoding.
_PROBE_ROWS, _PROBE_SECONDS = 32, 1e-3
#: Threads are used when one image takes at least this long to decode.
_THREADS_FROM_SECONDS = 100e-6
#: Largest side of a target size this loader accepts (a 16384x16384 RGB image is 3 GiB as float32).
MAX_TARGET_SIDE = 16384


class ImageFolderLoader(TransformerMixin, BaseEstimator):
    """Load the images named by a table of ids into a normalised array.

    The transformer of the classic "CSV of ids + folder of images" layout: it
    maps each id to its file in ``image_dir`` (``<id>.png``, ``<id>.jpg``,
    ...), decodes the image (Pillow or OpenCV, never TensorFlow), converts it
    to a colour mode, resizes it to a target size and scales the pixels.

    Left to ``"auto"``, the colour mode and the size are decided by ``fit``
    from the images it is given (``color_mode_`` and ``target_size_``, see
    below) and kept by ``transform``, so ``set_params(image_dir=...)`` points
    a fitted pipeline at another folder -- the test images -- and loads them
    as the training images were. Explicit values are used as they are.

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
    suffix : str or None, default=None
        ``None`` finds each id's file whatever its image extension (``12``
        names ``12.png`` or ``12.jpg``; an id that matches two files is an
        error), so a folder may mix formats. A string is appended to ids
        that do not name an existing file themselves (``".png"``: ``"12"``
        becomes ``12.png``; ``"12.jpg"`` stays as it is if it exists).
    target_size : "auto", tuple of (int, int) or None, default="auto"
        ``(height, width)`` every image is resized to. ``"auto"``: decided at
        ``fit`` from up to 50 images spread over the ids it is given -- the
        size that at least half of them share, else their median height and
        width -- shrunk (keeping its proportions) so that the longer side is
        at most 64 pixels. ``None`` keeps each image's size; all images must
        then have the same size.
    color_mode : {"auto", "grayscale", "rgb", "rgba"}, default="auto"
        Colour mode the images are converted to: 1, 3 or 4 channels.
        ``"auto"``: decided at ``fit`` from the same sample -- ``"grayscale"``
        when every sampled image has one channel (modes 1, L, LA, I;16, ...),
        ``"rgb"`` otherwise.
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
        longer than a second, on a terminal or in a Jupyter notebook.

    Attributes
    ----------
    color_mode_ : str
        The colour mode used: ``color_mode``, or the one detected by ``fit``.
    target_size_ : tuple of (int, int) or None
        The target size used: ``target_size``, or the one detected by ``fit``.

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
    >>> loader = ImageFolderLoader(image_dir=folder).fit([0, 1, 2])
    >>> loader.color_mode_, loader.target_size_
    ('grayscale', (8, 8))
    >>> X = loader.transform([0, 1, 2])
    >>> X.shape, X.dtype, float(X.max())
    ((3, 8, 8, 1), dtype('float32'), 0.47058823704719543)
    """

    _parameter_constraints = {
        "image_dir": [str, os.PathLike],
        "id_column": [str, numbers.Integral],
        "suffix": [str, None],
        "target_size": [StrOptions({"auto"}), tuple, list, None],
        "color_mode": [StrOptions({"auto"} | set(COLOR_MODES))],
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
        suffix=None,
        target_size="auto",
        color_mode="auto",
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
        if self.target_size is not None and not isinstance(self.target_size, str):
            ts = tuple(self.target_size)
            if len(ts) != 2 or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v <= MAX_TARGET_SIDE for v in ts
            ):
                raise ValueError(
                    "The 'target_size' parameter of ImageFolderLoader must be \"auto\", None or a pair of "
                    f"integers in [1, {MAX_TARGET_SIDE}] (height, width). Got {self.target_size!r} instead."
                )
        root = os.fspath(self.image_dir)
        if not os.path.isdir(root):
            raise ValueError(
                f"The 'image_dir' parameter of ImageFolderLoader must be an existing folder. "
                f"Got {root!r} instead."
            )
        return os.path.realpath(root)

    def _settings(self):
        """``(color_mode, target_size)`` to load with: the parameters, or what ``fit`` decided for "auto"."""
        color_mode = self.color_mode if self.color_mode != "auto" else getattr(self, "color_mode_", None)
        if isinstance(self.target_size, str):
            target = getattr(self, "target_size_", "auto")
        else:
            target = None if self.target_size is None else tuple(int(v) for v in self.target_size)
        if color_mode is None or target == "auto":
            raise NotFittedError(
                "This ImageFolderLoader decides color_mode and target_size from the images it is fitted "
                "on (\"auto\"); call 'fit' first, or give both explicitly."
            )
        return color_mode, target

    # -- sklearn API ----------------------------------------------------------
    def fit(self, X=None, y=None):
        """Check the parameters and decide the colour mode and size left to ``"auto"``.

        Parameters
        ----------
        X : DataFrame, Series, list or array of ids, default=None
            The ids of the images the settings are decided from (at most 50
            spread over them are looked at, headers only). Needed only when
            ``color_mode`` or ``target_size`` is ``"auto"``.
        y : None
            Ignored.

        Returns
        -------
        self : ImageFolderLoader
            The fitted loader, with ``color_mode_`` and ``target_size_``.

        Raises
        ------
        ValueError
            If settings are to be detected but ``X`` holds no ids, or a
            sampled image cannot be read (the message names its row).
        """
        root = self._check_params()
        color_mode = self.color_mode
        target = self.target_size if isinstance(self.target_size, str) or self.target_size is None else \
            tuple(int(v) for v in self.target_size)
        if color_mode == "auto" or target == "auto":
            ids = [] if X is None else ids_from_table(X, self.id_column)
            if not ids:
                raise ValueError(
                    "ImageFolderLoader cannot decide color_mode and target_size (\"auto\") without "
                    "images: fit it on a table of ids, or give both explicitly"
                )
            rows = sample_rows(len(ids))
            try:
                paths = resolve_paths(root, [ids[r] for r in rows], self.suffix)
            except InputError as exc:
                raise exc.at_row(rows[exc.row]) from None
            found = [self._probe(root, ids[r], r, path) for r, path in zip(rows, paths)]
            detected_mode, detected_size = decide([m for m, _ in found], [size for _, size in found])
            color_mode = detected_mode if color_mode == "auto" else color_mode
            target = detected_size if target == "auto" else target
        return self._set_fitted({"color_mode": color_mode, "target_size": target})

    def _set_fitted(self, state):
        """Make this loader fitted from ``state``, a dict of what fit learns (fit, or a model file).

        The fitted-state protocol of skimgclf's estimators (the classifier
        has the same method): ``state`` holds ``color_mode`` and
        ``target_size``, checked here; returns ``self``.
        """
        color_mode, target_size = state["color_mode"], state["target_size"]
        if color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode_ must be one of {sorted(COLOR_MODES)}; got {color_mode!r}")
        if target_size is not None:
            target_size = tuple(target_size)
            if len(target_size) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                 and 1 <= v <= MAX_TARGET_SIDE for v in target_size):
                raise ValueError(f"target_size_ must be None or two integers in [1, {MAX_TARGET_SIDE}]; "
                                 f"got {target_size!r}")
            target_size = tuple(int(v) for v in target_size)
        self.color_mode_, self.target_size_ = color_mode, target_size
        return self

    def _probe(self, root, image_id, row, path):
        try:
            return probe_image(path, self.max_pixels, follow_symlinks=False)
        except ImageDecodeError as exc:
            raise _row_error(exc, root, image_id, row, path, self.suffix) from None

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
        color_mode, target = self._settings()
        params = (root, self.suffix, color_mode, target, self.scale, self.max_pixels)
        batch_key, ids, hit = self._lookup_batch(X, params)
        if hit is not None:
            return hit
        token_root = CHANGES.token([root]) if self.cache else None
        paths = resolve_paths(root, ids, self.suffix)
        n_channels = COLOR_MODES[color_mode][1]
        if not paths:
            return np.zeros((0,) + (target or (0, 0)) + (n_channels,), dtype=np.float32)
        batch = _watched_batch(root, paths, token_root) if self.cache else None

        read = self._reader(root, ids, color_mode, target)
        store = None
        if self.cache_dir is not None:
            from .diskcache import open_cache

            store = open_cache(self.cache_dir, color_mode, target, self.max_pixels)
            if store is not None:
                read = store.reader(paths, read)
        out = self._load(paths, ids, read, store)
        if store is not None:
            store.close()  # writes the images decoded last
        if self.cache:
            # Shared with the cache, so nobody may change it in place.
            out.flags.writeable = False
            if batch is not None:
                batch.out = out
                BATCHES.put(batch_key, batch)
        return out

    def _lookup_batch(self, X, params):
        """``(key, ids, array)``: the in-memory batch cache's key for ``X``, its ids and the cached array.

        The key is made from ``X``'s raw values when they can be hashed
        without parsing them (the fast path), else from the parsed ids. The
        array is None on a miss; the ids are None on a hit found by raw key.
        """
        if not self.cache:
            return None, ids_from_table(X, self.id_column), None
        raw = raw_ids_key(X, self.id_column)
        if raw is not None:
            key = params + (raw,)
            hit = self._cached_batch(key)
            if hit is not None:
                return key, None, hit
        ids = ids_from_table(X, self.id_column)
        if raw is None:
            key = params + (("ids", tuple(ids)),)
            return key, ids, self._cached_batch(key)
        return key, ids, None

    def _load(self, paths, ids, read, store):
        """The images at ``paths`` decoded by ``read`` and scaled, as one float32 array."""
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
                    raise InputError(
                        f"image {paths[i]} has shape {arr.shape}, but {paths[0]} has {shape}; with "
                        "target_size=None all images must have the same size (set target_size=(height, "
                        "width) to resize them)", row=i, image_id=ids[i], path=paths[i])
                buf[i - start] = arr
            np.multiply(buf, np.float32(factor), out=out[start:stop])
            if offset:
                out[start:stop] += np.float32(offset)
            return stop - start

        n_jobs = self.n_jobs or min(4, os.cpu_count() or 1)
        with bar(show=bool(self.verbose), total=len(paths), desc="loading images", unit="img") as progress:
            _run_rows(work, len(paths), n_jobs, progress)
        return out

    def _cached_batch(self, key):
        """The cached array for ``key`` if its files are unchanged, else None."""
        batch = BATCHES.get(key)
        if batch is None:
            return None
        if not batch_valid(batch):
            BATCHES.discard(key)
            return None
        return batch.out

    def _reader(self, root, ids, color_mode, target):
        """Return ``read(row, path) -> uint8 array`` using the cache if enabled."""
        # With a disk cache, decoded images are kept there, not in memory too.
        max_pixels, suffix = self.max_pixels, self.suffix
        use_cache = self.cache and self.cache_dir is None

        def read(row, path):
            try:
                data, st = _read_file(path, follow=False)  # the only read of the file (None: large)
                if data is not None and data.startswith(_PNG_SIGNATURE):
                    # Plain PNGs decode faster than a cache lookup would cost:
                    # never cached one by one (batches are). Other files are.
                    arr = _decode_fast(path, color_mode, target, max_pixels, data)
                    if arr is not None:
                        return arr
                key = None
                if use_cache:
                    key = (path, *stat_signature(st), color_mode, target, max_pixels)  # of the file read
                    arr = IMAGES.get(key)
                    if arr is not None:
                        return arr
                arr = decode_image(path, color_mode, target, max_pixels, data=data, follow_symlinks=False)
                if key is not None:
                    IMAGES.put(key, arr)
                return arr
            except (FileNotFoundError, ImageDecodeError) as exc:
                raise _row_error(exc, root, ids[row], row, path, suffix) from None

        return read

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Fitting decides only what is left to "auto"; with explicit settings
        # there is nothing to learn and transform works unfitted.
        tags.requires_fit = self.color_mode == "auto" or isinstance(self.target_size, str)
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        # Ids in, float32 images out: no input dtype is preserved.
        tags.transformer_tags.preserves_dtype = []
        return tags


def _watched_batch(root, paths, token_root):
    """A :class:`Batch` (without its array yet) that knows how to tell whether ``paths`` changed.

    Taken before any file is read, so that a change while loading makes the
    stored batch stale at once: the folders' inotify token where the folders
    are watched and nothing changed since ``token_root``, else the files'
    signatures. None when a file is missing (the read reports it).
    """
    dirs = sorted(folders_of(paths) | {root})
    try:
        folders = folder_ids(dirs)
        token = CHANGES.token(dirs)
        stable = token is not None and CHANGES.token([root]) == token_root
        files = None if stable else (paths, file_signature(paths))
        return Batch(None, folders, token if stable else None, files)
    except OSError:
        return None


def _run_rows(work, n, n_jobs, progress):
    """Call ``work(start, stop)`` over rows ``0..n``: in this thread, or in ``n_jobs`` threads if that pays.

    A first run decoded in this thread tells whether threads pay: small
    images (a 28x28 PNG takes microseconds) are mostly Python work under the
    GIL, and two threads handing it back and forth were slower than one
    (docs/performance.rst). Larger decodes (photos, resizing) release the GIL
    for most of their time and scale with threads. Either way every image is
    decoded the same way: only the number of threads depends on the timing,
    never the pixels. The probe stops after a millisecond: slow images are
    clear by then.
    """
    done, t0, elapsed = 1, time.perf_counter(), 0.0
    progress.update(work(0, 1))
    while done < min(n, _PROBE_ROWS) and elapsed < _PROBE_SECONDS:
        progress.update(work(done, done + 1))
        done += 1
        elapsed = time.perf_counter() - t0
    per_image = elapsed / max(1, done - 1)
    # Chunks amortise the pool's overhead, yet give every thread
    # several of them on a few hundred large photos.
    chunk = max(8, min(256, -(-(n - done) // (4 * n_jobs))))
    runs = [(start, min(start + chunk, n)) for start in range(done, n, chunk)]
    if n_jobs == 1 or len(runs) < 2 or per_image < _THREADS_FROM_SECONDS:
        for start, stop in runs:
            progress.update(work(start, stop))
    else:
        with ThreadPoolExecutor(n_jobs) as pool:
            for count in pool.map(lambda run: work(*run), runs):
                progress.update(count)


def _row_error(exc, root, image_id, row, path, suffix):
    """A read error of one image as an error naming its row and id (and what probably went wrong)."""
    if isinstance(exc, FileNotFoundError) or isinstance(exc.__cause__, FileNotFoundError):
        if suffix is None and os.path.basename(path) == os.path.basename(image_id):
            name = shown(image_id, quote=False)
            where = f"no file {name} or {name}.<image extension> in {root}"
        else:
            where = f"{shown(path, quote=False, limit=4096)} does not exist"
        error = ImageDecodeError(f"no image for id {shown(image_id)}: {where}" + missing_hint(root, image_id, suffix),
                                 row=row, image_id=image_id, path=path)
    else:
        error = ImageDecodeError(f"id {shown(image_id)}: {exc.message}", row=row, image_id=image_id,
                                 path=exc.path or path)
    error.__cause__ = exc
    return error
