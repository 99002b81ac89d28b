"""Hostile files and damaged state, second round: each case on real files, and what the user sees.

Model files (``skimgclf.load`` and the commands that take one):

- members the manifest does not name, or more bytes in all than
  ``SKIMGCLF_MAX_MODEL_BYTES``: ``ModelFileError`` before anything is
  decompressed;
- a network config asking for absurd sizes (an output layer of 10,000,000
  units): ``... the network cannot be loaded safely (its output
  'probabilities' has 10,000,000 units, more than 100,000 classes);
  refused``, before Keras builds anything;
- a library function as an activation (``keras.datasets.mnist.load_data``):
  ``... (it names keras.datasets.mnist.function, which is not something
  skimgclf builds)``; the function never runs;
- loader settings in the file (``cache_dir``, ``max_pixels: null``,
  ``n_jobs``) are replaced by the user's defaults; a huge ``target_size`` is
  refused.

Images: an ICO named ``.png`` (Pillow decodes its embedded image inside
``Image.open``) is refused by format before decoding; a named pipe is
refused at once (no hang); a file swapped for a symbolic link after its id
was resolved is refused.

Disk cache: a data file truncated to half, or overwritten with zeros, gives
back the right pixels (recomputed; CRC-32 per row); pixels reach the disk
(``fsync``) before the index commits; a file rewritten with the same size and
its times put back is not served stale (inode-change time in the key).

Command line: SIGTERM unwinds like Ctrl-C (exit 143, no temporary file); a
save leaves nothing in the system's temporary folder; outputs that are
inputs (also through links) or lie in the image folder are refused; a full
disk names the output file; a truncated model file gets the API's message.
"""

import hashlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import count_decodes, make_blobs_images, write_images
from PIL import Image

import skimgclf
from skimgclf import ImageFolderLoader, ModelFileError
from skimgclf.errors import ImageDecodeError


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny trained pipeline on 8x8 PNGs, saved: (path, folder of images, ids)."""
    from sklearn.pipeline import make_pipeline

    from skimgclf import CNNClassifier

    folder = tmp_path_factory.mktemp("hostile")
    X, y = make_blobs_images(32, size=8)
    ids = write_images(folder / "images", X[..., 0])
    pipe = make_pipeline(ImageFolderLoader(folder / "images", target_size=(8, 8), verbose=0),
                         CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=0))
    pipe.fit(pd.DataFrame({"id": ids}), np.where(y == 0, "a", "b"))
    return skimgclf.save(pipe, folder / "model.skimgclf"), folder / "images", [str(i) for i in ids]


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n != "SHA256SUMS"}


def _write(path, members, compression=zipfile.ZIP_DEFLATED):
    """A model file with honest checksums (as an attacker would recompute them)."""
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("SHA256SUMS", sums)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _edit_network(members, edit):
    """``members`` with model_0.keras's config.json changed by ``edit(config)``."""
    with zipfile.ZipFile(io.BytesIO(members["model_0.keras"])) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    edit(config)
    parts["config.json"] = json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return {**members, "model_0.keras": buf.getvalue()}


def _layer(config, kind):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == kind)


def _edit_manifest(members, edit):
    manifest = json.loads(members["skimgclf.json"])
    edit(manifest)
    return {**members, "skimgclf.json": json.dumps(manifest).encode()}


# --------------------------------------------------------------- model files
def test_a_member_the_manifest_does_not_name_is_refused_unread(model, tmp_path, monkeypatch):
    members = _members(model[0])
    zeros = bytes(4 * 1024**2)  # compresses to a few KB: what a bomb looks like
    path = _write(tmp_path / "m.skimgclf", {**members, "model_7.keras": zeros, "model_8.keras": zeros})
    read = []
    real_read = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: (read.append(name), real_read(self, name, *a))[1])
    with pytest.raises(ModelFileError, match=f"{path}: member model_7.keras is not named by the model description; "
                                             "refused"):
        skimgclf.load(path)
    assert "model_7.keras" not in read and "model_8.keras" not in read


def test_members_declaring_too_much_in_all_are_refused(model, tmp_path, monkeypatch):
    from skimgclf.model import persistence

    members = _members(model[0])
    largest = max(len(d) for d in members.values())
    monkeypatch.setattr(persistence, "_MAX_MEMBER_BYTES", largest + 1)  # each one passes, not all together
    with pytest.raises(ModelFileError, match=r"its members declare \d+ bytes in all, more than \d+ "
                                             r"\(SKIMGCLF_MAX_MODEL_BYTES\); refused"):
        skimgclf.load(model[0])


def test_running_out_of_memory_is_a_model_file_error(model, monkeypatch):
    def no_memory(self, name, *args):
        raise MemoryError()

    monkeypatch.setattr(zipfile.ZipFile, "read", no_memory)
    with pytest.raises(ModelFileError, match="too large to load in this process's memory"):
        skimgclf.load(model[0])


def test_a_config_asking_for_a_huge_layer_is_refused_before_keras_builds_it(model, tmp_path, monkeypatch):
    import keras

    def huge(config):
        output = next(layer for layer in config["config"]["layers"] if layer["name"] == "probabilities")
        output["config"]["units"] = 10_000_000  # consistent otherwise: nothing comes after it

    path = _write(tmp_path / "m.skimgclf", _edit_network(_members(model[0]), huge))
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras was asked to build it"))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(its output 'probabilities' "
                                             r"has 10,000,000 units, more than 100,000 classes\); refused"):
        skimgclf.load(path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("activation, named", [
    ({"module": "keras.datasets.mnist", "class_name": "function", "config": "load_data",
      "registered_name": "load_data"}, "keras.datasets.mnist.function"),
    ("exponential", "activation 'exponential' is not one skimgclf builds"),
])
def test_an_activation_skimgclf_does_not_build_is_refused(model, tmp_path, monkeypatch, activation, named):
    import keras

    def foreign(config):
        _layer(config, "Dense")["config"]["activation"] = activation

    called = []
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda *a, **k: called.append(1))
    path = _write(tmp_path / "m.skimgclf", _edit_network(_members(model[0]), foreign))
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(.*" + named.replace(".", r"\.")):
        skimgclf.load(path)
    assert not called


def test_network_input_must_be_the_classifiers_shape(model, tmp_path):
    for side, message in ((20000, r"an input of 8x20000 pixels \(at most 16384 a side\)"),
                          (9000, r"an input of shape \(8, 9000, 1\), but the classifier says \(8, 8, 1\)")):
        def wider(config):
            _layer(config, "InputLayer")["config"]["batch_shape"] = [None, 8, side, 1]

        path = _write(tmp_path / "m.skimgclf", _edit_network(_members(model[0]), wider))
        with pytest.raises(ModelFileError, match=message):
            skimgclf.load(path)


def _nest(config):
    """The whole network again, as a layer of itself (Keras builds a nested model's layers)."""
    inner = json.loads(json.dumps(config))
    inner["name"] = inner["config"]["name"] = "inner"
    dense = _layer(config, "Dense")
    inner["inbound_nodes"] = dense["inbound_nodes"]
    config["config"]["layers"].insert(config["config"]["layers"].index(dense), inner)


def _rename(config):
    _layer(config, "Flatten")["name"] = "elsewhere"


def _rebuild(config):
    _layer(config, "Dense")["build_config"] = {"input_shape": [None, 1_000_000_000]}


def _upper_padding(config):
    _layer(config, "Conv2D")["config"]["padding"] = "SAME"


def _lora(config):
    _layer(config, "Dense")["config"]["lora_rank"] = 100_000


@pytest.mark.parametrize("edit, message", [
    (_nest, "layer 'inner' is a keras.src.models.functional.Functional, not a layer skimgclf builds"),
    (_rename, "layer 'elsewhere' is named twice or two ways"),
    (_rebuild, "is built for {'input_shape': [None, 1000000000]}"),
    (_upper_padding, "has padding 'SAME'"),
    (_lora, "sets lora_rank=100000"),
])
def test_configs_that_would_make_keras_build_more_than_counted_are_refused(model, tmp_path, monkeypatch, edit,
                                                                           message):
    import keras

    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras was asked to build it"))
    path = _write(tmp_path / "m.skimgclf", _edit_network(_members(model[0]), edit))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert "the network cannot be loaded safely" in str(info.value) and message in str(info.value), info.value


def test_what_builds_the_networks_is_what_loading_accepts():
    """The allow-list of layers is the builder's: every option combination builds only listed layers."""
    from skimgclf.model.netcheck import LAYERS, _check_objects
    from skimgclf.model.network import build_cnn

    seen = set()
    for params in ({}, {"pooling": "avg", "global_pooling": "max", "conv_dropout": 0.1, "random_rotation": 0.1,
                        "random_zoom": 0.1, "random_flip": "horizontal"}, {"global_pooling": "avg", "hidden_layers": 0},
                   {"batch_norm": False, "pooling": None, "activation": "gelu"}):
        for shape in ((8, 8, 1), (32, 32, 3)):
            net = build_cnn(shape, 3, **params)
            seen |= {type(layer).__name__ for layer in net.layers}
            _check_objects(json.loads(net.to_json()))
    assert seen <= LAYERS, seen - LAYERS


def test_loader_settings_in_a_model_file_are_not_trusted(model, tmp_path):
    evil_cache = tmp_path / "planted-cache"

    def plant(manifest):
        params = manifest["estimator"]["steps"][0][1]["params"]
        params.update(cache_dir=str(evil_cache), max_pixels=None, n_jobs=64)

    path = _write(tmp_path / "m.skimgclf", _edit_manifest(_members(model[0]), plant))
    pipe = skimgclf.load(path)
    assert pipe[0].get_params()["cache_dir"] is None
    assert pipe[0].get_params()["max_pixels"] == 64_000_000
    assert pipe[0].get_params()["n_jobs"] is None
    pipe.predict(model[2][:4])
    assert not evil_cache.exists()

    def huge(manifest):
        manifest["estimator"]["steps"][0][1]["params"]["target_size"] = {"__tuple__": [16000, 16000]}

    path = _write(tmp_path / "huge.skimgclf", _edit_manifest(_members(model[0]), huge))
    with pytest.raises(ModelFileError, match=r"target_size \(16000, 16000\) has more pixels than a model file may "
                                             r"ask for \(64,000,000\); refused"):
        skimgclf.load(path)
    with pytest.raises(ModelFileError, match=r"cannot save estimator: the loader's target_size \(9000, 9000\) has "
                                             r"more pixels than a model file may ask for"):
        skimgclf.save(ImageFolderLoader(tmp_path, target_size=(9000, 9000)), tmp_path / "big.skimgclf")


@pytest.mark.parametrize("where, value, message", [
    ("classes", {"dtype": "|O", "values": [1, 2]}, "unexpected dtype '|O' for class labels"),
    ("params", {"units": {"__set__": [1]}}, "unexpected object in parameters"),
])
def test_malformed_values_name_the_file(model, tmp_path, where, value, message):
    def edit(manifest):
        node = manifest["estimator"]["steps"][1][1]
        if where == "classes":
            node["fitted"]["classes"] = value
        else:
            node["params"].update(value)

    path = _write(tmp_path / "m.skimgclf", _edit_manifest(_members(model[0]), edit))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


# -------------------------------------------------------------------- images
def _ico_with_a_big_png(side):
    """An ICO whose directory says 16x16 but whose embedded PNG is side x side (mostly zeros)."""
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    png = buf.getvalue()
    header = b"\x00\x00\x01\x00\x01\x00"
    entry = bytes([16, 16, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little") \
        + len(png).to_bytes(4, "little") + (6 + 16).to_bytes(4, "little")
    return header + entry + png


def test_an_icon_named_png_is_refused_before_its_image_is_decoded(tmp_path, monkeypatch):
    (tmp_path / "icon.png").write_bytes(_ico_with_a_big_png(3000))
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (decoded.append(self.size), real_load(self))[1])
    loader = ImageFolderLoader(tmp_path, verbose=0)
    for call in (lambda: loader.fit(["icon"]),
                 lambda: loader.set_params(color_mode="grayscale", target_size=None).transform(["icon"])):
        with pytest.raises(ImageDecodeError, match=r"icon\.png: an ICO icon, not an image of an accepted format "
                                                   r"\(PNG, JPEG, .*\); refused"):
            call()
    assert decoded == []


def _in_a_child(code, timeout=60):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_named_like_an_image_is_refused_at_once(tmp_path):
    write_images(tmp_path, [np.zeros((4, 4), np.uint8)], ids=["ok"])
    os.mkfifo(tmp_path / "pipe.png")
    code = (f"from skimgclf import ImageFolderLoader\n"
            f"loader = ImageFolderLoader({str(tmp_path)!r}, color_mode='grayscale', target_size=None, verbose=0)\n"
            "for call in (lambda: loader.transform(['ok', 'pipe']), lambda: ImageFolderLoader("
            f"{str(tmp_path)!r}, verbose=0).fit(['pipe'])):\n"
            "    try:\n        call()\n    except ValueError as exc:\n        print(exc)\n")
    result = _in_a_child(code)  # a hang fails the test through the timeout
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stderr
    for line in lines:
        assert "pipe.png: a named pipe, not an image file; only regular files are read" in line


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


# -------------------------------------------------------------- command line
def _cli(*args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "skimgclf", *(os.fspath(a) for a in args)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def _error_line(result):
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skimgclf: error: "), result.stderr
    return lines[0][len("skimgclf: error: "):]


@pytest.fixture
def scored(model, tmp_path):
    """A CSV of ids beside a copy of the model: (csv, model file, image folder)."""
    csv = tmp_path / "test.csv"
    pd.DataFrame({"id": model[2]}).to_csv(csv, index=False)
    copy = tmp_path / "model.skimgclf"
    copy.write_bytes(Path(model[0]).read_bytes())
    return csv, copy, model[1]


def test_outputs_that_are_inputs_are_refused(scored, tmp_path):
    csv, model_file, images = scored
    kept = {p: p.read_bytes() for p in (csv, model_file)}
    link = tmp_path / "hard-link-to-model"
    os.link(model_file, link)
    for out, what in ((model_file, "model file"), (link, "model file"), (csv, "input CSV")):
        message = _error_line(_cli("predict", model_file, csv, "--images", images, "--out", out))
        assert message.startswith(f"{out}: --out is the {what}") and "choose another file" in message
    image = images / "0.png"
    before = image.read_bytes()
    message = _error_line(_cli("predict", model_file, csv, "--images", images, "--out", image))
    assert message.startswith(f"{image}: --out is inside the image folder {images}")
    message = _error_line(_cli("train", csv, "--images", images, "--model", csv))
    assert message.startswith(f"{csv}: --model is the training CSV")
    assert {p: p.read_bytes() for p in kept} == kept and image.read_bytes() == before


def test_sigterm_during_predict_leaves_nothing(scored, tmp_path):
    csv, model_file, images = scored
    big = tmp_path / "big.csv"
    pd.DataFrame({"id": np.tile(np.asarray(pd.read_csv(csv, dtype=str)["id"]), 2000)}).to_csv(big, index=False)
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "skimgclf", "predict", model_file, big, "--images", images,
                             "--out", out, "--chunk-size", "64", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(out.parent.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)  # until the temporary output exists: writing has begun
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM); no output file left half-written" in err
    assert list(out.parent.iterdir()) == []


def test_save_uses_no_system_temporary_folder_and_stale_partials_are_cleaned(model, tmp_path, monkeypatch):
    import tempfile

    pipe = skimgclf.load(model[0])
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    seen = []
    real_save = pipe[-1].model_.save
    monkeypatch.setattr(type(pipe[-1].model_), "save",
                        lambda self, file, *a, **k: (seen.append(sorted(os.listdir(system_tmp))),
                                                     seen.append(sorted(os.listdir(os.path.dirname(
                                                         os.path.dirname(file))))), real_save(file, *a, **k))[2])
    target = tmp_path / "out" / "m.skimgclf"
    target.parent.mkdir()
    stale = target.parent / ".m.skimgclf.999999-abc.partial"  # a dead process's folder
    stale.mkdir()
    (stale / "model_0.keras").write_bytes(b"left over")
    fresh = target.parent / ".m.skimgclf.999998-abc.partial"  # as dead, but too recent to be sure of
    fresh.write_bytes(b"")
    os.utime(stale, (time.time() - 3600,) * 2)
    skimgclf.save(pipe, target)
    assert seen[0] == []  # nothing of skimgclf's in the system's temporary folder while saving
    assert any(name.startswith(".m.skimgclf.") and name.endswith(".partial") for name in seen[1])
    assert sorted(p.name for p in target.parent.iterdir()) == [fresh.name, "m.skimgclf"]


def test_a_full_disk_names_the_output_file(scored, tmp_path):
    csv, model_file, images = scored
    big = tmp_path / "big.csv"
    pd.DataFrame({"id": np.tile(np.asarray(pd.read_csv(csv, dtype=str)["id"]), 500)}).to_csv(big, index=False)
    out = tmp_path / "pred.csv"

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    message = _error_line(_cli("predict", model_file, big, "--images", images, "--out", out,
                               preexec_fn=small_disk))
    assert message.startswith(f"{out}: cannot write it (File too large); nothing was written"), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "model.skimgclf", "test.csv"]


def test_a_truncated_model_file_gets_the_same_message_from_the_cli_and_the_api(scored, tmp_path):
    csv, model_file, images = scored
    cut = tmp_path / "cut.skimgclf"
    cut.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(cut)
    assert _error_line(_cli("predict", cut, csv, "--images", images, "--out", tmp_path / "p.csv")) == str(info.value)


def test_models_and_predictions_get_the_same_permissions(scored, tmp_path):
    csv, model_file, images = scored
    out = tmp_path / "p.csv"
    result = _cli("predict", model_file, csv, "--images", images, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    saved = skimgclf.save(skimgclf.load(model_file), tmp_path / "again.skimgclf")
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (Path(saved).stat().st_mode & 0o777) == 0o666 & ~umask


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_csv_with_only_a_header_is_named(scored, tmp_path, command):
    _, model_file, images = scored
    csv = tmp_path / "header-only.csv"
    csv.write_text("id,label\n")
    extra = ["--out", tmp_path / "p.csv"] if command == "predict" else []
    assert _error_line(_cli(command, model_file, csv, "--images", images, *extra)) == \
        f"{csv}: the table has a header but no rows"
