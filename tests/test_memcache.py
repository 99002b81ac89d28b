"""The in-memory batch cache (``skimgclf.io.memcache``, ``skimgclf.io.watch``): reused, and it notices changed files."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import write_folder
from PIL import Image

import skimgclf
from skimgclf import ImageFolderLoader
from skimgclf.io import memcache, watch


def test_batch_cache_reuses_and_notices_changes(tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    arrays = write_folder(folder)
    table = pd.DataFrame({"id": range(len(arrays))})
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    first = loader.transform(table)
    assert not first.flags.writeable, "a cached batch is shared, so read-only"
    assert loader.transform(table) is first
    assert loader.transform(list(range(len(arrays)))) is first  # same ids, another container

    # Overwritten in place (no rename, same size): noticed.
    Image.fromarray(255 - arrays[5], "L").save(folder / "5.png")
    second = loader.transform(table)
    assert second is not first
    np.testing.assert_allclose(second[5, ..., 0], (255 - arrays[5]) / np.float32(255), atol=1e-7)

    # Replaced by a rename: noticed.
    Image.fromarray(arrays[5], "L").save(tmp_path / "new.png")
    os.replace(tmp_path / "new.png", folder / "5.png")
    third = loader.transform(table)
    np.testing.assert_allclose(third[5, ..., 0], arrays[5] / np.float32(255), atol=1e-7)

    # Removed: the error of a missing file, never the old array.
    os.remove(folder / "7.png")
    with pytest.raises(ValueError, match="7"):
        loader.transform(table)

    assert ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", cache=False, verbose=0).transform(
        table.drop(7)).flags.writeable


def test_batch_cache_notices_changes_in_sub_folders(tmp_path):
    """Ids in sub-folders: a change there (not in the image folder itself) is noticed."""
    folder = tmp_path / "imgs"
    arrays = write_folder(folder, n=2)
    (folder / "a").mkdir()
    arrays = write_folder(folder / "a" / "b", n=3) + arrays
    ids = ["a/b/0", "a/b/1", "a/b/2", "0", "1"]
    assert memcache.folders_of([os.path.join(str(folder), "a", "b", "0.png"), str(folder / "1.png"),
                                str(folder / "a" / "b" / "2.png")]) == {str(folder / "a" / "b"), str(folder)}
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    first = loader.transform(ids)
    assert loader.transform(ids) is first
    Image.fromarray(255 - arrays[1], "L").save(folder / "a" / "b" / "1.png")
    again = loader.transform(ids)
    assert again is not first
    np.testing.assert_allclose(again[1, ..., 0], (255 - arrays[1]) / np.float32(255), atol=1e-7)


def test_batch_cache_without_inotify_checks_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(watch.CHANGES, "token", lambda dirs: None)
    folder = tmp_path / "imgs"
    arrays = write_folder(folder)
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    ids = list(range(len(arrays)))
    first = loader.transform(ids)
    assert loader.transform(ids) is first
    Image.fromarray(255 - arrays[2], "L").save(folder / "2.png")
    st = os.stat(folder / "2.png")
    os.utime(folder / "2.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = loader.transform(ids)
    assert again is not first
    np.testing.assert_allclose(again[2, ..., 0], (255 - arrays[2]) / np.float32(255), atol=1e-7)
