"""Writing output files so that they appear whole or not at all: the one helper.

Every file skimgclf writes (model files, predictions, reports, cache
settings) is written to a hidden temporary file beside its target --
``.<name>.<pid>-<random>.partial`` -- and renamed over the target only when
complete, so an interrupted or killed run never leaves a half-written
output. Temporary files of processes that no longer run are removed by the
next write to the same target.

Importing this module imports nothing else of skimgclf.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import re
import shutil
import tempfile

from .errors import OutputError  # re-exported: defined with the others

__all__ = ["OutputError", "atomic_write", "check_writable", "partial_dir", "remove_stale_partials"]

_PARTIAL = ".partial"


@contextlib.contextmanager
def atomic_write(path, *, durable=True):
    """Yield a temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace. Its folder must exist.
    durable : bool, default=True
        ``fsync`` the file and its folder, so that the rename survives a crash.

    Yields
    ------
    str
        The temporary file (created empty) to write.

    Raises
    ------
    OutputError
        If the file cannot be written (a full disk, say): an ``OSError``
        whose message starts with ``path``.

    Notes
    -----
    Every output gets the permissions a plain ``open()`` would give it
    (``0o666`` less the umask): model files and predictions alike. On an
    error, ``KeyboardInterrupt`` or SIGTERM (the command line turns it into
    an exception), the temporary file is removed and ``path`` is left as it
    was.

    Examples
    --------
    >>> import os, tempfile
    >>> from skimgclf._files import atomic_write
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(target) as tmp:
    ...     with open(tmp, "w") as fh:
    ...         _ = fh.write("done")
    >>> open(target).read()
    'done'
    """
    folder, base = os.path.split(os.path.abspath(os.fspath(path)))
    remove_stale_partials(folder, base)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}-", suffix=_PARTIAL, dir=folder)
    except OSError as exc:
        raise OutputError(os.fspath(path), exc) from exc
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if durable:
            _fsync(tmp, os.O_RDONLY, strict=True)
        os.replace(tmp, os.path.join(folder, base))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if _is_write_failure(exc):
            raise OutputError(os.fspath(path), exc) from exc  # disk full, quota, ...: name the file
        raise
    if durable:
        _fsync(folder, os.O_RDONLY)


def check_writable(path, *, folder=False):
    """Check, before any work, that ``path`` can be written, by creating and removing a file where it will go.

    Permission bits alone do not tell (``root`` ignores them; a read-only
    mount, an immutable folder or a full quota refuse ``root`` too), so a
    hidden probe file, named like :func:`atomic_write`'s temporary files, is
    really created and removed. Folders still to be created are checked in
    their nearest existing parent, where they will be made.

    Parameters
    ----------
    path : str or path-like
        The output file, or with ``folder=True`` the folder files will be
        written in.
    folder : bool, default=False
        Whether ``path`` is a folder.

    Raises
    ------
    OutputError
        If it cannot be written: an ``OSError`` whose message starts with ``path``.
    """
    target = os.path.abspath(os.fspath(path))
    where = target if folder else os.path.dirname(target)
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.{os.getpid()}-", suffix=_PARTIAL,
                                     dir=where)
    except OSError as exc:
        raise OutputError(os.fspath(path), exc) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


@contextlib.contextmanager
def partial_dir(path):
    """Yield a hidden temporary folder beside ``path``, removed when the block ends.

    Named like :func:`atomic_write`'s temporary files
    (``.<name>.<pid>-<random>.partial``), so that one left by a killed
    process is removed by the next write to the same target.

    Parameters
    ----------
    path : str or path-like
        The file the folder's contents are for. Its folder must exist.

    Yields
    ------
    str
        The temporary folder.
    """
    folder, base = os.path.split(os.path.abspath(os.fspath(path)))
    remove_stale_partials(folder, base)
    try:
        tmp = tempfile.mkdtemp(prefix=f".{base}.{os.getpid()}-", suffix=_PARTIAL, dir=folder)
    except OSError as exc:
        raise OutputError(os.fspath(path), exc) from exc
    try:
        yield tmp
    except OSError as exc:
        if _is_write_failure(exc):
            raise OutputError(os.fspath(path), exc) from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: What a failed write says: no space, no quota left, a read-only file system, no permission, too large.
_WRITE_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG",
                                                            "EIO") if hasattr(errno, name))


def _is_write_failure(exc):
    """Whether ``exc`` is the system refusing a write (not, say, a network error while computing the output)."""
    return isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.errno in _WRITE_ERRNOS


def _fsync(path, flags, strict=False):
    """``fsync`` a file or folder; ``strict``: let a failure (the data not on disk) raise."""
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - a folder cannot be opened on Windows
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        if strict:
            raise
    finally:
        os.close(fd)


def remove_stale_partials(folder, base):
    """Remove ``.<base>.<pid>-*.partial`` files and folders in ``folder`` whose writing process is gone.

    Only entries at least ten minutes old are removed: on a folder shared
    between machines a process id says nothing about another machine's
    writers.

    Parameters
    ----------
    folder : str
        The folder of the target.
    base : str
        The target's file name.

    Returns
    -------
    None
    """
    pattern = re.compile(re.escape(f".{base}.") + r"([0-9]+)-[A-Za-z0-9_]+" + re.escape(_PARTIAL))
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        stale = os.path.join(folder, name)
        if match and not _pid_alive(int(match.group(1))) and _older_than(stale, _STALE_SECONDS):
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(stale)


#: A temporary entry of a process that no longer runs is removed once it is this old: on a folder
#: shared between machines (NFS) a live writer elsewhere may have the same process id as a dead one here.
_STALE_SECONDS = 600


def _older_than(path, seconds):
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    if os.name != "posix":  # pragma: no cover - cannot tell cheaply; keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
