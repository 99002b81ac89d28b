"""Has anything changed in these folders? Cheap answers from Linux's inotify.

Used by the batch cache (:mod:`skimgclf.io.memcache`) to tell, without a
``stat`` per file, that the files a loaded array came from are unchanged.
Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import os
import struct
import sys
import threading

__all__ = ["CHANGES"]


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


CHANGES = _FolderChanges()
