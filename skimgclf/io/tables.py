"""Reading the CSV tables of ids: the one reader of the command line and of :mod:`skimgclf.scoring`.

Every cell is read as text, exactly as it is written in the file: no number
parsing, no ``NA`` guessing, no stripping of spaces, so an id such as
``0013035`` stays ``0013035`` and names ``0013035.png``, and ``" 7.png"``
names the file `` 7.png``, never ``7.png``. Labels are text too, except
that a column holding only plain integers (``0``, ``7``, ``-3``; no leading
zeros, no signs other than ``-``) becomes integers, so classes sort
numerically and are written back exactly as they were read.

The file is parsed by Python's :mod:`csv` module, which counts the lines it
consumes, so every row knows the line of the file it starts on: blank lines
are skipped but counted, a quoted value that spans lines counts each of
them, ``\\r\\n`` ends one line, and a UTF-8 byte-order mark is no line. The
header is the first line that is not blank. Each message names that line.

Refused, naming the line: a row with more fields than the header (an
unquoted comma inside a value would shift every column after it); an id or
label that is empty or only whitespace; a quoted value not closed, or a
closing quote followed by more text; a value longer than
:data:`MAX_FIELD_CHARS` characters (no id or label is that long, and such a
value would cost its size again in every message); bytes that are not UTF-8.
A row with fewer fields than the header gets empty ones (so a missing label
is an empty label). Two header columns of the same name are refused when
it is the id or label column.

Errors are :class:`~skimgclf.errors.TableError` (a ``ValueError``) naming
the file and the line (``.path``, ``.line``). Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import codecs
import collections
import csv
import os
import re

import numpy as np
import pandas as pd

from ..errors import InputError, TableError, shown

__all__ = [
    "MAX_FIELD_CHARS",
    "RowLines",
    "TableError",
    "count_rows",
    "default_image_dir",
    "iter_table",
    "labels_from_text",
    "read_table",
]

_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]*)")
#: Line of the first data row of a file without blank lines (line 1 is the header).
_FIRST_LINE = 2
#: Longest value a table may hold (the :mod:`csv` module's default limit, which this module leaves as it is).
MAX_FIELD_CHARS = csv.field_size_limit()


def _check_file(path, what):
    if not os.path.exists(path):
        raise TableError(f"no such file ({what})", path=path)
    if os.path.isdir(path):
        raise TableError(f"a folder, not a CSV file ({what})", path=path)


def _csv_problem(exc):
    """What a :class:`csv.Error` means, in the user's words."""
    text = str(exc)
    if "field limit" in text:
        return (f"a value longer than {MAX_FIELD_CHARS} characters; ids and labels are far shorter "
                "(is this a CSV table of ids?)")
    if "end of data" in text:
        return "a quoted value is not closed before the end of the file"
    if "expected after" in text:
        return ("a closing quote is followed by more text; a quote inside a quoted value is written "
                'twice ("")')
    return f"not a readable CSV row ({text})"


def _records(path, what):
    """Yield ``(line, fields)`` for each record of the file that is not blank."""
    _check_file(path, what)
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise TableError(f"cannot read it ({exc.strerror or exc})", path=path) from None
    with fh:
        reader = csv.reader(fh, strict=True)
        done = 0  # physical lines consumed so far
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TableError(_csv_problem(exc), path=path, line=done + 1) from None
            except UnicodeDecodeError:
                line, offset, reason = _utf8_problem(path)
                raise TableError(f"not UTF-8 text ({reason} at byte {offset})", path=path, line=line) from None
            start, done = done + 1, reader.line_num
            if fields:
                yield start, fields


def _utf8_problem(path, block=1 << 20):
    """``(line, byte offset, reason)`` of the first bytes of ``path`` that are not UTF-8 (two bounded passes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    bad, reason, fed = None, "invalid UTF-8", 0
    with open(path, "rb") as fh:
        for data in iter(lambda: fh.read(block), b""):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as exc:
                bad, reason = fed - (len(exc.object) - len(data)) + exc.start, exc.reason
                break
            fed += len(data)
        else:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                bad, reason = fed - len(exc.object) + exc.start, exc.reason
    if bad is None:  # pragma: no cover - the text reader found a problem
        return None, "?", reason
    line, last = 1, b""
    with open(path, "rb") as fh:
        left = bad
        while left > 0:
            data = fh.read(min(block, left))
            if not data:
                break
            left -= len(data)
            # \n, \r\n and a lone \r each end a line, as for the text reader.
            line += data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n") - (last == b"\r" and data[:1] == b"\n")
            last = data[-1:]
    return line, bad, reason


def _columns(header, path, line, id_column, label_column):
    """The column names of ``header`` (duplicates of other columns numbered as pandas does), checked."""
    for name, option in ((id_column, "--id-column"), (label_column, "--label-column")):
        if name is None:
            continue
        count = header.count(name)
        if count == 0:
            raise TableError(f"no column {shown(name)}; the columns are {shown(header)} (choose one with {option})",
                             path=path)
        if count > 1:
            raise TableError(f"the header names the column {shown(name)} {count} times; which one is meant "
                             "is unclear", path=path, line=line)
    names, seen = [], collections.Counter()
    for name in header:
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    return names


def _rows(path, what, id_column, label_column):
    """``(names, rows)``: the checked column names, and an iterator of ``(line, fields)`` of checked rows."""
    records = _records(os.fspath(path), what)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise TableError("the file is empty (expected a header line such as 'id,label')", path=path) from None
    names = _columns(header, path, header_line, id_column, label_column)
    required = [(names.index(id_column), "image id")]
    if label_column is not None:
        required.append((names.index(label_column), "label"))
    n = len(names)

    def rows():
        for line, fields in records:
            if len(fields) > n:
                raise TableError(
                    f"{len(fields)} fields, but the header (line {header_line}) has {n}; a value that holds a "
                    "comma must be quoted", path=path, line=line)
            if len(fields) < n:
                fields += [""] * (n - len(fields))
            for index, name in required:
                value = fields[index]
                if not value.strip():
                    problem = "empty" if not value else f"only whitespace ({shown(value)})"
                    raise TableError(f"the {name} is {problem}", path=path, line=line)
            yield line, fields

    return names, rows()


def _frame(names, lines, rows):
    """The rows as a DataFrame of text, indexed by the line each row starts on."""
    columns = list(zip(*rows)) if rows else [()] * len(names)
    index = pd.Index(np.asarray(lines, dtype=np.int64), name="line")
    return pd.DataFrame({name: pd.array(list(col), dtype=str) for name, col in zip(names, columns)}, index=index)


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
        All columns as text, exactly as written in the file; the index
        (named ``"line"``) is the line of the file each row starts on.

    Raises
    ------
    TableError
        If the file is missing or unreadable, lacks a column, has a row with
        more fields than the header, or an empty id or label; the message
        names the file and the line.

    Examples
    --------
    >>> import os, tempfile
    >>> from skimgclf.io.tables import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("id,label\\n007,cat\\n\\n 8,dog\\n")
    >>> df = read_table(path, label_column="label")
    >>> df["id"].tolist(), df.index.tolist()
    (['007', ' 8'], [2, 4])
    """
    path = os.fspath(path)
    names, rows = _rows(path, what, id_column, label_column)
    lines, fields = [], []
    for line, row in rows:
        lines.append(line)
        fields.append(row)
    if not fields:
        raise TableError("the table has a header but no rows", path=path)
    return _frame(names, lines, fields)


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
        The next rows, all columns as text, with the file's row order; the
        index (named ``"line"``) is the line of the file each row starts on.

    Raises
    ------
    TableError
        As :func:`read_table`, when the offending row is reached.
    """
    path = os.fspath(path)
    chunksize = max(1, int(chunksize))
    names, rows = _rows(path, what, id_column, label_column)
    lines, fields, n = [], [], 0
    for line, row in rows:
        lines.append(line)
        fields.append(row)
        if len(fields) == chunksize:
            n += len(fields)
            yield _frame(names, lines, fields)
            lines, fields = [], []
    if fields:
        n += len(fields)
        yield _frame(names, lines, fields)
    if n == 0:
        raise TableError("the table has a header but no rows", path=path)


class RowLines:
    """The file line of each row of a table read in chunks, while the rows are in flight.

    Errors about a table scored chunk by chunk name a row counted from the
    table's start (:func:`skimgclf.scoring.iter_predict_proba`); this turns
    that row into the line of the file. Only the chunks read and not yet
    :meth:`release`-d are remembered, so memory stays bounded.

    Parameters
    ----------
    chunks : iterable of DataFrame
        Chunks from :func:`iter_table` (the index is the line of each row).
    path : str
        The CSV file, for the errors.
    """

    def __init__(self, chunks, path):
        self._chunks, self.path = chunks, path
        self._held = collections.deque()  # (first row, lines) of the chunks in flight
        self._read = 0

    def __iter__(self):
        for chunk in self._chunks:
            self._held.append((self._read, chunk.index.to_numpy()))
            self._read += len(chunk)
            yield chunk

    def release(self, rows_done):
        """Forget the chunks whose rows all lie before row ``rows_done`` (scored and written).

        Parameters
        ----------
        rows_done : int
            Rows of the table finished so far.
        """
        while self._held and self._held[0][0] + len(self._held[0][1]) <= rows_done:
            self._held.popleft()

    def error(self, exc):
        """``exc`` as a :class:`~skimgclf.errors.TableError` naming the line of its row, if known.

        Parameters
        ----------
        exc : InputError
            An error whose ``.row`` counts from the start of the table.

        Returns
        -------
        TableError or InputError
            The error naming :attr:`path` and the line; ``exc`` itself when
            its row is not among the rows in flight.
        """
        row = getattr(exc, "row", None)
        for first, lines in self._held:
            if row is not None and first <= row < first + len(lines):
                return TableError.from_input_error(exc.at_row(row - first), self.path, lines)
        return exc


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


def labels_from_text(values, *, like=None, path=None, first_line=_FIRST_LINE, lines=None):
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
        Line number of ``values[0]`` in the file, for error messages, when
        ``lines`` is None.
    lines : sequence of int or None, default=None
        The line of the file of each value (the index of a table read by
        :func:`read_table` or :func:`iter_table`), for error messages.

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
                message = (f"label {shown(t)} is not a number, but the model's classes are numbers "
                           f"({', '.join(shown(c) for c in np.asarray(like)[:5].tolist())}...)")
                if path is None:
                    raise InputError(message, row=i) from None
                line = first_line + i if lines is None else int(lines[i])
                raise TableError(message, path=path, line=line) from None
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
