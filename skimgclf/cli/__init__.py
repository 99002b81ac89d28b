"""The ``skimgclf`` command line: :mod:`.parser` (commands and options) and :mod:`.commands` (what they do).

The commands only parse, call the public API and print; run ``skimgclf --help``
or ``python -m skimgclf --help``.
"""

from .commands import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
