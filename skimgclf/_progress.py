"""Progress bars: where a person watches (a terminal, a Jupyter notebook), never in plain logs.

One rule for the loader, training and the command line: a bar is shown when
standard error is a terminal or the code runs in a Jupyter kernel (where
``tqdm.auto`` draws a notebook widget), and never when output goes to a
file, a pipe or CI logs, which would fill with carriage returns.

Importing this module does not import tqdm.
"""

from __future__ import annotations

import sys

__all__ = ["DELAY", "bar", "in_notebook", "interactive"]

#: Seconds before the loading and prediction bars appear: work shorter than
#: this shows no bar at all.
DELAY = 1.0


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


def bar(*, show=True, delay=None, **kwargs):
    """A ``tqdm.auto`` bar, drawn only when ``show`` and :func:`interactive`.

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
    tqdm.auto.tqdm
        The bar (disabled, so silent, when not shown).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    return tqdm(disable=not (show and interactive()), delay=DELAY if delay is None else delay, **kwargs)
