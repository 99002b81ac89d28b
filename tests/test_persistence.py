"""Model files: ``skimgclf.save``/``skimgclf.load`` round trip, damaged files, killed runs.

Cases (real files, real subprocesses; ``...`` stands for the temporary folder):

- Round trip: a fitted Pipeline(ImageFolderLoader, CNNClassifier) saved in
  this process and loaded in a fresh Python process predicts the very same
  probabilities and labels; parameters, classes, image shape and history
  survive; the loaded pipeline can be pointed at another folder.
- A loader or an unfitted classifier alone round-trips too (no TensorFlow
  needed for the loader).
- Truncated file (any length) -> ``ModelFileError: .../model.skimgclf: not a
  skimgclf model file, or truncated or corrupt (File is not a zip file)``.
- One byte flipped inside a member's stored bytes -> ``ModelFileError:
  .../model.skimgclf: not a skimgclf model file, or truncated or corrupt (Bad
  CRC-32 for file 'model_0.keras')`` or ``... corrupt model file (error:
  Error -3 while decompressing data ...)``.
- A member replaced (zip rebuilt, old checksum list kept) -> ``ModelFileError:
  .../model.skimgclf: checksum mismatch in skimgclf.json (file altered or
  corrupt); refused``; a member added or removed -> ``... the file's members
  do not match its checksum list; refused`` / ``unexpected member
  'evil.py'; refused``.
- Members declaring more than ``SKIMGCLF_MAX_MODEL_BYTES`` (4 GiB by
  default) -> ``ModelFileError: ... member model_0.keras declares N bytes,
  more than M (SKIMGCLF_MAX_MODEL_BYTES); refused`` (zip bombs).
- Not a zip (text) -> ``ModelFileError: ...: not a skimgclf model file, or
  truncated or corrupt (File is not a zip file)``; a bare Keras ``.keras``
  file -> ``...: not a skimgclf model file (a zip archive without
  skimgclf.json and SHA256SUMS; a bare Keras .keras file is not a skimgclf
  model)``; a missing file -> ``FileNotFoundError``. (Pickle/joblib files and
  files that name a Lambda layer or a foreign class: below, from docs/security.rst.)
- Killed save: a process SIGKILLed while ``skimgclf.save`` writes leaves no
  file at the target path, only a hidden ``.model.skimgclf.<pid>-<random>.partial``,
  which the next save to that path removes.
- Killed ``skimgclf predict`` (a few thousand images, killed after it began
  writing): no predictions file appears, only its hidden temporary file.
"""

import hashlib
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, assert_one_clean_line, make_blobs_images, model_members, write_images, write_model
from sklearn.pipeline import make_pipeline

import skimgclf
from skimgclf import ImageFolderLoader, ModelFileError
from skimgclf.model import persistence

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")


def _cnn(**kw):
    from skimgclf import CNNClassifier

    params = {"conv_blocks": 1, "filters": 8, "units": 16, "epochs": 1, "random_state": 0,
              "validation_split": 0.0}
    params.update(kw)
    return CNNClassifier(**params)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fitted pipeline (the only training of this file), saved once."""
    folder = tmp_path_factory.mktemp("persist")
    X, y = make_blobs_images(24, size=8)
    ids = write_images(folder / "images", X[..., 0])
    pipe = make_pipeline(ImageFolderLoader(folder / "images", target_size=(8, 8), verbose=0), _cnn())
    pipe.fit(pd.DataFrame({"id": ids}), np.where(y == 0, "left", "right"))
    path = skimgclf.save(pipe, folder / "model.skimgclf")
    return pipe, path, folder, ids


# ------------------------------------------------------------------- round trip
CHILD = """
    import json, os, sys, numpy as np, skimgclf
    from skimgclf import CNNClassifier
    path, out, folder, target = sys.argv[1:]
    # 1. Round trip: load what the parent saved, predict, report.
    model = skimgclf.load(path)
    ids = [str(i) for i in range(24)]
    clf = model[-1]
    proba, labels = model.predict_proba(ids), model.predict(ids).astype(str)
    model.set_params(imagefolderloader__image_dir=folder)  # a copy of the images elsewhere
    assert (model.predict(ids).astype(str) == labels).all()
    params = {k: repr(v) for k, v in model.get_params().items()
              if k.startswith(("imagefolderloader__", "cnnclassifier__"))}
    np.savez(out + ".tmp.npz", proba=proba, labels=labels, classes=clf.classes_.astype(str),
             shape=np.array(clf.image_shape_), loss=np.array(clf.history_["loss"]),
             params=json.dumps(params))
    os.replace(out + ".tmp.npz", out)
    # 2. Save a network of ~2M weights (8 MB) in a loop until killed, so
    #    that the parent can kill a save in the middle of writing the file.
    rng = np.random.default_rng(0)
    big = CNNClassifier(conv_blocks=1, filters=8, units=4096, epochs=1, batch_norm=False,
                        validation_split=0.0, random_state=0)
    big.fit(rng.random((4, 16, 16, 1), dtype=np.float32), [0, 1, 0, 1])
    while True:
        skimgclf.save(big, target)
"""


def _start_cli_predict(model, work):
    """``skimgclf predict`` on 2000 tiny images, in its own process (None without the CLI).

    A watcher thread freezes the process (SIGSTOP) as soon as its hidden
    temporary predictions file holds data, so it is still mid-run whenever
    the test gets to kill it, although it started early to overlap imports.
    """
    try:
        import skimgclf.cli  # noqa: F401
    except ImportError:
        return None
    X, _ = make_blobs_images(2000, size=8, seed=1)
    ids = write_images(work / "test", X[..., 0])
    pd.DataFrame({"id": ids}).to_csv(work / "test.csv", index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "skimgclf", "predict", str(model), str(work / "test.csv"),
         "--images", str(work / "test"), "--out", str(work / "predictions.csv"), "--chunk-size", "128",
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=work)
    proc.frozen_with = None

    def watch():
        while proc.poll() is None:
            temps = _hidden_temps(work)
            try:
                written = bool(temps) and os.path.getsize(work / temps[0]) > 0
            except FileNotFoundError:  # renamed into place between the listing and the size: done
                continue
            if written:
                os.kill(proc.pid, signal.SIGSTOP)
                proc.frozen_with = temps
                return
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    return proc


def _hidden_temps(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".predictions.csv."))


@pytest.fixture(scope="module")
def children(saved, tmp_path_factory):
    """Fresh Python processes, started together (their imports overlap):

    ``"load"`` loads the saved model and reports, then saves a big one in a
    loop; ``"cli"`` runs ``skimgclf predict`` on 2000 images (None without
    the CLI).
    """
    _, path, folder, _ = saved
    work = tmp_path_factory.mktemp("child")
    copy = work / "images_copy"
    copy.mkdir()
    for name in os.listdir(folder / "images"):
        (copy / name).write_bytes((folder / "images" / name).read_bytes())
    out, kill_dir = work / "loaded.npz", work / "killed"
    kill_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(path), str(out), str(copy),
                             str(kill_dir / "model.skimgclf")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    cli_work = tmp_path_factory.mktemp("cli")
    cli = _start_cli_predict(path, cli_work)
    yield {"load": (proc, out, kill_dir, copy), "cli": cli and (cli, cli_work)}
    for p in (proc, cli):
        if p is not None:
            p.kill()
            p.wait()


def test_round_trip_in_a_fresh_process_gives_identical_predictions(saved, children):
    pipe, _, _, ids = saved
    proc, out, _, copy = children["load"]
    _wait_for(out.exists, proc, 180, "the round trip")
    got = np.load(out)
    ids_df = pd.DataFrame({"id": ids})
    np.testing.assert_array_equal(got["proba"], pipe.predict_proba(ids_df))
    assert got["labels"].tolist() == pipe.predict(ids_df).tolist()
    assert got["classes"].tolist() == ["left", "right"]
    assert tuple(got["shape"]) == (8, 8, 1)
    np.testing.assert_array_equal(got["loss"], pipe[-1].history_["loss"])
    expected = {k: repr(v) for k, v in pipe.get_params().items()
                if k.startswith(("imagefolderloader__", "cnnclassifier__"))}
    expected["imagefolderloader__image_dir"] = repr(str(copy))
    assert json.loads(str(got["params"])) == expected


def test_loader_alone_and_unfitted_classifier_round_trip(tmp_path):
    loader = ImageFolderLoader(tmp_path, target_size=(5, 7), color_mode="rgb", scale=None, max_pixels=99,
                               cache_dir=tmp_path / "cache", n_jobs=3)
    back = skimgclf.load(skimgclf.save(loader, tmp_path / "loader.skimgclf"))
    assert type(back) is ImageFolderLoader
    # What touches the file system, safety or resources is the user's, never the file's.
    assert back.get_params() == {**loader.get_params(), "image_dir": str(tmp_path), "max_pixels": 64_000_000,
                                 "cache_dir": None, "n_jobs": None}
    clf = _cnn(filters=[4, 8], conv_blocks=2, class_weight={"a": 2.0, "b": 1.0})
    back = skimgclf.load(skimgclf.save(clf, tmp_path / "clf.skimgclf"))
    assert back.get_params() == clf.get_params() and not hasattr(back, "model_")


def test_save_refuses_a_trained_pipeline_whose_loader_never_decided_its_settings(saved, tmp_path):
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    pipe = saved[0]
    unfitted = Pipeline([("imagefolderloader", clone(pipe[0])), ("cnnclassifier", pipe[-1])])
    with pytest.raises(ModelFileError, match=r"cannot save estimator: its classifier is trained but its "
                                             r"ImageFolderLoader 'imagefolderloader' was never fitted"):
        skimgclf.save(unfitted, tmp_path / "m.skimgclf")
    assert os.listdir(tmp_path) == []
    # with both settings given there is nothing to decide: it saves, and predicts as the fitted one
    given = Pipeline([("imagefolderloader", clone(pipe[0]).set_params(color_mode="grayscale")),
                      ("cnnclassifier", pipe[-1])])
    back = skimgclf.load(skimgclf.save(given, tmp_path / "m.skimgclf"))
    np.testing.assert_allclose(back.predict_proba(saved[3]), pipe.predict_proba(saved[3]), atol=1e-6)


def test_save_refuses_what_it_cannot_store_safely(tmp_path):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ModelFileError, match="cannot save estimator of type StandardScaler"):
        skimgclf.save(StandardScaler(), tmp_path / "m.skimgclf")
    with pytest.raises(ModelFileError, match=r"cannot save CNNClassifier.random_state=RandomState"):
        skimgclf.save(_cnn(random_state=np.random.RandomState(0)), tmp_path / "m.skimgclf")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ damaged files
@pytest.mark.parametrize("keep", [0.5, 0.9, -1, 10])
def test_truncated_file(saved, tmp_path, keep):
    data = pathlib.Path(saved[1]).read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    path = tmp_path / "model.skimgclf"
    path.write_bytes(data[:n])
    with pytest.raises(ModelFileError, match=r"model\.skimgclf: not a skimgclf model file, or truncated or corrupt"):
        skimgclf.load(path)


def _member_data_span(path, name):
    """Offsets of ``name``'s stored (compressed) bytes inside the zip file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(fh.read(4), "<u2")
    start = info.header_offset + 30 + int(name_len) + int(extra_len)
    return start, start + info.compress_size


@pytest.mark.parametrize("member", ["model_0.keras", "skimgclf.json", "SHA256SUMS"])
def test_one_flipped_byte_inside_a_member(saved, tmp_path, member):
    data = bytearray(pathlib.Path(saved[1]).read_bytes())
    path = tmp_path / "model.skimgclf"
    start, stop = _member_data_span(saved[1], member)
    data[(start + stop) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ")
    assert any(s in msg for s in ("Bad CRC-32", "corrupt model file", "checksum mismatch")), msg


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_member_replaced_without_matching_checksum(saved, tmp_path):
    members = _members(saved[1])
    manifest = json.loads(members["skimgclf.json"])
    manifest["estimator"]["steps"][1][1]["params"]["epochs"] = 99
    members["skimgclf.json"] = json.dumps(manifest).encode()
    path = _write_zip(tmp_path / "model.skimgclf", members)
    with pytest.raises(ModelFileError, match=re.escape(
            f"{path}: checksum mismatch in skimgclf.json (file altered or corrupt); refused")):
        skimgclf.load(path)


def test_member_added_or_removed(saved, tmp_path):
    members = _members(saved[1])
    path = _write_zip(tmp_path / "extra.skimgclf", {**members, "evil.py": b"import os"})
    with pytest.raises(ModelFileError, match=re.escape(f"{path}: unexpected member 'evil.py'; refused")):
        skimgclf.load(path)
    members.pop("model_0.keras")
    path = _write_zip(tmp_path / "missing.skimgclf", members)
    with pytest.raises(ModelFileError, match=re.escape(
            f"{path}: the file's members do not match its checksum list; refused")):
        skimgclf.load(path)


def test_member_declaring_a_huge_size_is_refused(saved, tmp_path, monkeypatch):
    from skimgclf.model import persistence as _persistence

    monkeypatch.setattr(_persistence, "_MAX_MEMBER_BYTES", 5000)
    with pytest.raises(ModelFileError, match=r"member model_0\.keras declares \d+ bytes, more than 5000 "
                                             r"\(SKIMGCLF_MAX_MODEL_BYTES\); refused"):
        skimgclf.load(saved[1])


def test_not_a_model_file(saved, tmp_path):
    text = tmp_path / "notes.skimgclf"
    text.write_text("id,label\n1,a\n")
    with pytest.raises(ModelFileError, match=re.escape(
            f"{text}: not a skimgclf model file, or truncated or corrupt (File is not a zip file)")):
        skimgclf.load(text)
    bare = tmp_path / "net.keras"
    saved[0][-1].model_.save(bare)
    with pytest.raises(ModelFileError, match=re.escape(
            f"{bare}: not a skimgclf model file (a zip archive without skimgclf.json and SHA256SUMS; "
            "a bare Keras .keras file is not a skimgclf model)")):
        skimgclf.load(bare)
    with pytest.raises(FileNotFoundError):
        skimgclf.load(tmp_path / "absent.skimgclf")
    with pytest.raises(ModelFileError, match="cannot read model file"):
        skimgclf.load(tmp_path)


# ------------------------------------------------------------------ killed runs
def _wait_for(predicate, proc, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"process ended before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.002)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _partials(folder, base):
    return sorted(n for n in os.listdir(folder) if n.startswith(f".{base}.") and n.endswith(".partial"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_save_never_leaves_a_partial_model_file(saved, children):
    proc, _, folder, _ = children["load"]
    target = folder / "model.skimgclf"
    partial = _wait_for(lambda: _partials(folder, target.name), proc, 180, "a save to begin")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists(), "the kill came after the first save completed; the model file is too small"
    left = os.listdir(folder)
    assert left == partial and left[0].startswith(f".model.skimgclf.{proc.pid}-"), left
    with pytest.raises(ModelFileError):  # what was left is indeed incomplete
        skimgclf.load(folder / left[0])
    # The next save to the same path completes and removes the dead process's leftover (once it is
    # ten minutes old: a process id says nothing about writers on other machines of a shared folder).
    skimgclf.save(saved[0], target)
    assert sorted(os.listdir(folder)) == sorted(["model.skimgclf"] + left)
    old = time.time() - 3600
    for name in left:
        os.utime(folder / name, (old, old))
    skimgclf.save(saved[0], target)
    assert os.listdir(folder) == ["model.skimgclf"]
    assert skimgclf.load(target)[-1].classes_.tolist() == ["left", "right"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_cli_predict_leaves_no_predictions_file(children):
    if children["cli"] is None:
        pytest.skip("no skimgclf.cli")
    proc, work = children["cli"]
    _wait_for(lambda: proc.frozen_with, proc, 180, "predictions to be written")
    assert os.path.getsize(work / proc.frozen_with[0]) > 0  # mid-run: rows already written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (work / "predictions.csv").exists()
    assert _hidden_temps(work) == proc.frozen_with  # only the hidden, obviously temporary file
    assert sorted(os.listdir(work)) == sorted(proc.frozen_with + ["test", "test.csv"])


def test_load_in_a_plain_script_is_quiet(saved):
    """skimgclf.load in a script: no TensorFlow start-up lines ("oneDNN ...", "cuInit ...") on stderr."""
    _, path, folder, _ = saved
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    code = "import sys, skimgclf\npipe = skimgclf.load(sys.argv[1])\nprint(type(pipe).__name__)"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                         env=env, cwd=folder)
    assert out.returncode == 0 and out.stdout.strip() == "Pipeline", out.stderr[-3000:]
    assert out.stderr == "", out.stderr


# ------------------------------------------------------- what a model file may hold, and save writes
def _edited(saved, tmp_path, edit):
    """``saved``'s model file with its description changed by ``edit(manifest)``, checksums recomputed."""
    members = model_members(saved[1])
    manifest = json.loads(members["skimgclf.json"])
    edit(manifest)
    return write_model(tmp_path / "m.skimgclf", {**members, "skimgclf.json": json.dumps(manifest).encode()})


def _fitted(manifest):
    return manifest["estimator"]["steps"][1][1]["fitted"]


def _loader_params(manifest):
    return manifest["estimator"]["steps"][0][1]["params"]


def _steps(manifest, change):
    manifest["estimator"]["steps"] = change(manifest["estimator"]["steps"])


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the network is checked or loaded: a refusal comes before anything is built."""
    from skimgclf.model import netcheck, persistence

    monkeypatch.setattr(netcheck, "check_network", lambda *a, **k: pytest.fail("the network was checked"))
    monkeypatch.setattr(persistence, "_load_network", lambda data: pytest.fail("Keras was asked to load it"))


BAD_VALUES = {
    "classes <i8 of 10**30": (
        lambda m: _fitted(m).update(classes={"dtype": "<i8", "values": [0, 10**30]}),
        "malformed model description (ValueError: class 1000000000000000000000000000000 is not a int64 value: "
        "classes are one-dimensional <i8 values); refused"),
    "two-dimensional integer classes": (
        lambda m: _fitted(m).update(classes={"dtype": "<i8", "values": [[0, 1], [2, 3]]}),
        "(ValueError: class [0, 1] is a list: classes are one-dimensional <i8 values); refused"),
    "two-dimensional string classes": (
        lambda m: _fitted(m).update(classes={"dtype": "str", "values": [["left", "l"], ["right", "r"]]}),
        "(ValueError: class ['left', 'l'] is a list: classes are one-dimensional str values); refused"),
    "a NaN class": (
        lambda m: _fitted(m).update(classes={"dtype": "<f8", "values": [0.5, float("nan")]}),
        "(ValueError: class nan is not a float64 value: classes are one-dimensional <f8 values); refused"),
    "the same class twice": (
        lambda m: _fitted(m).update(classes={"dtype": "str", "values": ["left", "left"]}),
        "(ValueError: the classes are not distinct); refused"),
    "100,001 classes": (
        lambda m: _fitted(m).update(classes={"dtype": "str", "values": [f"c{i}" for i in range(100_001)]}),
        "(ValueError: 100,001 classes, not 1 to 100,000); refused"),
    "a suffix with a NUL byte": (
        lambda m: _loader_params(m).update(suffix="a\x00.png"),
        "(ValueError: parameter ImageFolderLoader.suffix holds a NUL byte ('a\\x00.png')); refused"),
    "a suffix that is a number": (
        lambda m: _loader_params(m).update(suffix=5),
        "parameters do not fit ImageFolderLoader (The 'suffix' parameter of ImageFolderLoader must be an instance "
        "of 'str' or None. Got 5 instead.); refused"),
    "a pipeline stored reversed": (
        lambda m: _steps(m, lambda steps: steps[::-1]),
        "a Pipeline of ['CNNClassifier', 'ImageFolderLoader']; skimgclf.save writes an ImageFolderLoader then a "
        "CNNClassifier (or one of them), the order predict needs; refused"),
    "two classifiers": (
        lambda m: _steps(m, lambda steps: steps + [["second", steps[1][1]]]),
        "a Pipeline of ['ImageFolderLoader', 'CNNClassifier', 'CNNClassifier']; skimgclf.save writes"),
    "a pipeline in a pipeline": (
        lambda m: _steps(m, lambda steps: [steps[0], ["inner", {"class": "Pipeline", "params": {},
                                                                 "steps": [steps[1]]}]]),
        "unknown estimator 'Pipeline' in a Pipeline; a skimgclf model file may only name ['CNNClassifier', "
        "'ImageFolderLoader'] as its steps; refused"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_values_a_model_file_may_not_hold_are_refused_at_load(saved, tmp_path, no_network, case):
    edit, expected = BAD_VALUES[case]
    path = _edited(saved, tmp_path, edit)
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert_one_clean_line(str(info.value), path)
    assert expected in str(info.value), str(info.value)


def test_ten_million_classes_are_refused_before_anything_is_built(saved, tmp_path, no_network):
    path = _edited(saved, tmp_path, lambda m: _fitted(m).update(classes={"dtype": "<i8",
                                                                          "values": list(range(10_000_000))}))
    start = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert time.perf_counter() - start < 10
    assert re.fullmatch(re.escape(f"{path}: its description skimgclf.json declares ") + r"[0-9,]+ bytes, more than "
                        r"67,108,864; refused", str(info.value)), str(info.value)


def test_classes_of_every_dtype_a_classifier_learns_round_trip(saved, tmp_path):
    """The control: booleans, integers, floats and strings come back equal and of their dtype."""
    for classes in (np.array([False, True]), np.array([-3, 2**62]), np.array([-1.0, 2.0]),
                    np.array([3, 7], np.uint8), np.array(["left", "right"])):
        path = _edited(saved, tmp_path, lambda m: _fitted(m).update(classes=persistence._encode_array(classes)))
        loaded = skimgclf.load(path)[-1].classes_
        np.testing.assert_array_equal(loaded, classes.astype(object) if classes.dtype.kind == "U" else classes)
        assert loaded.dtype == (object if classes.dtype.kind == "U" else classes.dtype)


@pytest.mark.parametrize("steps", [["cnnclassifier", "imagefolderloader"], ["imagefolderloader", "cnnclassifier",
                                                                           "cnnclassifier"]])
def test_save_refuses_a_pipeline_it_could_not_load_back(tmp_path, steps):
    from sklearn.pipeline import Pipeline

    kinds = {"cnnclassifier": _cnn, "imagefolderloader": lambda: ImageFolderLoader(tmp_path)}
    pipe = Pipeline([(f"{name}_{i}", kinds[name]()) for i, name in enumerate(steps)])
    with pytest.raises(ModelFileError, match=r"cannot save estimator: a Pipeline of \[.*\]; skimgclf\.save stores "
                                             r"a Pipeline of an ImageFolderLoader then a CNNClassifier"):
        skimgclf.save(pipe, tmp_path / "m.skimgclf")
    assert not (tmp_path / "m.skimgclf").exists()


def _huge_network():
    """8x8 grayscale images resized to 4096x4096 and convolved by 16 filters: 1.1 GB of activations an image."""
    import keras

    inputs = keras.Input((8, 8, 1), name="images")
    x = keras.layers.Resizing(4096, 4096, name="resize")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", name="convolution")(x)
    x = keras.layers.GlobalAveragePooling2D(name="average")(x)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(x))
    network.compile("adam", "sparse_categorical_crossentropy")
    return network


def test_save_refuses_a_network_load_would_refuse_and_writes_nothing(saved, tmp_path):
    import copy

    clf = copy.copy(saved[0][-1])
    clf.model_ = _huge_network()
    with pytest.raises(ModelFileError, match=r"cannot save estimator: skimgclf\.load would refuse its network \(one "
                                             r"image's activations take 1,1[0-9,]+ bytes, more than 1,073,741,824 "
                                             r"\(layer 'convolution' alone 1,073,741,824\)\)"):
        skimgclf.save(clf, tmp_path / "m.skimgclf")
    assert os.listdir(tmp_path) == []


def test_a_message_from_keras_becomes_one_clean_line(saved, monkeypatch):
    def fail(data):
        raise ValueError("\x1b[1mInvalid dtype\x1b[0m: could not\n  convert\r\n\x1b[31m10**400\x1b[0m")

    monkeypatch.setattr(persistence, "_load_network", fail)
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(saved[1])
    assert_one_clean_line(str(info.value), saved[1])
    assert str(info.value).endswith("the network cannot be loaded safely (Invalid dtype: could not convert 10**400)")


def test_the_command_line_refuses_a_hostile_model_file_with_the_api_message(saved, tmp_path):
    """``skimgclf predict`` with a file whose network has 5 outputs for 2 classes: the API's one line, nothing
    written (it used to load, then fail with an IndexError)."""
    import keras
    from conftest import network_file

    inputs = keras.Input((8, 8, 1), name="images")
    outputs = keras.layers.Dense(5, activation="softmax", name="probabilities")(keras.layers.Flatten()(inputs))
    model = network_file(tmp_path / "five.skimgclf", keras.Model(inputs, outputs), classes=("left", "right"))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(model)
    _, _, folder, ids = saved
    pd.DataFrame({"id": ids}).to_csv(tmp_path / "test.csv", index=False)
    result = subprocess.run([sys.executable, "-m", "skimgclf", "predict", str(model), str(tmp_path / "test.csv"),
                             "--images", str(folder / "images"), "--out", str(tmp_path / "p.csv")],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"skimgclf: error: {info.value}"], result.stderr
    assert not (tmp_path / "p.csv").exists() and not _hidden_temps(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nadam", "rmsprop", "sgd"])
@pytest.mark.parametrize("lr_schedule", ["cosine", "constant"])
def test_every_optimizer_state_skimgclf_writes_loads_back(tmp_path, optimizer, lr_schedule):
    """The weights-file check admits the optimizer state of every optimizer and schedule the classifier offers."""
    X = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    clf = _cnn(optimizer=optimizer, lr_schedule=lr_schedule, verbose=0).fit(X, np.arange(16) % 2)
    loaded = skimgclf.load(skimgclf.save(clf, tmp_path / "m.skimgclf"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def _edit_manifest(members, edit):
    manifest = json.loads(members["skimgclf.json"])
    edit(manifest)
    return {**members, "skimgclf.json": json.dumps(manifest).encode()}


# --------------------------------------------------------------- model files
def test_a_member_the_manifest_does_not_name_is_refused_unread(pipeline_file, tmp_path, monkeypatch):
    members = model_members(pipeline_file[0])
    zeros = bytes(4 * 1024**2)  # compresses to a few KB: what a bomb looks like
    path = write_model(tmp_path / "m.skimgclf", {**members, "model_7.keras": zeros, "model_8.keras": zeros})
    read = []
    real_read = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: (read.append(name), real_read(self, name, *a))[1])
    with pytest.raises(ModelFileError, match=f"{path}: member model_7.keras is not named by the model description; "
                                             "refused"):
        skimgclf.load(path)
    assert "model_7.keras" not in read and "model_8.keras" not in read


def test_members_declaring_too_much_in_all_are_refused(pipeline_file, tmp_path, monkeypatch):
    from skimgclf.model import persistence

    members = model_members(pipeline_file[0])
    largest = max(len(d) for d in members.values())
    monkeypatch.setattr(persistence, "_MAX_MEMBER_BYTES", largest + 1)  # each one passes, not all together
    with pytest.raises(ModelFileError, match=r"its members declare \d+ bytes in all, more than \d+ "
                                             r"\(SKIMGCLF_MAX_MODEL_BYTES\); refused"):
        skimgclf.load(pipeline_file[0])


def test_running_out_of_memory_is_a_model_file_error(pipeline_file, monkeypatch):
    def no_memory(self, name, *args):
        raise MemoryError()

    monkeypatch.setattr(zipfile.ZipFile, "read", no_memory)
    with pytest.raises(ModelFileError, match="too large to load in this process's memory"):
        skimgclf.load(pipeline_file[0])


def test_loader_settings_in_a_model_file_are_not_trusted(pipeline_file, tmp_path):
    evil_cache = tmp_path / "planted-cache"

    def plant(manifest):
        params = manifest["estimator"]["steps"][0][1]["params"]
        params.update(cache_dir=str(evil_cache), max_pixels=None, n_jobs=64)

    path = write_model(tmp_path / "m.skimgclf", _edit_manifest(model_members(pipeline_file[0]), plant))
    pipe = skimgclf.load(path)
    assert pipe[0].get_params()["cache_dir"] is None
    assert pipe[0].get_params()["max_pixels"] == 64_000_000
    assert pipe[0].get_params()["n_jobs"] is None
    pipe.predict(pipeline_file[2][:4])
    assert not evil_cache.exists()

    def huge(manifest):
        manifest["estimator"]["steps"][0][1]["params"]["target_size"] = {"__tuple__": [16000, 16000]}

    path = write_model(tmp_path / "huge.skimgclf", _edit_manifest(model_members(pipeline_file[0]), huge))
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
def test_malformed_values_name_the_file(pipeline_file, tmp_path, where, value, message):
    def edit(manifest):
        node = manifest["estimator"]["steps"][1][1]
        if where == "classes":
            node["fitted"]["classes"] = value
        else:
            node["params"].update(value)

    path = write_model(tmp_path / "m.skimgclf", _edit_manifest(model_members(pipeline_file[0]), edit))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_save_uses_no_system_temporary_folder_and_stale_partials_are_cleaned(pipeline_file, tmp_path, monkeypatch):
    import tempfile

    pipe = skimgclf.load(pipeline_file[0])
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


# ----------------------------------------------------------------- model files
def _write_model_zip(path, manifest, extra=None):
    """A skimgclf model file with checksums recomputed, as an attacker would."""
    members = {"skimgclf.json": json.dumps(manifest).encode()}
    members.update(extra or {})
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SHA256SUMS", sums)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _manifest(estimator):
    return {"format": "skimgclf-model", "format_version": 1, "estimator": estimator}


def _fitted_node(model_member="model_0.keras"):
    return {"class": "CNNClassifier", "params": {},
            "fitted": {"model": model_member, "classes": {"dtype": "str", "values": ["a", "b"]},
                       "image_shape": [4, 4, 1], "history": {}}}


def test_unknown_estimator_class_is_refused(tmp_path):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "Popen", "params": {"args": ["touch", str(tmp_path / "pwned")]}}))
    with pytest.raises(ModelFileError, match=r"unknown estimator 'Popen'; a skimgclf model file may only "
                                             r"name \['CNNClassifier', 'ImageFolderLoader', 'Pipeline'\]"):
        skimgclf.load(path)
    assert not (tmp_path / "pwned").exists()


def test_pipeline_memory_parameter_is_refused(tmp_path):
    loader = {"class": "ImageFolderLoader", "params": {}}
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "Pipeline", "params": {"memory": str(tmp_path)}, "steps": [["load", loader]]}))
    with pytest.raises(ModelFileError, match=r"unknown parameters \['memory'\] for Pipeline; refused"):
        skimgclf.load(path)


def test_unknown_estimator_parameter_is_refused(tmp_path):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "ImageFolderLoader", "params": {"__class__": "x"}}))
    with pytest.raises(ModelFileError, match=r"unknown parameters \['__class__'\] for ImageFolderLoader"):
        skimgclf.load(path)


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    """A .keras network with a Lambda layer that creates a marker file when it runs."""
    import keras

    tmp = tmp_path_factory.mktemp("lambda")
    marker = tmp / "lambda_ran"
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Lambda(fn)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    marker.unlink()  # building the model ran it once
    file = tmp / "evil.keras"
    model.save(file)
    assert not marker.exists()
    return file, marker


def test_lambda_layer_control_runs_code_without_safe_mode(lambda_keras):
    """The crafted network really does run code when loaded unsafely (so the next test can fail)."""
    import keras

    file, marker = lambda_keras
    keras.saving.load_model(file, safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_lambda_layer_is_refused_by_safe_mode(lambda_keras, tmp_path):
    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(it names "
                                             r"keras\.layers\.Lambda, which is not something skimgclf builds\)"):
        skimgclf.load(path)
    assert not marker.exists()


def test_lambda_layer_is_refused_by_keras_safe_mode_too(lambda_keras, tmp_path, monkeypatch):
    """Second line of defence: with skimgclf's own config check switched off, Keras' safe mode refuses."""
    from skimgclf.model import netcheck

    monkeypatch.setattr(netcheck, "_check", lambda *args: 0)
    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    msg = str(info.value)
    assert "the network cannot be loaded safely" in msg and "Lambda" in msg and "safe_mode" in msg
    assert not marker.exists()


def test_keras_config_naming_a_foreign_function_is_refused(tmp_path):
    import keras

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    good = io.BytesIO()
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    marker = tmp_path / "pwned"
    dense["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system",
                                     "registered_name": "system"}
    dense["config"]["kernel_initializer"] = {"module": "subprocess", "class_name": "Popen",
                                             "config": {"args": ["touch", str(marker)]}}
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(good, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": good.getvalue()})
    with pytest.raises(ModelFileError, match="the network cannot be loaded safely"):
        skimgclf.load(path)
    assert not marker.exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_file_is_refused_without_unpickling(tmp_path, compress):
    import joblib

    marker = str(tmp_path / "unpickled")
    path = tmp_path / "model.joblib"
    joblib.dump(_Payload(marker), path, compress=compress)
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    msg = str(info.value)
    assert "not a skimgclf model file" in msg
    assert "looks like a pickle or joblib file" in msg and "runs code from the file" in msg
    assert not os.path.exists(marker)
    joblib.load(path)  # control: joblib does run the payload
    assert os.path.exists(marker)


def test_docstrings_warn_that_joblib_load_executes_code():
    for func in (skimgclf.save, skimgclf.load):
        doc = " ".join(func.__doc__.split())
        assert "joblib.load" in doc and "execute code" in doc, func.__name__


def test_safe_mode_holds_even_after_keras_unsafe_deserialization_was_enabled(lambda_keras, tmp_path):
    """``keras.config.enable_unsafe_deserialization()`` (by any library) must not open the door."""
    from keras.src.saving import serialization_lib

    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    before = serialization_lib.in_safe_mode()
    import keras

    keras.config.enable_unsafe_deserialization()
    try:
        with pytest.raises(ModelFileError, match="the network cannot be loaded safely"):
            skimgclf.load(path)
        assert serialization_lib.in_safe_mode() is False  # the caller's setting is given back
    finally:
        serialization_lib.global_state.set_global_attribute("safe_mode_saving", before)
    assert not marker.exists()


@pytest.mark.parametrize("estimator", [
    {"class": "Pipeline", "params": {}, "steps": "not a list"},
    {"class": "ImageFolderLoader", "params": {"target_size": {"__set__": []}}},
    {"class": "ImageFolderLoader", "params": ["not", "a", "dict"]},
    {"class": ["ImageFolderLoader"], "params": {}},
    "ImageFolderLoader",
    {"class": "CNNClassifier", "params": {}, "fitted": {"model": "model_0.keras"}},
])
def test_malformed_model_descriptions_are_refused(tmp_path, estimator):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(estimator))
    with pytest.raises(ModelFileError):
        skimgclf.load(path)


def test_deeply_nested_manifest_is_refused(tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    members = {"skimgclf.json": ('{"format": "skimgclf-model", "format_version": 1, "estimator": {"class": '
                                 '"ImageFolderLoader", "params": {"suffix": ' + nested + '}}}').encode()}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
    path = tmp_path / "m.skimgclf"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SHA256SUMS", sums)
        zf.writestr("skimgclf.json", members["skimgclf.json"])
    with pytest.raises(ModelFileError, match="unreadable manifest|malformed model description"):
        skimgclf.load(path)


# ------------------------------------------------------------------- epochs_
def test_the_epochs_trained_on_a_small_photo_set_survive_save_and_load(tmp_path):
    """``epochs="auto"`` raises the epochs of a small set of larger colour images by the
    number of rows, which a loaded model cannot know: the file keeps ``epochs_``."""
    from skimgclf import CNNClassifier

    X, y = make_blobs_images(40, size=36, channels=3)  # 36 px: larger than a thumbnail
    clf = CNNClassifier(conv_blocks=1, filters=4, units=4, validation_split=0.0, verbose=0,
                        random_state=0).fit(X, y)
    assert clf.epochs_ == len(clf.history_["loss"]) == 40  # 10,000 images' worth, at most 40
    path = skimgclf.save(clf, tmp_path / "m.skimgclf")
    assert skimgclf.load(path).epochs_ == 40
    members = model_members(path)
    manifest = json.loads(members["skimgclf.json"])
    manifest["estimator"]["fitted"]["epochs"] = "forty"
    members["skimgclf.json"] = json.dumps(manifest).encode()
    write_model(tmp_path / "bad.skimgclf", members)
    with pytest.raises(ModelFileError, match="epochs 'forty', not a positive integer"):
        skimgclf.load(tmp_path / "bad.skimgclf")
