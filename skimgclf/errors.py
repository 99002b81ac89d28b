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

Errors about the environment rather than the input are :class:`SetupError`
(a :class:`RuntimeError`): :class:`DaskSetupError` (a Dask cluster that
cannot run skimgclf's work) and :class:`BackboneWeightsError` (pretrained
weights that cannot be fetched or read). An output that cannot be written is
an :class:`OutputError` (an :class:`OSError`); the command line's own errors
are :class:`CLIError`. Every exception class of skimgclf is defined in this
module and derives from :class:`SkimgclfError`.

Advice in a message can depend on who reads it: a Python user sets
``backbone_weights=None``, a command-line user passes ``--backbone-weights
none``. Such a message is an :class:`Advice` with both texts; it is told in
the Python API's words unless :func:`speaking_cli` is in force (the command
line runs every command inside it, with its option names).

Importing this module imports nothing else of skimgclf.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import re

__all__ = ["Advice", "BackboneWeightsError", "CLIError", "DaskSetupError", "ImageDecodeError", "InputError",
           "ModelFileError", "Option", "OutputError", "RefusedNetwork", "SetupError", "SkimgclfError", "StreamError",
           "TableError", "Terminated", "UsageError", "shown", "speaking_cli"]

#: The command line's option for each parameter name while it runs a command; None in Python.
_CLI_OPTIONS = contextvars.ContextVar("skimgclf_cli_options", default=None)


class Option:
    """A parameter named in an :class:`Advice`'s command-line text: told as its option (``--suffix``).

    Parameters
    ----------
    name : str
        The parameter's Python name (``"backbone_weights"``).
    """

    def __init__(self, name):
        self.name = name

    def told(self, options):
        """The option of this parameter in ``options``, or one made from its name."""
        return options.get(self.name) or "--" + self.name.replace("_", "-")


class Advice:
    """A message, or a part of one, in the Python API's words and in the command line's.

    ``str(advice)`` is the Python text, or the command-line text while
    :func:`speaking_cli` is in force. An error can be raised with an advice
    as its message (``ValueError(Advice(...))``) or hold one inside its own.

    Parameters
    ----------
    python : str
        The text for Python users (``"pass backbone_weights=None"``).
    cli : str or sequence of str and Option
        The text for command-line users, its parameters as :class:`Option`
        (``("pass ", Option("backbone_weights"), " none")``).
    """

    def __init__(self, python, cli):
        self.python = python
        self.cli = (cli,) if isinstance(cli, str) else tuple(cli)

    def __str__(self):
        options = _CLI_OPTIONS.get()
        if options is None:
            return self.python
        return "".join(part.told(options) if isinstance(part, Option) else str(part) for part in self.cli)

    def __add__(self, other):
        if isinstance(other, Advice):
            return Advice(self.python + other.python, self.cli + other.cli)
        return Advice(self.python + str(other), self.cli + (str(other),))

    def __radd__(self, other):
        return Advice(str(other) + self.python, (str(other),) + self.cli)

    def __repr__(self):
        return f"Advice({self.python!r}, ...)"


@contextlib.contextmanager
def speaking_cli(options):
    """Tell every :class:`Advice` in the command line's words inside this block.

    Parameters
    ----------
    options : dict of str to str
        The option of each parameter name (``{"backbone_weights": "--backbone-weights"}``).
    """
    token = _CLI_OPTIONS.set(dict(options))
    try:
        yield
    finally:
        _CLI_OPTIONS.reset(token)

#: Longest value (characters) quoted whole in a message: a longer one is cut to its start and its length.
SHOWN_CHARS = 200


def shown(value, *, limit=SHOWN_CHARS, quote=True):
    """A value as an error message shows it: its ``repr``, cut to its start and its length when long.

    A table may hold an id of a hundred megabytes; quoting it whole would
    make a message of that size (twice, with the path made of it).

    Parameters
    ----------
    value : object
        The value (an id, a label, a path, a list of column names).
    limit : int, default=200
        Longest text shown whole; a longer one keeps its first ``limit``
        characters and says how long it is.
    quote : bool, default=True
        ``repr`` the value (ids, labels); ``False`` shows a path as it is.

    Returns
    -------
    str
        ``'abc'``, or ``'aaaa...'... (104857600 characters)``.

    Examples
    --------
    >>> from skimgclf.errors import shown
    >>> shown("7.png")
    "'7.png'"
    >>> shown("x" * 1000, limit=4)
    "'xxxx'... (1000 characters)"
    """
    if isinstance(value, (str, bytes, bytearray)) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        head = value[:limit]
        return f"{head!r}... ({len(value)} {unit})" if quote else f"{head}... ({len(value)} {unit})"
    if isinstance(value, (list, tuple)):
        parts, size = [], 0
        for item in value:
            if size > limit:
                break
            parts.append(shown(item, limit=limit))
            size += len(parts[-1]) + 2
        text = f"[{', '.join(parts)}]"
        return text if len(parts) == len(value) and len(text) <= limit else \
            f"[{', '.join(parts)}, ...] ({len(value)} items)"
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class SkimgclfError(Exception):
    """The base of every exception skimgclf defines (catch it to catch any of them)."""


class InputError(SkimgclfError, ValueError):
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


class TableError(SkimgclfError, ValueError):
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


class ModelFileError(SkimgclfError, ValueError):
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


class SetupError(SkimgclfError, RuntimeError):
    """The environment cannot do what a valid request asks (a cluster, a download, a weights file).

    Not a :class:`ValueError`: the parameters are fine, what they point at
    is missing or unusable. The message says what to set up.
    """


class BackboneWeightsError(SetupError):
    """``backbone_weights`` cannot be used.

    The ImageNet weights are neither in Keras' cache nor downloadable (no
    network), the file does not exist, or it holds the weights of another
    network. The message names ``backbone_weights`` and says how to bring a
    local weights file.
    """


class DaskSetupError(SetupError):
    """A Dask cluster cannot run skimgclf's work as asked.

    Raised when no scheduler answers, a worker lacks skimgclf (or has
    another version), or an image folder does not exist on a worker. The
    message names the worker and the path.
    """


class StreamError(SkimgclfError):
    """Writing to a standard stream failed (``standard output: No space left on device``; a closed pipe).

    Not an ``OSError``: code that turns a failed write into an error naming
    an output *file* must not blame this on the file.

    Parameters
    ----------
    name : str
        The stream, as messages name it (``"standard output"``).
    cause : OSError
        What the system said.
    """

    def __init__(self, name, cause):
        super().__init__(f"{name}: {cause.strerror or cause}")
        self.name, self.errno = name, cause.errno


class OutputError(SkimgclfError, OSError):
    """An output file that cannot be written (disk full, no permission, ...); its message starts with the path.

    Parameters
    ----------
    path : str
        The output file.
    cause : OSError
        What the system said.
    """

    def __init__(self, path, cause):
        super().__init__(cause.errno, cause.strerror or str(cause), path)
        self.path = path

    def __str__(self):
        return f"{self.path}: cannot write it ({self.strerror}); nothing was written"


class CLIError(SkimgclfError):
    """A user error of the command line: reported as one line on standard error (exit status 1)."""


class UsageError(CLIError):
    """A command line the parser refuses (exit status 2)."""


class RefusedNetwork(SkimgclfError, ValueError):
    """A reason to refuse a saved network; the model file check turns it into a :class:`ModelFileError`."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as on Ctrl-C (temporary files removed).

    A :class:`KeyboardInterrupt`, not a :class:`SkimgclfError`: like Ctrl-C,
    ``except Exception`` must not swallow it.
    """
