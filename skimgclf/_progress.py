"""Progress bars: where a person watches (a terminal, a Jupyter notebook), never in plain logs.

One rule for the loader, training and the command line: a bar is shown when
standard error is a terminal or the code runs in a Jupyter kernel (a
notebook widget where ipywidgets is installed, a text bar otherwise), and
never when output goes to a file, a pipe or CI logs, which would fill with
carriage returns. There, inside :func:`lines_when_unwatched` (the command
line), a bar asked for with ``lines=True`` (training's epochs) writes one
plain line per step instead, at most every :data:`LINE_EVERY` seconds, with
the time left.

Importing this module does not import tqdm.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time

__all__ = ["DELAY", "LINE_EVERY", "LineProgress", "bar", "in_notebook", "interactive", "lines_when_unwatched"]

#: Seconds before the loading and prediction bars appear: work shorter than
#: this shows no bar at all.
DELAY = 1.0

#: Fewest seconds between two lines of :class:`LineProgress` (the last step is always written).
LINE_EVERY = 5.0

#: The clock of :class:`LineProgress` (seconds).
_clock = time.monotonic

#: Where lines go when nobody watches, inside :func:`lines_when_unwatched`; None elsewhere.
_LINES = contextvars.ContextVar("skimgclf_progress_lines", default=None)


def in_notebook():
    """Whether this process is a Jupyter (IPython) kernel.

    Returns
    -------
    bool
        True inside a notebook's kernel.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:  # pragma: no cover - an unusual IPython
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def interactive():
    """Whether a person is likely watching: a terminal on standard error, or a notebook.

    Returns
    -------
    bool
        True when progress bars should be drawn.
    """
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        tty = False
    return tty or in_notebook()


def bar(*, show=True, delay=None, lines=False, **kwargs):
    """A tqdm bar, drawn only when ``show`` and :func:`interactive`.

    Parameters
    ----------
    show : bool, default=True
        The caller's own wish (``verbose``, ``--quiet``).
    delay : float or None, default=None
        Seconds before the bar appears; ``None`` is :data:`DELAY` (read at
        each call, so that it can be changed at run time).
    **kwargs : dict
        Arguments for ``tqdm`` (``total``, ``desc``, ``unit``, ...).

    Returns
    -------
    tqdm.std.tqdm or LineProgress
        The bar (disabled, so silent, when not shown).
    """
    watched = interactive()
    stream = _LINES.get()
    if lines and show and not watched and stream is not None:
        return LineProgress(stream, **kwargs)
    kwargs.setdefault("leave", False)
    return _tqdm_class()(disable=not (show and watched), delay=DELAY if delay is None else delay, **kwargs)


def _tqdm_class():
    """tqdm's notebook widget bar in a notebook with ipywidgets, its text bar everywhere else.

    ``tqdm.auto`` would make the same choice but print a ``TqdmWarning:
    IProgress not found`` into the cell of a notebook without ipywidgets.
    """
    if in_notebook():
        from tqdm.notebook import IProgress, tqdm

        if IProgress is not None:  # None: ipywidgets is not installed
            return tqdm
    from tqdm.std import tqdm

    return tqdm


@contextlib.contextmanager
def lines_when_unwatched(stream):
    """Inside this block, bars asked for with ``lines=True`` write lines to ``stream`` when nobody watches.

    Parameters
    ----------
    stream : file-like or None
        Where the lines go (the command line's standard error); None: nowhere.
    """
    token = _LINES.set(stream)
    try:
        yield
    finally:
        _LINES.reset(token)


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LineProgress:
    """What a bar becomes in a file or a pipe: a line per step, at most every :data:`LINE_EVERY` seconds.

    Each line gives the step count, the latest postfix (metrics) and the
    time left, estimated from the steps done so far; the last step's line
    is always written and gives the time taken. It has the parts of a tqdm
    bar that skimgclf uses (``n``, ``total``, ``postfix``, ``update``,
    ``set_postfix``, ``refresh``, ``close``).

    Parameters
    ----------
    stream : file-like
        Where the lines go.
    total : int
        The number of steps.
    initial : int, default=0
        Steps done before this bar started.
    desc : str, default=""
        What is done (``"training"``).
    unit : str, default="step"
        What a step is (``"epoch"``).
    **kwargs : dict
        Other tqdm arguments, ignored.
    """

    def __init__(self, stream, *, total, initial=0, desc="", unit="step", **kwargs):
        self.stream, self.total, self.n, self.desc, self.unit = stream, total, int(initial), desc, unit
        self.postfix = ""
        self._first, self._start, self._written = self.n, _clock(), None

    def set_postfix(self, values=None, **kwargs):
        """Show ``values`` (a dict, as tqdm's ``set_postfix``) on the next line."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(values or {}), **kwargs}.items())

    def update(self, n=1):
        """Count ``n`` more steps; write a line if the last one is old enough or this is the end."""
        self.n += int(n)
        now = _clock()
        if self._written is None or now - self._written >= LINE_EVERY or self.n >= self.total:
            self._written = now
            done, elapsed = self.n - self._first, now - self._start
            if self.n >= self.total:
                when = f"done in {_duration(elapsed)}"
            else:
                when = f"about {_duration(elapsed / max(done, 1) * (self.total - self.n))} left"
            parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}", self.postfix, when]
            print(", ".join(p for p in parts if p), file=self.stream, flush=True)

    def refresh(self):
        """Nothing to redraw: lines are written as they come."""

    def close(self):
        """Nothing to close: the stream is the caller's."""
