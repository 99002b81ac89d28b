"""What the documentation shows is what the package does: its printed results, run for real."""

import re

from conftest import REPO


def _code_blocks(rst):
    """The ``.. code-block:: python`` blocks of an rST file, dedented."""
    text = (REPO / "docs" / rst).read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]


def test_getting_started_shows_what_loading_the_sample_gives(tmp_path, monkeypatch):
    """Each ``expression   # (value)...`` line of the loading block prints that value on the sample digits."""
    from skimgclf.datasets import make_sample_dataset

    make_sample_dataset(tmp_path / "digits")
    monkeypatch.chdir(tmp_path / "digits")
    block = next(b for b in _code_blocks("getting_started.rst") if "loader.fit_transform(train)" in b)
    namespace, checked = {}, 0
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        shown = re.match(r"\s*(\(.*\))[:,]", comment)
        if shown and " = " not in code:
            value = eval(code, namespace)  # noqa: S307 - the documentation's own example
            assert repr(value) == shown.group(1), (code.strip(), repr(value), comment)
            checked += 1
        else:
            exec(line, namespace)  # noqa: S102
    assert checked == 2, block
