"""Check the built distributions: the wheel holds the LICENSE, the sdist holds the tests whole.

Usage: python ci/check_dist.py WHEEL SDIST (run by .ci/run after ``python -m build``).
"""

import sys
import tarfile
import zipfile


def main(wheel, sdist):
    names = zipfile.ZipFile(wheel).namelist()
    licenses = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert licenses, f"{wheel}: no LICENSE in its .dist-info ({sorted(names)[:5]} ...)"
    text = zipfile.ZipFile(wheel).read(licenses[0]).decode()
    assert "BSD 3-Clause License" in text and "skimgclf developers" in text, licenses[0]
    assert not [n for n in names if n.startswith("tests/")], "the wheel ships the tests"
    members = tarfile.open(sdist).getnames()
    tests = {m.split("/", 1)[1] for m in members if "/tests/" in m}
    for needed in ("tests/conftest.py", "tests/test_loader.py", "LICENSE"):
        found = needed in tests or any(m.endswith("/" + needed) for m in members)
        assert found, f"{sdist}: no {needed}"
    print(f"{wheel.rsplit('/', 1)[-1]}: LICENSE in {licenses[0]}; {sdist.rsplit('/', 1)[-1]}: "
          f"{len([t for t in tests if t.endswith('.py')])} test files, conftest.py included")


if __name__ == "__main__":
    main(*sys.argv[1:3])
