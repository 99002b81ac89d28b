"""Ids to files (``skimgclf.io.paths``): nothing outside the image folder is read, links and traversal refused.

Paths (``ImageFolderLoader``; every id is resolved before any file is opened)
- ``../secret``, ``a/../../b``, ``..\\x`` (Windows style, refused on every OS),
  ``/etc/passwd``, ``C:/x``: ``ValueError: row 0: id '../secret' points
  outside the image folder /.../images; refused``.
- an id with a NUL byte: ``ValueError: row 0: id 'a\\x00b' contains a NUL
  byte; refused``.
- a symbolic link inside the folder that points outside it: ``ValueError:
  row 0: id 'link' resolves to /.../secret.png, outside the image folder
  /.../images (a symbolic link?); refused``; the same for a link to a folder.
  A spy on ``open``/``PIL.Image.open`` shows the target is never opened,
  although it is a valid PNG.
- links that stay inside the folder are followed.
- the same holds for large tables (ids resolved from one folder listing) and
  after a cached load when a file is replaced by a link that leaves the
  folder: ``ValueError: row 5: id '5' resolves to /.../secret.png, outside
  the image folder ...``.
"""

import builtins
import os
import re

import numpy as np
import pytest
from conftest import gray_loader, make_blobs_images, write_images
from PIL import Image

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


# ------------------------------------------------------------------- helpers
def _png(path, arr):
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    """``tmp_path/images`` with two valid PNGs, and a valid ``tmp_path/secret.png`` outside it."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        _png(images / f"{i}.png", np.full((8, 8), 40 * i))
    _png(tmp_path / "secret.png", np.full((8, 8), 200))
    (images / "sub").mkdir()
    _png(images / "sub" / "ok.png", np.full((8, 8), 90))
    return images


def _loader(images, **kw):
    kw.setdefault("target_size", (8, 8))
    return ImageFolderLoader(images, verbose=0, cache=False, **kw)


class _OpenSpy:
    """Records every path given to ``builtins.open`` and ``PIL.Image.open``."""

    def __init__(self, monkeypatch):
        self.paths = []
        real_open, real_pil_open = builtins.open, Image.open

        def spy_open(file, *a, **k):
            self.paths.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else file)
            return real_open(file, *a, **k)

        def spy_pil_open(fp, *a, **k):
            self.paths.append(os.fspath(fp) if isinstance(fp, (str, os.PathLike)) else fp)
            return real_pil_open(fp, *a, **k)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(Image, "open", spy_pil_open)

    def opened(self, name):
        return [p for p in self.paths if isinstance(p, str) and os.path.basename(p) == name]


# --------------------------------------------------------------------- paths
@pytest.mark.parametrize("bad_id", ["../secret", "a/../../secret", "..\\secret", "sub/../../secret",
                                    "..", "./../secret"])
def test_parent_traversal_ids_are_refused_and_never_read(folder, monkeypatch, bad_id):
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match=r"row 1: id .* points outside the image folder .*; refused"):
        _loader(folder).fit_transform(["0", bad_id])
    assert spy.opened("secret.png") == []
    assert spy.opened("0.png") == []  # every id is checked before any image is read


@pytest.mark.parametrize("bad_id", ["/etc/passwd", "C:/Windows/win.ini", "c:secret", "\\\\server\\share\\x"])
def test_absolute_ids_are_refused(folder, bad_id):
    with pytest.raises(ValueError, match=r"row 0: id .* points outside the image folder"):
        _loader(folder).fit_transform([bad_id])


def test_absolute_id_to_a_real_image_is_refused(folder, monkeypatch):
    """Refused even when the absolute path names a decodable image."""
    target = str(folder.parent / "secret.png")
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match="points outside the image folder"):
        _loader(folder).fit_transform([target])
    assert spy.opened("secret.png") == []


def test_nul_byte_in_id_is_refused(folder):
    with pytest.raises(ValueError, match=r"row 0: id 'a\\x00b' contains a NUL byte; refused"):
        _loader(folder).fit_transform(["a\x00b"])


def test_symlink_to_a_file_outside_is_refused_and_never_read(folder, monkeypatch):
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError) as info:
        _loader(folder).fit_transform(["0", "link"])
    msg = str(info.value)
    assert "row 1: id 'link' resolves to" in msg
    assert "secret.png, outside the image folder" in msg and "(a symbolic link?); refused" in msg
    assert spy.opened("secret.png") == [] and spy.opened("link.png") == []


def test_symlinked_folder_pointing_outside_is_refused(folder, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _png(outside / "x.png", np.zeros((8, 8)))
    os.symlink(outside, folder / "door")
    with pytest.raises(ValueError, match=r"row 0: id 'door/x' resolves to .*outside the image folder"):
        _loader(folder).fit_transform(["door/x"])


def test_symlinks_that_stay_inside_are_followed(folder):
    os.symlink(folder / "1.png", folder / "alias.png")
    X = _loader(folder, scale=None).fit_transform(["alias", "sub/ok"])
    assert X[0, 0, 0, 0] == 40 and X[1, 0, 0, 0] == 90


def test_image_dir_itself_may_be_a_symlink(folder, tmp_path):
    os.symlink(folder, tmp_path / "images_link")
    X = _loader(tmp_path / "images_link", scale=None).fit_transform(["1"])
    assert X[0, 0, 0, 0] == 40


# ------------------------------------------------ the loader's fast paths too
def test_symlink_refused_among_many_ids(folder, monkeypatch):
    """Large tables resolve ids from one folder listing; links still go through the checks."""
    write_images(folder, [np.full((8, 8), i) for i in range(70)])
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    spy = _OpenSpy(monkeypatch)
    ids = [str(i) for i in range(70)]
    with pytest.raises(ValueError, match=r"row 70: id 'link' resolves to .*secret\.png, outside the image folder"):
        _loader(folder).fit_transform(ids + ["link"])
    assert spy.opened("secret.png") == [] and spy.opened("link.png") == []


def test_file_swapped_for_an_outside_link_after_a_cached_load(folder):
    """A table loaded once (and cached) is checked again after a file becomes a link outside."""
    write_images(folder, [np.full((8, 8), i) for i in range(70)])
    ids = [str(i) for i in range(70)]
    loader = ImageFolderLoader(folder, target_size=(8, 8), color_mode="grayscale", verbose=0, cache=True)
    assert loader.fit_transform(ids).shape == (70, 8, 8, 1)
    os.unlink(folder / "5.png")
    os.symlink(folder.parent / "secret.png", folder / "5.png")
    with pytest.raises(ValueError, match=r"row 5: id '5' resolves to .*secret\.png, outside the image folder"):
        loader.fit_transform(ids)


# --------------------------------------------------------------- missing images
@pytest.mark.parametrize("cache", [True, False])
def test_missing_image_names_row_id_and_path(images, cache):
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 1: no image for id 'nope': no file nope or nope.<image extension> in {images}")):
        gray_loader(images, cache=cache).fit_transform(["0", "nope"])
    with pytest.raises(ImageDecodeError, match=re.escape(  # a suffix given: the one file it names
            f"row 1: no image for id 'nope': {images / 'nope.png'} does not exist")):
        gray_loader(images, cache=cache, suffix=".png").fit_transform(["0", "nope"])
