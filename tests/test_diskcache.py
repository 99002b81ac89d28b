"""Past memory: the loader's on-disk image cache (``skimgclf.io.diskcache``), also when damaged, and memory maps."""

import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import count_decodes, make_blobs_images, write_images
from PIL import Image

import skimgclf
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


# ---------------------------------------------------------------- disk cache
def _photos(folder, n, seed=0, suffix=".jpg"):
    rng = np.random.default_rng(seed)
    arrays = rng.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8)
    return [str(i) for i in write_images(folder, arrays, ids=[f"p{seed}_{i}" for i in range(n)], suffix=suffix)]


def _load(folder, ids, cache_dir=None):
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, color_mode="rgb", target_size=(12, 12), cache_dir=cache_dir, verbose=0)
    return np.array(loader.transform(ids))


def test_a_truncated_cache_data_file_never_gives_zeros(tmp_path):
    folder, cache = tmp_path / "images", tmp_path / "cache"
    first, second = _photos(folder, 300, seed=1), _photos(folder, 300, seed=2)
    truth = _load(folder, first + second)
    _load(folder, first, cache)
    (data,) = cache.glob("*/data-*.u8")
    os.truncate(data, data.stat().st_size // 2)
    with pytest.warns(RuntimeWarning, match=r"holds 150 of the 300 images its index lists \(truncated\?\)"):
        np.testing.assert_array_equal(_load(folder, second, cache), truth[300:])
    np.testing.assert_array_equal(_load(folder, first + second, cache), truth)
    np.testing.assert_array_equal(_load(folder, first + second, cache), truth)  # now all from the cache


def test_damaged_cache_bytes_are_decoded_again(tmp_path, monkeypatch):
    folder, cache = tmp_path / "images", tmp_path / "cache"
    ids = _photos(folder, 50)
    truth = _load(folder, ids, cache)
    (data,) = cache.glob("*/data-*.u8")
    with open(data, "r+b") as fh:
        fh.seek(10 * 12 * 12 * 3)
        fh.write(bytes(5 * 12 * 12 * 3))  # rows 10-14 zeroed, sizes unchanged
    decoded = count_decodes(monkeypatch)
    np.testing.assert_array_equal(_load(folder, ids, cache), truth)
    assert len(decoded) == 5  # the 45 intact rows are read from the cache, the 5 damaged ones decoded
    decoded.clear()
    np.testing.assert_array_equal(_load(folder, ids, cache), truth)
    assert decoded == []  # and now all 50 come from the cache


def test_pixels_are_on_disk_before_the_index_says_so(tmp_path, monkeypatch):
    from skimgclf.io import diskcache

    events = []
    real_fsync = os.fsync
    monkeypatch.setattr(diskcache.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    folder, cache = tmp_path / "images", tmp_path / "cache"
    ids = _photos(folder, 20)
    store = diskcache.DiskImageCache(cache, "rgb", (12, 12), None)

    class Recording:
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            events.append(sql.split()[0])
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    store._db = Recording(store._db)
    for i in ids:
        path = os.path.realpath(folder / f"{i}.jpg")
        store.add(path, skimgclf.io.memcache.stat_signature(os.stat(path)), np.zeros((12, 12, 3), np.uint8))
    store.flush()
    assert events.index("fsync") < events.index("COMMIT"), events


@pytest.mark.parametrize("cache_dir", [False, True])
def test_a_file_rewritten_with_its_size_and_times_put_back_is_not_served_stale(tmp_path, cache_dir):
    folder = tmp_path / "images"
    ids = _photos(folder, 3, suffix=".bmp")  # BMPs are cached image by image (not decoded on the fast path)
    cache = tmp_path / "cache" if cache_dir else None
    loader = ImageFolderLoader(folder, color_mode="rgb", target_size=(12, 12), cache_dir=cache, verbose=0)
    skimgclf.clear_cache()
    before = np.array(loader.transform(ids))
    path = folder / f"{ids[1]}.bmp"
    st = path.stat()
    other = tmp_path / "other.bmp"  # another image of the same size: a BMP's size is its dimensions'
    Image.fromarray(np.random.default_rng(100).integers(0, 256, (12, 12, 3), np.uint8)).save(other)
    assert other.stat().st_size == st.st_size
    path.write_bytes(other.read_bytes())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    expected = np.asarray(Image.open(other).convert("RGB"), np.float32) / 255
    after = np.array(loader.transform(ids[::-1]))[::-1]  # another batch: image by image from the caches
    np.testing.assert_allclose(after[1], expected, atol=1e-6)
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
