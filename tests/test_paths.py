"""Ids to files (``skimgclf.io.paths``): nothing outside the image folder is read, links and traversal refused."""

import os

import numpy as np
import pytest
from conftest import make_blobs_images, write_images

from skimgclf import ImageFolderLoader
from skimgclf.errors import ImageDecodeError
from skimgclf.io import paths


def test_chunks_of_a_large_folder_are_resolved_without_listing_it_again(tmp_path, monkeypatch):
    X, _ = make_blobs_images(8)
    folder = tmp_path / "many"
    write_images(folder, X[..., 0], ids=range(8))
    for i in range(8, 1200):  # hard links: a large folder quickly
        os.link(folder / f"{i % 8}.png", folder / f"{i}.png")
    os.symlink(folder / "3.png", folder / "inside.png")
    outside = tmp_path / "secret.png"
    outside.write_bytes((folder / "0.png").read_bytes())
    os.symlink(outside, folder / "outside.png")
    (folder / "sub").mkdir()
    os.link(folder / "5.png", folder / "sub" / "x.png")
    ids = [str(i) for i in range(1200)]
    loader = ImageFolderLoader(folder, target_size=(8, 8), color_mode="grayscale", cache=False, verbose=0)
    whole = loader.transform(ids)  # lists the folder once
    listings = []
    original = os.scandir
    monkeypatch.setattr(paths.os, "scandir", lambda *a: listings.append(a) or original(*a))
    chunk = ids[100:170] + ["inside", "sub/x", "7.png"]
    got = loader.transform(chunk)
    # 73 ids of a 1,204-entry folder: one lstat each, and no listing of it (the
    # extensions it holds are remembered); only the small sub-folder is listed.
    assert [os.fspath(a[0]) for a in listings] == [os.path.join(str(folder), "sub")]
    listings.clear()
    np.testing.assert_array_equal(got[:70], whole[100:170])
    np.testing.assert_array_equal(got[70:], whole[[3, 5, 7]])
    with pytest.raises(ValueError, match=r"row 70: id 'outside' resolves to .*secret\.png, outside the image "
                                         r"folder"):
        loader.transform(ids[:70] + ["outside"])
    with pytest.raises(ValueError, match=r"row 64: no image for id 'gone'"):
        loader.transform(ids[:64] + ["gone"])
    assert len(listings) <= 1  # at most once, for the hint of the error about 'gone'
    listings.clear()
    loader.transform(chunk)
    assert listings == []  # the sub-folder's extensions are remembered too


def test_a_file_swapped_for_a_symlink_after_resolution_is_refused(tmp_path, monkeypatch):
    from skimgclf.io import loader as _loader

    outside = tmp_path / "secret"
    write_images(outside, [np.full((4, 4), 9, np.uint8)], ids=["s"])
    folder = tmp_path / "images"
    write_images(folder, [np.zeros((4, 4), np.uint8)], ids=["a"])
    real_resolve = _loader.resolve_paths

    def resolve_then_swap(root, ids, suffix):
        paths = real_resolve(root, ids, suffix)
        os.unlink(paths[0])
        os.symlink(outside / "s.png", paths[0])  # between the check and the open
        return paths

    monkeypatch.setattr(_loader, "resolve_paths", resolve_then_swap)
    with pytest.raises(ImageDecodeError, match=r"a\.png: is now a symbolic link \(it was not when its id was "
                                               r"resolved\); refused"):
        ImageFolderLoader(folder, color_mode="grayscale", target_size=None, cache=False, verbose=0).transform(["a"])
