"""The errors skimgclf raises about its inputs: types that carry where the problem is.

Every error about bad input is a :class:`ValueError` (so code that catches
scikit-learn's bad-input errors catches these too) and says in its message
which row, id, file or table line it is about. The same facts are
attributes, so that code which re-numbers rows -- a chunk of a long table,
the training rows of a CSV -- builds a new error from them instead of
parsing the message:

- :class:`InputError`: ``.row`` (a position in what the estimator was given),
  ``.image_id``, ``.path``; :class:`ImageDecodeError` is an image file that
  cannot be read.
- :class:`TableError`: a CSV table, with ``.path`` and ``.line``.
- :class:`ModelFileError`: a model file that is not a valid skimgclf model.
- :class:`DaskSetupError`: a Dask cluster that cannot run skimgclf's work.

Importing this module imports nothing else of skimgclf.
"""

from __future__ import annotations

import copy
import re

__all__ = ["BackboneWeightsError", "DaskSetupError", "ImageDecodeError", "InputError", "ModelFileError", "TableError"]


class InputError(ValueError):
    """Bad input the loader or classifier was given, blamed on a row, an id or a file.

    Parameters
    ----------
    message : str
        What is wrong, without the row (``"no image for id '7': ... does not exist"``).
    row : int or None, default=None
        Position of the offending row in what was given (0-based).
    image_id : str or None, default=None
        The image id of that row.
    path : str or None, default=None
        The file concerned.

    Notes
    -----
    ``str(error)`` is ``"row <row>: <message>"`` when the row is known.
    """

    def __init__(self, message, *, row=None, image_id=None, path=None):
        super().__init__(message)
        self.message, self.row, self.image_id, self.path = message, row, image_id, path

    def __str__(self):
        return self.message if self.row is None else f"row {self.row}: {self.message}"

    def at_row(self, row):
        """The same error, about row ``row`` (a row of a larger table).

        Parameters
        ----------
        row : int
            The row in the larger table.

        Returns
        -------
        InputError
            A copy of this error of the same type, with ``row`` changed.
        """
        other = copy.copy(self)
        other.row = int(row)
        other.__cause__ = self
        return other

    def __reduce__(self):
        # Keyword arguments survive pickling (errors come back from Dask workers).
        return _rebuild, (type(self), self.message, self.row, self.image_id, self.path)


def _rebuild(cls, message, row, image_id, path):
    return cls(message, row=row, image_id=image_id, path=path)


class ImageDecodeError(InputError):
    """An image file could not be read or decoded (missing, empty, not an image, truncated, too large).

    Subclasses :class:`InputError` (and :class:`ValueError`).

    Parameters
    ----------
    message : str
        What is wrong, naming the file.
    row : int or None, default=None
        Position of the row whose image it is, when known.
    image_id : str or None, default=None
        The image id of that row.
    path : str or None, default=None
        The file.
    """


class TableError(ValueError):
    """A CSV table is missing or unreadable, or lacks a column or a value.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or None, default=None
        The CSV file.
    line : int or None, default=None
        The line of the file (1 is the header), when one line is to blame.

    Notes
    -----
    ``str(error)`` is ``"<path> line <line>: <message>"`` when both are known.
    """

    def __init__(self, message, *, path=None, line=None):
        super().__init__(message)
        self.message, self.path, self.line = message, path, line

    def __str__(self):
        if self.path is None:
            return self.message
        return f"{self.path}{'' if self.line is None else f' line {self.line}'}: {self.message}"

    @classmethod
    def from_input_error(cls, error, path, lines):
        """The :class:`InputError` ``error`` of a table's rows as an error naming the file's line.

        Parameters
        ----------
        error : InputError
            An error whose ``.row`` is a position in the rows given.
        path : str
            The CSV file.
        lines : sequence of int
            The file line of each row given.

        Returns
        -------
        TableError or InputError
            The error naming ``path`` and the line; ``error`` itself when its
            row is unknown or outside ``lines``.
        """
        if not isinstance(error, InputError) or error.row is None or not 0 <= error.row < len(lines):
            return error
        out = cls(error.message, path=path, line=int(lines[error.row]))
        out.__cause__ = error
        return out

    def __reduce__(self):
        return type(self)._rebuild, (self.message, self.path, self.line)

    @classmethod
    def _rebuild(cls, message, path, line):
        return cls(message, path=path, line=line)


class ModelFileError(ValueError):
    """A model file is not a valid skimgclf model (corrupt, truncated, tampered with or foreign)."""


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


def one_line(text, limit=300):
    """``text`` (an exception's message, say) as one clean line for an error message of skimgclf's.

    Terminal escape codes are dropped, line breaks and runs of spaces become
    one space, other control characters are shown escaped (``\\x00``), and a
    text longer than ``limit`` is cut to its start and its length.

    Parameters
    ----------
    text : str or BaseException
        What to show.
    limit : int, default=300
        Most characters kept.

    Returns
    -------
    str
        The line.
    """
    text = " ".join(_ESCAPES.sub("", str(text)).split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class BackboneWeightsError(ValueError):
    """``backbone_weights`` cannot be used.

    The ImageNet weights are neither in Keras' cache nor downloadable (no
    network), the file does not exist, or it holds the weights of another
    network. The message names ``backbone_weights`` and says how to bring a
    local weights file.
    """


class DaskSetupError(ValueError):
    """A Dask cluster cannot run skimgclf's work as asked.

    Raised when no scheduler answers, a worker lacks skimgclf (or has
    another version), or an image folder does not exist on a worker. The
    message names the worker and the path.
    """
