"""Every private name skimgclf uses from scikit-learn, scikeras and Keras is listed, with its reason.

docs/private_names.rst is the one place: a name found in the package and not
listed there fails, and so does a name listed there that the package no
longer uses. Found are: imports of a private module or name (a path part or
name starting with ``_``, or Keras' ``keras.src``), ``keras.src`` module names
written in the code, and the private methods and attributes of scikeras'
and scikit-learn's base classes that CNNClassifier overrides or calls.
"""

import ast
import re

from conftest import REPO

PACKAGE = REPO / "skimgclf"
DOC = REPO / "docs" / "private_names.rst"
LIBRARIES = ("sklearn", "scikeras", "keras", "tensorflow")


def _private(dotted):
    parts = dotted.split(".")
    return parts[0] in LIBRARIES and any(p.startswith("_") or (parts[0] == "keras" and p == "src") for p in parts)


def _imported_names():
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if _private(name):
                        found.add(name)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if _private(alias.name)}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"keras\.src(\.\w+)+", node.value):
                found.add(node.value)
    return found


def _inherited_names():
    """Private names of scikeras' and scikit-learn's classes that CNNClassifier defines or calls."""
    from skimgclf.model.classifier import CNNClassifier

    source = (PACKAGE / "model" / "classifier.py").read_text()
    used = set(re.findall(r"\bself\.(_[a-z]\w*)", source)) | {n for n in vars(CNNClassifier) if
                                                                re.fullmatch(r"_[a-z]\w*", n)}
    found = set()
    for name in used:
        for cls in CNNClassifier.__mro__[1:]:
            if cls.__module__.split(".")[0] in LIBRARIES and name in vars(cls):
                found.add(f"{cls.__module__}.{cls.__qualname__}.{name}")
                break
    return found


def _listed():
    in_use = DOC.read_text().split("\nNo longer used\n")[0]
    return set(re.findall(r"``((?:sklearn|scikeras|keras|tensorflow)\.[\w.]+)``", in_use))


def test_every_private_name_used_is_listed_and_every_listed_name_is_used():
    found = _imported_names() | _inherited_names()
    listed = _listed()
    assert sorted(found - listed) == [], "used but not listed in docs/private_names.rst"
    assert sorted(n for n in listed - found if _private(n)) == [], "listed but no longer used"


def test_the_finder_finds_what_it_should():
    """The search itself: known private uses are found, public ones are not."""
    assert _private("sklearn.utils._param_validation.Interval")
    assert _private("keras.src.saving.saving_lib") and not _private("keras.saving.load_model")
    assert not _private("sklearn.utils.ClassifierTags") and not _private("numpy._core")
    assert "scikeras.wrappers.BaseWrapper._fit_keras_model" in _inherited_names()
