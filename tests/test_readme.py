"""The README's Python example runs as written, in a folder of colour JPEG photos of many sizes."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO


def readme_python():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


@pytest.mark.slow
def test_readme_example_on_colour_photos(tmp_path):
    from skimgclf.datasets import make_sample_photos

    paths = make_sample_photos(tmp_path, n_images=120, max_side=200)
    out = subprocess.run([sys.executable, "-c", readme_python()], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    accuracy = float(re.search(r"validation accuracy ([0-9.]+)", out.stdout).group(1))
    assert accuracy > 0.7  # two photographs: far above chance
    predictions = pd.read_csv(tmp_path / "predictions.csv", dtype=str)
    test = pd.read_csv(paths["test_csv"], dtype=str)
    assert predictions["id"].tolist() == test["id"].tolist()  # zero-padded ids kept as written
    assert set(predictions["label"]) <= {"china", "flower"}
    assert Path(tmp_path / "model.skimgclf").is_file()


def test_property_tests_draw_the_same_examples_unless_told_to_explore():
    """The README's promise: hypothesis draws the same examples every run, new ones with SKIMGCLF_HYPOTHESIS=explore."""
    import os

    from hypothesis import settings

    assert settings.get_profile("fixed").derandomize and not settings.get_profile("explore").derandomize
    assert settings.default.derandomize == (os.environ.get("SKIMGCLF_HYPOTHESIS") != "explore")
    assert "`SKIMGCLF_HYPOTHESIS=explore` draws new ones" in (REPO / "README.md").read_text()
