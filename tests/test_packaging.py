"""The declared dependency floors are the ones CI tests (ci/constraints-oldest.txt), and they can be installed."""

import re
import tomllib

from packaging.version import Version

from conftest import REPO


def _requirements():
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["dependencies"]


def test_the_oldest_configuration_pins_every_declared_floor():
    """Each dependency (for Python 3.11) at exactly its floor, and nothing else pinned."""
    floors = {}
    for requirement in _requirements():
        spec, _, marker = requirement.partition(";")
        if "3.13" in marker and ">=" in marker:
            continue  # Python 3.13 only
        name, op, version = re.fullmatch(r"\s*([\w.-]+)\s*(>=|==)\s*([\w.]+)\s*", spec).groups()
        floors[name.lower()] = Version(version)
    pinned = {}
    for line in (REPO / "ci" / "constraints-oldest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.strip().lower()] = Version(version.strip())
    assert pinned == floors


def test_python_313_gets_the_first_tensorflow_and_numpy_with_its_wheels():
    text = " ".join(_requirements())
    assert "tensorflow>=2.20; python_version>='3.13'" in text and "numpy>=2.1; python_version>='3.13'" in text
    with open(REPO / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)
    classifiers = project["project"]["classifiers"]
    assert {f"Programming Language :: Python :: 3.{v}" for v in (11, 12, 13)} <= set(classifiers)
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
