"""GPUs: memory growth switched on for each visible GPU, and one candidate at a time in `search`.

This machine has no GPU, so TensorFlow's device functions are replaced by
recording fakes; ``skimgclf info`` runs for real (CPU only).
"""

import json
import types

import pytest

from test_cli import assert_ok, run_cli

import skimgclf  # noqa: F401


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two fake GPUs; records set_memory_growth calls; clears what the module remembers."""
    import tensorflow as tf

    from skimgclf.model import devices

    fakes = [types.SimpleNamespace(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(2)]
    calls = []

    def list_devices(kind=None):
        return list(fakes) if kind in ("GPU", None) else []

    def set_growth(device, enable):
        if device.name.endswith(":1") and getattr(set_growth, "refuse_second", False):
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        calls.append((device.name, enable))

    monkeypatch.setattr(tf.config, "list_physical_devices", list_devices)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", set_growth)
    monkeypatch.setattr(devices, "_GROWTH", {})
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    return fakes, calls, set_growth


def test_memory_growth_on_for_every_gpu_once(fake_gpus):
    from skimgclf.model.devices import configure_gpus

    _, calls, _ = fake_gpus
    assert configure_gpus() == {"/physical_device:GPU:0": True, "/physical_device:GPU:1": True}
    assert calls == [("/physical_device:GPU:0", True), ("/physical_device:GPU:1", True)]
    configure_gpus()
    assert len(calls) == 2  # once per process


def test_backend_is_configured_once_in_one_function(fake_gpus, monkeypatch):
    """The log level and GPU memory growth are set by _backend.configure, once; a user's log level wins."""
    from skimgclf import _backend

    _, calls, _ = fake_gpus
    monkeypatch.setattr(_backend, "_CONFIGURED", False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    _backend.configure()
    assert calls == [("/physical_device:GPU:0", True), ("/physical_device:GPU:1", True)]
    monkeypatch.setattr("skimgclf.model.devices._GROWTH", {})  # a second call must not even ask
    _backend.configure()
    assert len(calls) == 2
    assert __import__("os").environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_importing_the_classifier_configures_the_backend():
    import skimgclf.model.classifier  # noqa: F401
    from skimgclf import _backend

    assert _backend._CONFIGURED


def test_memory_growth_leaves_the_users_choice(fake_gpus, monkeypatch):
    from skimgclf.model.devices import configure_gpus

    _, calls, set_growth = fake_gpus
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    assert configure_gpus() == {"/physical_device:GPU:0": None, "/physical_device:GPU:1": None}
    assert calls == []


def test_memory_growth_after_initialisation_is_not_an_error(fake_gpus):
    from skimgclf.model.devices import configure_gpus

    _, calls, set_growth = fake_gpus
    set_growth.refuse_second = True
    assert configure_gpus() == {"/physical_device:GPU:0": True, "/physical_device:GPU:1": None}


def test_search_fits_one_candidate_at_a_time_on_a_gpu(monkeypatch, digits_layout, tmp_path, capsys):
    """--n-jobs 2 with a GPU visible: GridSearchCV gets n_jobs=1, and the user is told."""
    import sklearn.model_selection

    from skimgclf.cli import commands

    seen = {}

    class Stop(Exception):
        pass

    class RecordingSearch:
        def __init__(self, estimator, grid, **kwargs):
            seen.update(kwargs)
            raise Stop

    monkeypatch.setattr(commands, "_visible_gpus", lambda: ["/physical_device:GPU:0"])
    monkeypatch.setattr(sklearn.model_selection, "GridSearchCV", RecordingSearch)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"units": [8, 16]}))
    with pytest.raises(Stop):
        commands.COMMANDS["search"](commands.build_parser().parse_args(
            ["search", digits_layout["train_csv"], "--grid", str(grid), "--n-jobs", "2",
             "--model", str(tmp_path / "m.skimgclf")]), commands._Console(False))
    assert seen["n_jobs"] == 1
    assert "a GPU is visible: candidates are fitted one at a time on it (--n-jobs 2 ignored)" in \
        capsys.readouterr().out
    # Without a GPU, the same command fits two at once.
    monkeypatch.setattr(commands, "_visible_gpus", lambda: [])
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")  # what the command sets for its workers: not leaked
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    with pytest.raises(Stop):
        commands.COMMANDS["search"](commands.build_parser().parse_args(
            ["search", digits_layout["train_csv"], "--grid", str(grid), "--n-jobs", "2",
             "--model", str(tmp_path / "m.skimgclf")]), commands._Console(True))
    assert seen["n_jobs"] == 2


def test_info_names_versions_and_devices():
    result = run_cli("info", "--json")
    assert_ok(result)
    info = json.loads(result.stdout)
    assert info["versions"]["skimgclf"] == skimgclf.__version__
    assert info["devices"][0]["type"] == "CPU"
    # One TensorFlow distribution: the base install does not clash with the gpu extra's.
    assert info["tensorflow_distributions"] == ["tensorflow"]
    assert result.stderr == ""
    text = run_cli("info")
    assert_ok(text)
    assert "devices TensorFlow sees:\n  CPU:0\n" in text.stdout
    assert f"skimgclf {skimgclf.__version__} (Python " in text.stdout.splitlines()[0]
    if not any(d["type"] == "GPU" for d in info["devices"]):
        assert "pip install 'skimgclf[gpu]'" in text.stdout
    assert run_cli("--version").stdout.strip() == f"skimgclf {skimgclf.__version__}"
