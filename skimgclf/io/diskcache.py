"""An on-disk cache of decoded images: numpy memory maps with an SQLite index.

Used by :class:`skimgclf.ImageFolderLoader` when ``cache_dir`` is set.
Decoded ``uint8`` images are appended to one flat file per image shape
(``data-28x28x1.u8``) and found again through an index keyed by the file's
real path and :func:`~skimgclf.io.memcache.stat_signature` (size,
modification and inode-change times, inode); the decoding parameters
(colour mode, target size, pixel limit) choose the sub-folder. Reading a hit is a
view into a memory-mapped file: the operating system's page cache, not the
Python process, holds the pixels, and several processes on one machine (Dask
workers, ``n_jobs`` workers) share them.

The index is an SQLite database: concurrent loaders in several processes
append safely (one writer at a time, each append one transaction). Pixels
are written and flushed to disk (``fsync``) before the index rows that point
at them are committed, so a crash between the two leaves unreferenced
bytes, never a row that points at missing pixels. Nothing read back is
trusted blindly: each row records a CRC-32 of its pixels, a hit whose bytes
do not match (a data file truncated, overwritten or damaged) is decoded
again from the image, and a data file shorter than the index says is cut
back to what it really holds before anything is appended to it. The folder
must be on a local disk: SQLite's locking is unreliable on network file
systems.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import warnings
import weakref
import zlib

import numpy as np

from .._files import atomic_write
from .memcache import stat_signature

__all__ = ["OUTPUT_MEMMAP_BYTES", "DiskImageCache", "open_cache"]

#: Layout version: a new one starts a new sub-folder, never misreads an old one.
_VERSION = 2
#: Loaded arrays at least this large are memory maps of a file in the cache folder.
OUTPUT_MEMMAP_BYTES = 64 * 1024**2
#: Decoded images written to disk (and indexed) per transaction.
_FLUSH_EVERY = 1024
#: SQLite host parameters per query.
_QUERY_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,
    shape TEXT NOT NULL, slot INTEGER NOT NULL, crc INTEGER NOT NULL,
    PRIMARY KEY (path, size, mtime_ns, ctime_ns, ino)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (shape TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


def _shape_key(shape):
    return "x".join(str(int(v)) for v in shape)


def _key_shape(key):
    return tuple(int(v) for v in key.split("x"))


class DiskImageCache:
    """The decoded images of one decoding setting, stored under ``cache_dir``.

    Parameters
    ----------
    cache_dir : str or path-like
        The cache folder (created if missing). Several settings and
        processes share it.
    color_mode : str
        The loader's colour mode.
    target_size : tuple of int or None
        The loader's target size.
    max_pixels : int or None
        The loader's decompression-bomb limit.
    """

    def __init__(self, cache_dir, color_mode, target_size, max_pixels):
        self.root = os.path.abspath(os.fspath(cache_dir))
        setting = {"version": _VERSION, "color_mode": color_mode,
                   "target_size": None if target_size is None else [int(v) for v in target_size],
                   "max_pixels": None if max_pixels is None else int(max_pixels)}
        digest = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = os.path.join(self.root, f"images-v{_VERSION}-{digest}")
        os.makedirs(self.folder, exist_ok=True)
        about = os.path.join(self.folder, "setting.json")
        if not os.path.exists(about):
            with atomic_write(about, durable=False) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                json.dump(setting, fh)
        self._db = sqlite3.connect(os.path.join(self.folder, "index.sqlite"), timeout=120,
                                   isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError:  # pragma: no cover - a file system without shared memory
            pass
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._pending = []
        self._maps = {}
        self._broken = False
        self._finalizer = weakref.finalize(self, self._db.close)

    # -- reading --------------------------------------------------------------
    def _data_path(self, key):
        return os.path.join(self.folder, f"data-{key}.u8")

    def _map(self, key):
        """A read-only memory map of every image stored with shape ``key``."""
        shape = _key_shape(key)
        itemsize = int(np.prod(shape))
        path = self._data_path(key)
        try:
            n = os.path.getsize(path) // itemsize
        except FileNotFoundError:
            n = 0  # deleted under us: every row is a miss, and the next write starts it again
        if n == 0:
            return np.empty((0,) + shape, dtype=np.uint8)  # nothing to map (mmap refuses empty files)
        current = self._maps.get(key)
        if current is None or current.shape[0] != n:  # grown, or truncated under us
            current = self._maps[key] = np.memmap(path, dtype=np.uint8, mode="r", shape=(n,) + shape)
        return current

    def lookup(self, paths):
        """Signatures and stored images for ``paths``.

        Returns
        -------
        sigs : list of tuple or None
            :func:`~skimgclf.io.memcache.stat_signature` of each file,
            ``None`` where it cannot be read.
        hits : list of ndarray or None
            The stored image (a read-only memory-mapped view) of each path
            whose signature matches and whose stored bytes pass their CRC-32,
            else ``None`` (the image is then decoded again).
        """
        sigs = []
        for path in paths:
            try:
                sigs.append(stat_signature(os.stat(path)))
            except OSError:
                sigs.append(None)  # the loader reports it when it reads the file
        found = {}
        unique = sorted({p for p, s in zip(paths, sigs) if s is not None})
        try:
            for start in range(0, len(unique), _QUERY_CHUNK):
                part = unique[start:start + _QUERY_CHUNK]
                rows = self._db.execute(
                    f"SELECT path, size, mtime_ns, ctime_ns, ino, shape, slot, crc FROM images WHERE path IN "
                    f"({','.join('?' * len(part))})", part).fetchall()
                for path, size, mtime_ns, ctime_ns, ino, key, slot, crc in rows:
                    found[(path, size, mtime_ns, ctime_ns, ino)] = (key, slot, crc)
            hits = []
            for path, sig in zip(paths, sigs):
                entry = None if sig is None else found.get((path,) + sig)
                if entry is None:
                    hits.append(None)
                    continue
                data = self._map(entry[0])
                hit = data[entry[1]] if entry[1] < data.shape[0] else None
                if hit is not None and zlib.crc32(hit) != entry[2]:
                    hit = None  # damaged bytes: decode the image again
                hits.append(hit)
        except (OSError, sqlite3.Error, ValueError) as exc:
            self._fail(exc)
            return sigs, [None] * len(paths)
        return sigs, hits

    def reader(self, paths, read):
        """Wrap ``read(row, path)`` so that stored images are used and new ones stored."""
        sigs, hits = self.lookup(paths)

        def cached_read(row, path):
            hit = hits[row]
            if hit is not None:
                return hit
            arr = read(row, path)
            if sigs[row] is not None and not self._broken:
                self.add(path, sigs[row], arr)
            return arr

        return cached_read

    # -- writing --------------------------------------------------------------
    def add(self, path, sig, arr):
        """Queue one decoded image for storing; written in batches."""
        with self._lock:
            self._pending.append((path, sig, np.ascontiguousarray(arr, dtype=np.uint8)))
            if len(self._pending) >= _FLUSH_EVERY:
                self._flush()

    def flush(self):
        """Write the queued images and their index rows."""
        with self._lock:
            self._flush()

    def _flush(self):
        pending, self._pending = self._pending, []
        if not pending or self._broken:
            return
        groups = {}
        for path, sig, arr in pending:
            groups.setdefault(_shape_key(arr.shape), []).append((path, sig, arr))
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                for key, items in groups.items():
                    row = db.execute("SELECT n FROM files WHERE shape = ?", (key,)).fetchone()
                    itemsize = items[0][2].nbytes
                    n = self._trusted_rows(key, row[0] if row else 0, itemsize)
                    blob = b"".join(arr.tobytes() for _, _, arr in items)
                    # Pixels first, on disk, then the rows that point at them:
                    # a crash in between leaves unreferenced bytes, never a bad hit.
                    _write_at(self._data_path(key), blob, n * itemsize)
                    db.executemany(
                        "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(path, *sig, key, n + j, zlib.crc32(arr)) for j, (path, sig, arr) in enumerate(items)])
                    db.execute("INSERT INTO files (shape, n) VALUES (?, ?) "
                               "ON CONFLICT (shape) DO UPDATE SET n = excluded.n", (key, n + len(items)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)

    def _trusted_rows(self, key, n, itemsize):
        """Rows of data file ``key`` that are really on disk: ``n``, or fewer if the file is short.

        A data file shorter than the index says (truncated by hand, or a disk
        that lost writes): the index rows beyond its whole rows are dropped
        and new images are written from its real end, so that no row points
        into a hole. Called inside the write transaction.
        """
        try:
            actual = os.path.getsize(self._data_path(key)) // itemsize
        except FileNotFoundError:
            actual = 0
        if actual >= n:
            return n
        self._db.execute("DELETE FROM images WHERE shape = ? AND slot >= ?", (key, actual))
        self._maps.pop(key, None)
        warnings.warn(f"skimgclf disk cache {self.folder}: data-{key}.u8 holds {actual} of the {n} images its "
                      "index lists (truncated?); the missing ones will be decoded again", RuntimeWarning,
                      stacklevel=5)
        return actual

    def _fail(self, exc):
        if not self._broken:
            self._broken = True
            warnings.warn(f"skimgclf disk cache {self.folder}: {exc.__class__.__name__}: {exc}; "
                          "loading without it", RuntimeWarning, stacklevel=3)

    def close(self):
        """Write what is queued and close the index."""
        self.flush()
        self._maps.clear()
        self._finalizer()

    # -- outputs --------------------------------------------------------------
    def empty(self, shape, dtype=np.float32):
        """An array for a loaded batch: in memory if small, else a memory map on disk.

        Arrays of at least :data:`OUTPUT_MEMMAP_BYTES` are ``numpy.memmap``
        objects over a file in ``cache_dir/tmp`` that is deleted at once (it
        lives as long as the array), so a batch larger than memory can be
        loaded: the operating system writes its pages out as needed.
        """
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes < OUTPUT_MEMMAP_BYTES:
            return np.empty(shape, dtype=dtype)
        folder = os.path.join(self.root, "tmp")
        os.makedirs(folder, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="batch-", suffix=".f32", dir=folder)
        os.close(fd)
        out = np.memmap(path, dtype=dtype, mode="w+", shape=tuple(shape))
        try:
            os.unlink(path)  # the mapping keeps the data until the array goes
        except OSError:  # pragma: no cover - Windows: delete when the array goes
            weakref.finalize(out, _remove, path)
        return out


def _write_at(path, blob, offset):
    """Write ``blob`` at ``offset`` of ``path`` (created if missing) and flush it to disk."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(blob)
        if not hasattr(os, "pwrite"):  # pragma: no cover - Windows
            os.lseek(fd, offset, os.SEEK_SET)
        while view:
            written = os.pwrite(fd, view, offset) if hasattr(os, "pwrite") else os.write(fd, view)
            view, offset = view[written:], offset + written
        os.fsync(fd)  # on disk before the index says it is there
    finally:
        os.close(fd)


def open_cache(cache_dir, color_mode, target_size, max_pixels):
    """A :class:`DiskImageCache`, or None (with a warning) if the folder cannot hold one."""
    try:
        return DiskImageCache(cache_dir, color_mode, target_size, max_pixels)
    except (OSError, sqlite3.Error) as exc:
        warnings.warn(f"skimgclf disk cache {os.fspath(cache_dir)!r} cannot be used "
                      f"({exc.__class__.__name__}: {exc}); loading without it", RuntimeWarning, stacklevel=3)
        return None


def _remove(path):  # pragma: no cover - Windows only
    try:
        os.unlink(path)
    except OSError:
        pass
