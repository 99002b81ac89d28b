"""Sphinx configuration of the skimgclf documentation.

Build (offline, warnings as errors) from the repository root::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The build runs every ``examples/plot_*.py`` script with sphinx-gallery.
"""

import os
import sys
from pathlib import Path

# Quiet TensorFlow's C++ start-up logging while the examples run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "sphinxext"))

import skimgclf  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skimgclf"
author = "the skimgclf developers"
copyright = "the skimgclf developers"
version = release = skimgclf.__version__

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skimgclf_docs",  # docs/sphinxext: include-if-exists, API member filter
]
# No sphinx.ext.intersphinx: the build must not need the network.

templates_path = ["_templates"]
exclude_patterns = ["_build", "README.md", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "sg_execution_times.rst"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc's docstring checks on the public API: an undocumented or misnamed
# parameter, or a missing Returns section, fails the build.
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR10", "RT01", "GL08", "SS01"}
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.__sklearn_tags__$",
    # scikit-learn's generated metadata-routing methods.
    r"\.set_\w+_request$",
    r"\.get_metadata_routing$",
}

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "doc_module": ("skimgclf",),
    "backreferences_dir": "generated/backreferences",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "parallel": False,
    "min_reported_time": 1,
}

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skimgclf {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "getting_started": []}
html_show_sourcelink = False
