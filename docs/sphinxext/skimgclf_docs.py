"""Local Sphinx helpers of the skimgclf documentation.

- ``.. include-if-exists:: path`` shows a text file of the repository (for
  instance ``benchmarks/RESULTS.md``) as a literal block, or the directive's
  content as a note when the file is absent, so the page is always valid.
- ``.. command-help:: train`` shows the ``--help`` of a ``skimgclf``
  sub-command, run at build time (no extra dependency), so the CLI page
  cannot drift from the parser; a failing command fails the build.
- Members inherited from scikeras' wrapper classes are left out of the API
  reference: only what skimgclf defines (and scikit-learn's ``get_params``,
  ``set_params``, ``score``) is its API. Cross-references in docstrings
  inherited from scikit-learn become plain text (their targets live in
  scikit-learn's documentation, out of reach offline).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


class IncludeIfExists(SphinxDirective):
    """Show a file as a literal block, or the directive body if it is missing."""

    required_arguments = 1
    has_content = True
    option_spec = {"language": directives.unchanged}

    def run(self):
        rel, path = self.env.relfn2path(self.arguments[0])
        # Noted even when missing: the page is then re-read until the file appears.
        self.env.note_dependency(rel)
        if Path(path).is_file():
            text = Path(path).read_text(encoding="utf-8")
            block = nodes.literal_block(text, text)
            block["language"] = self.options.get("language", "text")
            return [block]
        note = nodes.note()
        self.state.nested_parse(self.content, self.content_offset, note)
        return [note]


class CommandHelp(SphinxDirective):
    """The ``--help`` text of ``skimgclf [ARGS...]`` as a literal block."""

    optional_arguments = 10
    has_content = False

    def run(self):
        argv = [sys.executable, "-m", "skimgclf", *self.arguments, "--help"]
        env = dict(os.environ, COLUMNS="88", TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise self.error(f"cannot run {' '.join(argv[1:])}: {exc}") from exc
        if proc.returncode != 0:
            raise self.error(
                f"{' '.join(argv[1:])} exited with status {proc.returncode}: {proc.stderr.strip()}"
            )
        for name in ("cli/parser.py", "cli/commands.py", "model/params.py", "io/tables.py", "__main__.py"):
            self.env.note_dependency(str(Path(__file__).resolve().parents[2] / "skimgclf" / name))
        text = "$ skimgclf " + " ".join([*self.arguments, "--help"]) + "\n" + proc.stdout.rstrip()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


# :ref:`title <label>`, :ref:`label`, :term:`word`, :doc:`page` in docstrings.
_FOREIGN_ROLE = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*(?:<([^`>]*)>)?`")


def _plain_foreign_refs(app, what, name, obj, options, lines):
    """Turn scikit-learn's cross-references in inherited docstrings into text.

    Methods inherited from scikit-learn (``score``, ``get_metadata_routing``,
    ``set_output``...) refer to labels of scikit-learn's own documentation,
    which this build cannot reach without the network. References in
    skimgclf's own docstrings are left alone, so a broken one still fails.
    """
    func = obj.fget if isinstance(obj, property) else obj
    if not (getattr(func, "__module__", None) or "").startswith("sklearn"):
        return
    lines[:] = [_FOREIGN_ROLE.sub(lambda m: m.group(1) or m.group(2), line) for line in lines]


def _skip_wrapper_internals(app, what, name, obj, skip, options):
    if what != "class":
        return skip
    func = obj.fget if isinstance(obj, property) else obj
    if (getattr(func, "__module__", None) or "").startswith("scikeras"):
        return True
    return skip


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")  # for the events connected below
    app.add_directive("include-if-exists", IncludeIfExists)
    app.add_directive("command-help", CommandHelp)
    app.connect("autodoc-skip-member", _skip_wrapper_internals)
    app.connect("autodoc-process-docstring", _plain_foreign_refs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
