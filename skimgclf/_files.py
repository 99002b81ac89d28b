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
import os
import re
import tempfile

__all__ = ["atomic_write"]

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

    Notes
    -----
    The file gets the permissions a plain ``open()`` would give it
    (``0o666`` less the umask). On an error, or ``KeyboardInterrupt``, the
    temporary file is removed and ``path`` is left as it was.

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
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}-", suffix=_PARTIAL, dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, os.path.join(folder, base))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync(folder, os.O_RDONLY)


def _fsync(path, flags):
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - a folder cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_stale_partials(folder, base):
    """Remove ``.<base>.<pid>-*.partial`` files in ``folder`` whose writing process is gone.

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
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


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
