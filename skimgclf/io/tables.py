"""Reading the CSV tables of the command line: ids as text, labels, image folders.

Every cell is read as text, exactly as it is written in the file (no number
parsing, no ``NA`` guessing), so an id such as ``0013035`` stays
``0013035`` and names ``0013035.png``. Labels are text too, except that a
column holding only plain integers (``0``, ``7``, ``-3``; no leading zeros,
no signs other than ``-``) becomes integers, so classes sort numerically and
are written back exactly as they were read.

Errors are :class:`~skimgclf.errors.TableError` (a ``ValueError``) naming
the file and the line (``.path``, ``.line``). Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from ..errors import InputError, TableError

__all__ = [
    "TableError",
    "count_rows",
    "default_image_dir",
    "iter_table",
    "labels_from_text",
    "read_table",
]

_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]*)")
#: Line of the first data row (line 1 is the header).
_FIRST_LINE = 2


#: How every table is read: each cell as text, exactly as written.
_READ_OPTIONS = dict(dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig", skipinitialspace=False)


def _open_csv(path, what, **kwargs):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise TableError(f"no such file ({what})", path=path)
    if os.path.isdir(path):
        raise TableError(f"a folder, not a CSV file ({what})", path=path)
    try:
        return pd.read_csv(path, **_READ_OPTIONS, **kwargs)
    except pd.errors.EmptyDataError:
        raise TableError("the file is empty (expected a header line such as 'id,label')", path=path) from None
    except pd.errors.ParserError as exc:
        raise TableError(f"not a readable CSV file ({' '.join(str(exc).split())})", path=path) from None
    except UnicodeDecodeError as exc:
        raise TableError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None


def _check_columns(df, path, id_column, label_column=None):
    columns = [str(c) for c in df.columns]
    for name, option in ((id_column, "--id-column"), (label_column, "--label-column")):
        if name is not None and name not in df.columns:
            raise TableError(f"no column {name!r}; the columns are {columns} (choose one with {option})",
                             path=path)


def _check_values(df, path, column, what, first_line):
    values = df[column].to_numpy(dtype=object)
    empty = np.flatnonzero([not str(v).strip() for v in values])
    if empty.size:
        raise TableError(f"the {what} is empty", path=path, line=first_line + int(empty[0]))


def read_table(path, *, id_column="id", label_column=None, what="CSV file"):
    """Read a whole CSV table as text, checking its id (and label) column.

    Parameters
    ----------
    path : str or path-like
        The CSV file (UTF-8, a byte-order mark is allowed).
    id_column : str, default="id"
        The column of image ids; every row must have one.
    label_column : str or None, default=None
        If given, the column of labels; every row must have one.
    what : str, default="CSV file"
        How the file is named in error messages (``"training CSV"``).

    Returns
    -------
    DataFrame
        All columns as text, exactly as written in the file.

    Raises
    ------
    TableError
        If the file is missing or unreadable, lacks a column, or has an empty
        id or label; the message names the file and the line.
    """
    path = os.fspath(path)
    df = _open_csv(path, what)
    _check_columns(df, path, id_column, label_column)
    if len(df) == 0:
        raise TableError("the table has a header but no rows", path=path)
    _check_values(df, path, id_column, "image id", _FIRST_LINE)
    if label_column is not None:
        _check_values(df, path, label_column, "label", _FIRST_LINE)
    return df


def iter_table(path, *, id_column="id", label_column=None, chunksize=4096, what="CSV file"):
    """Read a CSV table as text in chunks of at most ``chunksize`` rows.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    id_column : str, default="id"
        The column of image ids; every row must have one.
    label_column : str or None, default=None
        If given, the column of labels; every row must have one.
    chunksize : int, default=4096
        Rows per chunk: memory stays bounded however long the file is.
    what : str, default="CSV file"
        How the file is named in error messages.

    Yields
    ------
    DataFrame
        The next rows, all columns as text, with the file's row order.

    Raises
    ------
    TableError
        As :func:`read_table`, when the offending chunk is reached.
    """
    path = os.fspath(path)
    reader = _open_csv(path, what, chunksize=int(chunksize))
    line = _FIRST_LINE
    n = 0
    with reader:
        try:
            for chunk in reader:
                if n == 0:
                    _check_columns(chunk, path, id_column, label_column)
                if chunk.empty:
                    continue  # a header without rows: said once the file is read
                _check_values(chunk, path, id_column, "image id", line)
                if label_column is not None:
                    _check_values(chunk, path, label_column, "label", line)
                line += len(chunk)
                n += len(chunk)
                yield chunk
        except pd.errors.ParserError as exc:
            raise TableError(f"not a readable CSV file ({' '.join(str(exc).split())})", path=path) from None
        except UnicodeDecodeError as exc:
            raise TableError(f"not UTF-8 text ({exc.reason})", path=path) from None
    if n == 0:
        # The header alone: say so (pandas yields nothing).
        header = _open_csv(path, what, nrows=0)
        _check_columns(header, path, id_column, label_column)
        raise TableError("the table has a header but no rows", path=path)


def count_rows(path):
    """Count the data rows of a CSV file quickly (lines after the header).

    Meant for progress bars: quoted fields that span lines are not
    recognised, so the count can be an over-estimate for such files.

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Returns
    -------
    int
        The number of non-empty lines after the first.
    """
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


def labels_from_text(values, *, like=None, path=None, first_line=_FIRST_LINE):
    """Turn a column of label text into class labels.

    Parameters
    ----------
    values : sequence of str
        The labels as read from the file.
    like : ndarray or None, default=None
        The classes of a trained model. Labels are converted to their type
        (integers or floats when the model's classes are numbers, text
        otherwise). ``None``: integers when every label is a plain integer,
        text otherwise.
    path : str or None, default=None
        The file, for error messages.
    first_line : int, default=2
        Line number of ``values[0]`` in the file, for error messages.

    Returns
    -------
    ndarray of shape (n,)
        ``int64``, ``float64`` or ``object`` (str) labels.

    Raises
    ------
    TableError
        If a label cannot be read as the model's class type (an
        :class:`~skimgclf.errors.InputError` naming the row when ``path`` is
        None).
    """
    text = [str(v).strip() for v in values]
    kind = None if like is None else np.asarray(like).dtype.kind
    if kind is None:
        if text and all(_PLAIN_INT.fullmatch(t) for t in text):
            try:
                return np.asarray([int(t) for t in text], dtype=np.int64)
            except OverflowError:  # pragma: no cover - beyond int64: keep text
                pass
        return np.asarray(text, dtype=object)
    if kind in "iuf":
        convert = int if kind in "iu" else float
        out = []
        for i, t in enumerate(text):
            try:
                out.append(convert(t))
            except ValueError:
                message = (f"label {t!r} is not a number, but the model's classes are numbers "
                           f"({', '.join(str(c) for c in np.asarray(like)[:5])}...)")
                if path is None:
                    raise InputError(message, row=i) from None
                raise TableError(message, path=path, line=first_line + i) from None
        return np.asarray(out, dtype=np.int64 if kind in "iu" else np.float64)
    return np.asarray(text, dtype=object)


def default_image_dir(csv_path):
    """The image folder of a CSV in the seed layout: beside it, named after its stem.

    ``data/train.csv`` goes with ``data/train/``; a ``*_labels.csv`` file
    also goes with the folder without the suffix (``test_labels.csv`` with
    ``test/``) when there is no ``test_labels/`` folder.

    Parameters
    ----------
    csv_path : str or path-like
        The CSV file.

    Returns
    -------
    str
        The folder, which exists.

    Raises
    ------
    TableError
        If no such folder exists.
    """
    csv_path = os.fspath(csv_path)
    folder, name = os.path.split(csv_path)
    stem = os.path.splitext(name)[0]
    candidates = [os.path.join(folder, stem)]
    if stem.endswith("_labels"):
        candidates.append(os.path.join(folder, stem[: -len("_labels")]))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    raise TableError(
        f"no image folder given, and {candidates[0]}{os.sep} (beside {name}, named after it) "
        "does not exist; give the folder with --images DIR", path=csv_path
    )
