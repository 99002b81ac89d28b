"""From image ids to files: the one resolver, which never lets an id reach outside the image folder.

An id names ``<folder>/<id>`` if that file exists, else ``<folder>/<id><suffix>``.
Absolute ids, drive letters, UNC names, ``..`` components, NUL bytes and
symbolic links that leave the folder are refused (an
:class:`~skimgclf.errors.InputError` naming the row and the id), on every
operating system alike.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import stat

from ..errors import InputError

__all__ = ["resolve_paths"]

_UNSAFE_PART = re.compile(r"(^|[\\/])\.\.([\\/]|$)")


def _resolve_path(root, image_id, suffix, row):
    """Map an id to a real path inside ``root`` (a realpath), refusing escapes."""
    if "\x00" in image_id:
        raise InputError(f"id {image_id!r} contains a NUL byte; refused", row=row, image_id=image_id)
    # Absolute, drive-letter, UNC (\\server) and '..' ids are refused on every
    # OS, so a table that is safe here is safe on Windows too.
    if os.path.isabs(image_id) or image_id[0] in "/\\" or _UNSAFE_PART.search(image_id) or (
        len(image_id) > 1 and image_id[1] == ":"
    ):
        raise InputError(f"id {image_id!r} points outside the image folder {root}; refused",
                         row=row, image_id=image_id)
    candidate = os.path.join(root, image_id)
    if suffix and not image_id.endswith(suffix) and not os.path.isfile(candidate):
        candidate += suffix
    real = os.path.realpath(candidate)
    if os.path.commonpath([real, root]) != root:
        raise InputError(f"id {image_id!r} resolves to {real}, outside the image folder {root} "
                         "(a symbolic link?); refused", row=row, image_id=image_id, path=real)
    return real


_NOT_PLAIN = re.compile(r"[\\/:\x00]")


def resolve_paths(root, ids, suffix):
    """The real path of each id inside the folder ``root`` (a real path), refusing escapes.

    ``[_resolve_path(root, id, suffix, row) ...]``, listing ``root`` once.

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
    """:func:`resolve_paths` with one ``lstat`` per id instead of a folder listing.

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
