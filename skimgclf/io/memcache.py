"""The process-wide caches of the loader: decoded images, and whole loaded arrays ("batches").

Both are LRUs bounded in bytes (``SKIMGCLF_CACHE_BYTES``, 2 GiB each by
default). Images are keyed by the file's real path, size, modification
and inode-change times and inode number (:func:`stat_signature`) and the
decoding parameters. A batch is kept with what it was loaded
under -- the folders' identities and either an inotify token
(:mod:`skimgclf.io.watch`) or every file's :func:`stat_signature` -- and is
served again only while those are unchanged.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from .watch import CHANGES

__all__ = ["BATCHES", "IMAGES", "Batch", "batch_valid", "clear_cache", "file_signature", "folder_ids",
           "folders_of", "stat_signature"]


class _ImageCache:
    """A thread-safe LRU of decoded ``uint8`` images bounded in bytes.

    Keys hold the file's real path, its :func:`stat_signature`, and the
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


IMAGES = _ImageCache(max_bytes=int(os.environ.get("SKIMGCLF_CACHE_BYTES", 2 * 1024**3)))



class Batch:
    """A loaded batch: the (read-only) array and what it was loaded under."""

    __slots__ = ("out", "dirs", "token", "files")

    def __init__(self, out, dirs, token, files):
        self.out, self.dirs, self.token, self.files = out, dirs, token, files

    @property
    def nbytes(self):
        return self.out.nbytes


def folders_of(paths):
    """``{os.path.dirname(p) for p in paths}``, with one ``dirname`` per distinct folder."""
    heads = {p[:p.rfind(os.sep) + 1] for p in paths}  # "folder/": cheap string methods per path
    return {os.path.dirname(head) for head in heads}


def folder_ids(dirs):
    """``((folder, st_dev, st_ino), ...)``: notices a folder swapped for another."""
    out = []
    for folder in dirs:
        st = os.stat(folder)
        out.append((folder, st.st_dev, st.st_ino))
    return tuple(out)


def stat_signature(st):
    """What identifies one version of a file: ``(size, mtime_ns, ctime_ns, inode)`` of ``os.stat``.

    The modification time can be put back with ``os.utime``; the inode
    change time cannot (the kernel sets it on every write and every
    ``utime``), and a file replaced by another has another inode. A file
    rewritten in place with the same size and its times put back is still
    told apart: its ``ctime`` moved.

    Parameters
    ----------
    st : os.stat_result
        The file's status.

    Returns
    -------
    tuple of int
    """
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def file_signature(paths):
    """:func:`stat_signature` of each path (``OSError`` if one cannot be read).

    Parameters
    ----------
    paths : list of str
        Files.

    Returns
    -------
    list of tuple
    """
    return [stat_signature(os.stat(path)) for path in paths]


def batch_valid(batch):
    """Whether the files of ``batch`` are unchanged since it was loaded."""
    try:
        if folder_ids([d for d, _, _ in batch.dirs]) != batch.dirs:
            return False
        if batch.token is not None:
            return CHANGES.token([d for d, _, _ in batch.dirs]) == batch.token
        paths, sig = batch.files
        return file_signature(paths) == sig
    except OSError:
        return False



BATCHES = _ImageCache(max_bytes=int(os.environ.get("SKIMGCLF_CACHE_BYTES", 2 * 1024**3)))


def clear_cache():
    """Empty the process-wide caches of images used by :class:`ImageFolderLoader`.

    Returns
    -------
    None
    """
    IMAGES.clear()
    BATCHES.clear()
