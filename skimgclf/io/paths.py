"""From image ids to files: the one resolver, which never lets an id reach outside the image folder.

An id names the file ``<folder>/<id>`` if it exists. Otherwise, with a
``suffix`` (``".png"``), it names ``<folder>/<id><suffix>``; with
``suffix=None``, the one file ``<folder>/<id>.<ext>`` whose extension is an
image format's -- so one folder may mix PNG and JPEG files, and an id that
matches two files (``7.png`` and ``7.jpg``) is an error.

Absolute ids, drive letters, UNC names, ``..`` components, NUL bytes and
symbolic links that leave the folder are refused (an
:class:`~skimgclf.errors.InputError` naming the row and the id), on every
operating system alike.

Opening an image file is done here too, safely: a regular file only (a named
pipe, device or folder named like an image is refused by name, never waited
on), no symbolic link where the resolver found none, and reads of bounded size.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import errno
import os
import re
import stat

from ..errors import Advice, ImageDecodeError, InputError, Option, shown

__all__ = ["image_suffix", "missing_hint", "resolve_paths"]

_UNSAFE_PART = re.compile(r"(^|[\\/])\.\.([\\/]|$)")
_NOT_PLAIN = re.compile(r"[\\/:\x00]")
_IMAGE_EXTENSIONS = None


def image_suffix(name):
    """The extension of ``name`` (as written) if it is an image format's (Pillow's list), else None.

    Parameters
    ----------
    name : str
        A file name.

    Returns
    -------
    str or None
        ``".jpg"``, ``".PNG"``, ...
    """
    global _IMAGE_EXTENSIONS
    if _IMAGE_EXTENSIONS is None:
        from PIL import Image

        Image.init()
        _IMAGE_EXTENSIONS = frozenset(ext.lower() for ext in Image.registered_extensions())
    ext = os.path.splitext(name)[1]
    return ext if ext.lower() in _IMAGE_EXTENSIONS else None


#: folder -> (its modification time, the image extensions of its files).
_SUFFIXES = {}


def _suffixes_in(folder):
    """The image extensions (as written) of the files in ``folder``; cached while the folder is unchanged."""
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return ()
    cached = _SUFFIXES.get(folder)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        with os.scandir(folder) as it:
            found = {image_suffix(e.name) for e in it}
    except OSError:
        return ()
    return _remember_suffixes(folder, mtime, {s for s in found if s})


def _remember_suffixes(folder, mtime, suffixes):
    """Cache (and return, sorted) the image extensions of ``folder`` as listed at ``mtime``."""
    suffixes = tuple(sorted(suffixes))
    if len(_SUFFIXES) >= 256:
        _SUFFIXES.clear()
    _SUFFIXES[folder] = (mtime, suffixes)
    return suffixes


def _names(image_id, suffix, suffixes):
    """``(own, others)``: the id's own name, and the names it may stand for when that is not a file."""
    if suffix is None:
        return image_id, [image_id + s for s in suffixes]
    if suffix and not image_id.endswith(suffix):
        return image_id, [image_id + suffix]
    return image_id, []


def _choose(root, image_id, row, own_is_file, others):
    """The name an id stands for, given which of its names are files; None if none is."""
    if own_is_file:
        return image_id
    if len(others) > 1:
        raise InputError(
            f"id {shown(image_id)} matches {len(others)} files in {root} ({', '.join(sorted(others))}); set "
            f"suffix to choose (suffix={os.path.splitext(sorted(others)[0])[1]!r})", row=row, image_id=image_id)
    return others[0] if others else None


def _resolve_path(root, image_id, suffix, row):
    """Map an id to a real path inside ``root`` (a realpath), refusing escapes."""
    if "\x00" in image_id:
        raise InputError(f"id {shown(image_id)} contains a NUL byte; refused", row=row, image_id=image_id)
    # Absolute, drive-letter, UNC (\\server) and '..' ids are refused on every
    # OS, so a table that is safe here is safe on Windows too.
    if os.path.isabs(image_id) or image_id[0] in "/\\" or _UNSAFE_PART.search(image_id) or (
        len(image_id) > 1 and image_id[1] == ":"
    ):
        raise InputError(f"id {shown(image_id)} points outside the image folder {root}; refused",
                         row=row, image_id=image_id)
    candidate = os.path.join(root, image_id)
    suffixes = _suffixes_in(os.path.dirname(candidate)) if suffix is None else ()
    own, others = _names(image_id, suffix, suffixes)
    own_is_file = _is_entry(candidate)
    found = [] if own_is_file else [n for n in others if _is_entry(os.path.join(root, n))]
    if suffix is not None and not own_is_file and not found:
        found = others  # names the path that does not exist, for the error message
    name = _choose(root, image_id, row, own_is_file, found)
    real = os.path.realpath(os.path.join(root, name if name is not None else own))
    if os.path.commonpath([real, root]) != root:
        raise InputError(f"id {shown(image_id)} resolves to {shown(real, quote=False, limit=4096)}, outside the "
                         f"image folder {root} (a symbolic link?); refused", row=row, image_id=image_id, path=real)
    return real


def _is_entry(path):
    """Whether ``path`` is there and not a folder: a file, or a pipe or device the reader will refuse by name."""
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def resolve_paths(root, ids, suffix):
    """The real path of each id inside the folder ``root`` (a real path), refusing escapes.

    For a large table, one directory listing answers most ids without a
    system call: a plain file name (no separator, no ``:``, not ``.``/``..``)
    that the listing shows as a regular file, not a symbolic link, is
    ``root/name`` itself. Every other id (sub-folders, links, missing files,
    anything suspicious) goes through the checks of one id at a time. An id
    without a file resolves to the path it would have (the loader then says
    which file is missing).

    Parameters
    ----------
    root : str
        The image folder, a real path.
    ids : list of str
        The ids.
    suffix : str or None
        Appended to ids that are not file names themselves; ``None`` finds
        each id's file whatever its image extension.

    Returns
    -------
    list of str
        One real path per id.

    Raises
    ------
    InputError
        An id that leaves the folder, or matches two files (``suffix=None``).
    """
    entries = None
    if len(ids) >= 64:
        # A chunk of a much larger folder (a CSV scored in chunks): one
        # lstat per id costs far less than listing the whole folder again.
        known = _FOLDER_ENTRIES.get(root)
        if known is not None and 4 * len(ids) < known:
            return _resolve_paths_by_lstat(root, ids, suffix)
        entries = _list_folder(root)
    if not entries:
        return [_resolve_path(root, image_id, suffix, row) for row, image_id in enumerate(ids)]
    return _resolve_paths_by_listing(root, ids, suffix, entries)


def _list_folder(root):
    """``{name: os.DirEntry}`` of ``root`` (None if it cannot be listed); remembers its size and suffixes."""
    try:
        mtime = os.stat(root).st_mtime_ns  # before listing: a change while listing is seen next time
        with os.scandir(root) as it:
            entries = {e.name: e for e in it}
    except OSError:
        return None
    if len(_FOLDER_ENTRIES) >= 256:
        _FOLDER_ENTRIES.clear()
    _FOLDER_ENTRIES[root] = len(entries)
    _remember_suffixes(root, mtime, {s for s in map(image_suffix, entries) if s})
    return entries


def _resolve_paths_by_listing(root, ids, suffix, entries):
    """:func:`resolve_paths` answered from the folder's listing ``entries`` where it can be.

    A plain name whose entry is a regular file, not a link, is
    ``root/name``; every other id goes through :func:`_resolve_path` and its checks.
    """
    suffixes = _SUFFIXES[root][1] if suffix is None else ()

    def plain_file(name):
        entry = entries.get(name)
        return entry is not None and not entry.is_symlink() and entry.is_file(follow_symlinks=False)

    prefix = os.path.join(root, "")
    out = []
    for row, image_id in enumerate(ids):
        real = None
        if image_id not in (".", "..") and not _NOT_PLAIN.search(image_id):
            own, others = _names(image_id, suffix, suffixes)
            own_entry = own in entries
            if own_entry and plain_file(own):
                real = prefix + own
            elif not own_entry:
                found = [n for n in others if n in entries]
                if len(found) == 1 and plain_file(found[0]):
                    real = prefix + found[0]
        out.append(real if real is not None else _resolve_path(root, image_id, suffix, row))
    return out


#: Entries of each folder at its last listing: only decides listing vs lstat.
_FOLDER_ENTRIES = {}


def _resolve_paths_by_lstat(root, ids, suffix):
    """:func:`resolve_paths` with an ``lstat`` per name instead of a folder listing.

    The same answers: a plain name whose entry is a regular file, not a
    link, is ``root/name``; an entry of another kind (link, folder), two
    matches or no entry at all go through :func:`_resolve_path` and its checks.
    """
    prefix = os.path.join(root, "")
    suffixes = _suffixes_in(root) if suffix is None else ()
    out = []
    for row, image_id in enumerate(ids):
        real = None
        if image_id not in (".", "..") and not _NOT_PLAIN.search(image_id):
            own, others = _names(image_id, suffix, suffixes)
            modes = {}
            for name in [own] + others:
                try:
                    modes[name] = os.lstat(prefix + name).st_mode
                except (OSError, ValueError):
                    continue
                if name == own:
                    break  # the id's own entry wins: no second name
            entries = list(modes)
            if len(entries) == 1 and stat.S_ISREG(modes[entries[0]]):
                real = prefix + entries[0]
        out.append(real if real is not None else _resolve_path(root, image_id, suffix, row))
    return out


def missing_hint(root, image_id, suffix):
    """What probably went wrong when no file was found for ``image_id``, or ``""``.

    Three mistakes are common: ids with leading zeros read from a CSV as
    numbers (``7`` asked, ``007.png`` present), spaces around an id (``" 7"``
    asked, ``7.png`` present: ids are taken as written), and a file of another
    extension than ``suffix`` (``7.jpg`` present, ``suffix=".png"``).

    Parameters
    ----------
    root : str
        The image folder.
    image_id : str
        The id without a file.
    suffix : str or None
        The loader's suffix.

    Returns
    -------
    Advice or str
        A sentence to append to the error (starting with ``"; "``), in the
        Python API's or the command line's words; ``""`` when nothing fits.
    """
    try:
        with os.scandir(root) as it:
            names = [e.name for e in it]
    except OSError:
        return ""
    stems = {}
    for name in names:
        stems.setdefault(os.path.splitext(name)[0], []).append(name)
    if image_id.isdigit():
        padded = sorted(n for stem, found in stems.items() if stem.isdigit() and stem != image_id
                        and stem.lstrip("0") == image_id.lstrip("0") for n in found)
        if padded:
            # The command line reads ids as text: there the CSV itself has lost the zeros.
            return f"; the folder holds {padded[0]}: " + Advice(
                "ids with leading zeros lose them when the CSV is read as numbers, so read it with "
                "pandas.read_csv(..., dtype={'id': str})",
                "the CSV itself lists the id without its leading zeros (a program that read the ids as "
                "numbers, such as a spreadsheet, wrote it); write the ids as text, with their zeros")
    bare = image_id.strip()
    if bare and bare != image_id:
        near = [bare] if bare in names else sorted(n for n in stems.get(bare, []) if image_suffix(n))
        if near:
            return (f"; the folder holds {shown(near[0])}: ids are read exactly as written, spaces included "
                    "(a different file is never loaded for an id)")
    other = sorted(n for n in stems.get(image_id, []) if image_suffix(n))
    if other and suffix is not None:
        ext = os.path.splitext(other[0])[1]
        return f"; {other[0]} exists: " + Advice(
            f"set suffix={ext!r}, or suffix=None to find each id's file",
            ("pass ", Option("suffix"), f" {ext}"))
    return ""


# -- opening image files safely ----------------------------------------------------

def _where(path):
    """``path`` as a message shows it: cut to its start and its length when absurdly long (made of a huge id)."""
    return shown(os.fspath(path), quote=False, limit=PATH_CHARS)


#: Longest path shown whole in a message (a real path is at most PATH_MAX, 4096 bytes on Linux).
PATH_CHARS = 4096


#: Files larger than this are left to Pillow (it reads them lazily).
_FAST_MAX_BYTES = 16 * 1024 * 1024
_FIRST_READ = 1 << 16
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_regular(path, follow=True):
    """A file descriptor of ``path``, opened for reading only if it is a regular file.

    The file is opened without blocking (a named pipe named like an image
    would otherwise wait forever for a writer), and refused unless it is a
    regular file: pipes, sockets, devices and folders get an
    :class:`ImageDecodeError`. With ``follow=False`` a symbolic link in
    place of the file is refused too (the loader resolves every id to its
    real path first, so a link found there now was put there since).
    ``FileNotFoundError`` is raised as it is. Returns ``(fd, os.stat_result)``.
    """
    flags = _OPEN_FLAGS | (0 if follow else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise ImageDecodeError(f"{_where(path)}: is now a symbolic link (it was not when its id was resolved); "
                                   "refused", path=str(path)) from None
        try:
            mode = os.stat(path, follow_symlinks=follow).st_mode
        except (OSError, ValueError):
            mode = stat.S_IFREG
        _refuse_special(path, mode)  # a socket cannot be opened: name it all the same
        raise ImageDecodeError(f"{_where(path)}: cannot open image file ({exc.strerror or exc})", path=str(path)) from None
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError(f"{_where(path)}: cannot open image file ({exc})", path=str(path)) from None
    try:
        st = os.fstat(fd)
        _refuse_special(path, st.st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _refuse_special(path, mode):
    """Refuse, by name, anything but a regular file (``mode`` from ``stat``)."""
    if not stat.S_ISREG(mode):
        kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if
                stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise ImageDecodeError(f"{_where(path)}: {kind}, not an image file; only regular files are read",
                               path=str(path))


def _read_for_fast_path(path, follow=True):
    """The bytes of a regular file of at most 16 MiB (the only read of it); None if larger.

    Larger files are left to Pillow, which reads them lazily from a file
    object opened the same way (:func:`_open_stream`).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ImageDecodeError
        If it is not a regular file (a pipe, a device, a folder) or cannot be read.
    """
    return _read_file(path, follow)[0]


def _read_file(path, follow=True):
    """``(bytes or None, os.stat_result)``: :func:`_read_for_fast_path` and the status of the file it read.

    The status comes from the open file (``fstat``), so a cache keyed on it
    describes the very file whose bytes were read.
    """
    fd, st = _open_regular(path, follow)
    try:
        if st.st_size > _FAST_MAX_BYTES:
            return None, st
        data = os.read(fd, max(st.st_size, _FIRST_READ))
        if len(data) >= _FIRST_READ:  # larger reads may come back short: read to the end, bounded
            chunks, total = [data], len(data)
            while total <= _FAST_MAX_BYTES and (chunk := os.read(fd, 1 << 20)):
                chunks.append(chunk)
                total += len(chunk)
            if total > _FAST_MAX_BYTES:  # it grew while read: leave it to the lazy path
                return None, st
            data = b"".join(chunks)
    except OSError as exc:
        raise ImageDecodeError(f"{_where(path)}: cannot read image file ({exc.strerror or exc})", path=str(path)) from None
    finally:
        os.close(fd)
    return data, st


def _open_stream(path, follow=True):
    """A binary file object of ``path``, opened as :func:`_open_regular` opens it."""
    return os.fdopen(_open_regular(path, follow)[0], "rb")
