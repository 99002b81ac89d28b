"""Write the "Parameters" section of CNNClassifier's docstring from the declarations.

The section is literal text in skimgclf/model/classifier.py (so that IDEs,
``help()`` and ``python -OO`` see a plain docstring), generated from
:func:`skimgclf.model.params.numpydoc`; tests/test_params.py fails when the
two differ. Run after changing a parameter's declaration or an "auto" rule::

    python ci/sync_docstring.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skimgclf.model.params import numpydoc  # noqa: E402

SOURCE = ROOT / "skimgclf" / "model" / "classifier.py"
# From the section's underline to the blank line before "Attributes".
SECTION = re.compile(r"(    Parameters\n    ----------\n)(.*?)(\n\n    Attributes\n)", re.S)


def main():
    text = SOURCE.read_text()
    new, n = SECTION.subn(lambda m: m.group(1) + numpydoc() + m.group(3), text, count=1)
    if n != 1:
        raise SystemExit(f"no Parameters section found in {SOURCE}")
    if new != text:
        SOURCE.write_text(new)
        print(f"updated {SOURCE}")


if __name__ == "__main__":
    main()
