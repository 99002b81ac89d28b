"""Past memory: the loader's on-disk image cache and bounded-memory scoring (no Dask needed)."""

import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import make_blobs_images, write_images
from PIL import Image

from skimgclf import ImageFolderLoader
from skimgclf.io import diskcache as _diskcache
from skimgclf.io import loader as _loader


@pytest.fixture
def folder(tmp_path):
    """30 plain 8x8 PNGs and 10 12x12 JPEGs (resized: the slow path)."""
    X, _ = make_blobs_images(40, size=8)
    write_images(tmp_path / "img", X[:30, ..., 0])
    big = np.repeat(np.repeat(X[30:, ..., 0], 3, axis=1), 3, axis=2)[:, :12, :12]
    write_images(tmp_path / "img", big, ids=range(30, 40), suffix=".jpg")
    ids = [str(i) for i in range(30)] + [f"{i}.jpg" for i in range(30, 40)]
    return tmp_path / "img", ids


class _Decodes:
    """Counts the decodes of both decoders of the loader."""

    def __init__(self, monkeypatch):
        self.n = 0
        self.lock = threading.Lock()
        for name in ("_decode_fast", "decode_image"):
            original = getattr(_loader, name)
            monkeypatch.setattr(_loader, name, self._counting(original))

    def _counting(self, original):
        def counted(*args, **kwargs):
            with self.lock:
                self.n += 1
            return original(*args, **kwargs)

        return counted


def test_disk_cache_gives_the_same_pixels_and_decodes_once(folder, tmp_path, monkeypatch):
    image_dir, ids = folder
    expected = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False).transform(ids)
    decodes = _Decodes(monkeypatch)
    cache = tmp_path / "cache"
    first = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=cache).transform(ids)
    assert decodes.n >= len(ids)
    np.testing.assert_array_equal(first, expected)
    decodes.n = 0
    again = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=str(cache)).transform(ids[::-1])
    assert decodes.n == 0  # every image came from the memory-mapped file
    np.testing.assert_array_equal(again, expected[::-1])
    # Another decoding setting is another store; the pixels of each are right.
    rgb = ImageFolderLoader(image_dir, target_size=(6, 6), color_mode="rgb", cache=False, cache_dir=cache)
    np.testing.assert_array_equal(
        rgb.transform(ids), ImageFolderLoader(image_dir, target_size=(6, 6), color_mode="rgb",
                                              cache=False).transform(ids))
    stores = sorted(p.name for p in cache.iterdir() if p.name.startswith("images-"))
    assert len(stores) == 2
    assert {p.name for p in (cache / stores[0]).iterdir()} >= {"index.sqlite", "setting.json"}


def test_disk_cache_notices_a_changed_file(folder, tmp_path):
    image_dir, ids = folder
    loader = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=tmp_path / "cache")
    before = loader.transform(ids[:3])
    path = image_dir / "1.png"
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(path)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    after = loader.transform(ids[:3])
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert np.allclose(after[1], 77 / 255)


def test_disk_cache_is_shared_with_another_process(folder, tmp_path):
    image_dir, ids = folder
    cache = tmp_path / "cache"
    expected = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=cache).transform(ids)
    np.save(tmp_path / "expected.npy", expected)
    code = f"""
import numpy as np
from skimgclf import ImageFolderLoader
from skimgclf.io import loader as _loader
calls = []
for name in ("_decode_fast", "decode_image"):
    setattr(_loader, name, lambda *a, _f=getattr(_loader, name), **k: calls.append(1) or _f(*a, **k))
X = ImageFolderLoader({str(image_dir)!r}, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir={str(cache)!r}).transform({ids!r})
assert not calls, len(calls)
np.testing.assert_array_equal(X, np.load({str(tmp_path / "expected.npy")!r}))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_disk_cache_concurrent_loaders_store_every_image_once_right(folder, tmp_path, monkeypatch):
    image_dir, ids = folder
    monkeypatch.setattr(_diskcache, "_FLUSH_EVERY", 3)  # many small transactions
    cache = tmp_path / "cache"
    parts = [ids[i::4] for i in range(4)] + [ids]

    def load(part):
        return ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=cache,
                                 n_jobs=2).transform(part)

    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(5) as pool:
        warnings.simplefilter("always")
        results = list(pool.map(load, parts))
    # Every loader could use the cache (none fell back with a warning, as
    # when two threads once raced for the same temporary file name).
    assert [str(w.message) for w in caught if "disk cache" in str(w.message)] == []
    expected = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False).transform(ids)
    for part, got in zip(parts, results):
        np.testing.assert_array_equal(got, expected[[ids.index(i) for i in part]])
    decodes = _Decodes(monkeypatch)
    np.testing.assert_array_equal(load(ids), expected)
    assert decodes.n == 0


def test_large_batches_are_memory_maps_of_deleted_files(folder, tmp_path, monkeypatch):
    image_dir, ids = folder
    monkeypatch.setattr(_diskcache, "OUTPUT_MEMMAP_BYTES", 1024)
    cache = tmp_path / "cache"
    X = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache_dir=cache).transform(ids)
    assert isinstance(X, np.memmap) and not X.flags.writeable
    np.testing.assert_array_equal(X, ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False).transform(ids))
    assert os.listdir(cache / "tmp") == []  # the file lives only as long as the array
    small = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache_dir=cache).transform(ids[:2])
    assert type(small) is np.ndarray


def test_disk_cache_keeps_the_loader_errors_and_validates_the_parameter(folder, tmp_path):
    image_dir, ids = folder
    loader = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"^row 1: no image for id 'gone': no file gone or gone\.<image extension> in "):
        loader.transform(["0", "gone"])
    with pytest.raises(ValueError, match=r"The 'cache_dir' parameter of ImageFolderLoader must be"):
        ImageFolderLoader(image_dir, cache_dir=3).fit()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="disk cache .* cannot be used"):
        X = ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=blocker).transform(ids)
    assert X.shape == (40, 8, 8, 1)


def test_pipeline_trains_on_memory_mapped_images_batch_by_batch(folder, tmp_path, monkeypatch):
    from sklearn.pipeline import make_pipeline

    from skimgclf import CNNClassifier
    from skimgclf.model import training

    image_dir, ids = folder
    monkeypatch.setattr(_diskcache, "OUTPUT_MEMMAP_BYTES", 1024)
    batches = []
    original = training.MappedBatches.__getitem__
    monkeypatch.setattr(training.MappedBatches, "__getitem__",
                        lambda self, i: batches.append(i) or original(self, i))
    y = np.arange(40) % 2  # make_blobs_images: class k has its bright square in quadrant k
    pipe = make_pipeline(
        ImageFolderLoader(image_dir, target_size=(8, 8), color_mode="grayscale", cache=False, cache_dir=tmp_path / "cache"),
        CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=6, batch_size=8, learning_rate=0.01,
                      validation_split=0.25, random_state=0, random_shift=0.0, random_rotation=0.0,
                      random_zoom=0.0))
    pipe.fit(ids, y)
    # Keras read the training and validation batches from the memory map.
    assert len(batches) >= 6 * (4 + 2)
    history = pipe[-1].history_
    assert len(history["val_loss"]) >= 1 and len(history["loss"]) == len(history["val_loss"])
    assert np.mean(pipe.predict(ids) == y) >= 0.75
