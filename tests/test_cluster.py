"""skimgclf on a Dask cluster: grid search, batch scoring, thread settings.

One LocalCluster of two worker processes (one thread each) serves the whole
module; starting it and importing TensorFlow in its workers is most of the
time these tests take.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import joblib
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline

from skimgclf import cluster as _dask
from skimgclf.cli import main

from conftest import make_blobs_images, write_images

#: Tiny, learnable settings: 8x8 images, one block, no augmentation.
NET = {"conv_blocks": 1, "filters": 8, "units": 16, "epochs": 3, "batch_size": 8, "learning_rate": 0.01,
       "random_shift": 0.0, "random_rotation": 0.0, "random_zoom": 0.0, "random_state": 0}
#: Ids written verbatim in the CSVs: leading zeros, letters, a dash.
IDS = [f"{i:03d}" if i % 3 else f"img-{i}" for i in range(48)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """48 labelled 8x8 PNGs (two classes), their CSVs, and the table of ids."""
    root = tmp_path_factory.mktemp("dask-data")
    X, y = make_blobs_images(len(IDS))
    write_images(root / "train", X[..., 0], ids=IDS)
    labels = np.where(y == 0, "left", "right")
    table = pd.DataFrame({"id": IDS, "label": labels})
    table.to_csv(root / "train.csv", index=False)
    table[["id"]].to_csv(root / "test.csv", index=False)
    return root, table


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes, 1 thread and 1 TensorFlow thread each."""
    with _dask.local_cluster(2, threads_per_worker=1, tf_threads=1) as cluster, \
            distributed.Client(cluster) as c:
        _dask.warm_up(c)
        yield c


@pytest.fixture(scope="module")
def model_file(data, tmp_path_factory):
    """A pipeline fitted on the images, saved with skimgclf.save."""
    from skimgclf import CNNClassifier, ImageFolderLoader, save

    root, table = data
    pipe = make_pipeline(ImageFolderLoader(root / "train", target_size=(8, 8), verbose=0),
                         CNNClassifier(**NET))
    pipe.fit(table[["id"]], table["label"])
    path = tmp_path_factory.mktemp("dask-model") / "model.skimgclf"
    save(pipe, path)
    return path, pipe


def _pid(estimator, X, y):
    """A 'score' that tells which process scored a fold."""
    return os.getpid()


# ------------------------------------------------------------- grid search
@pytest.mark.slow
def test_grid_search_on_workers_like_the_serial_run(client, data):
    from skimgclf import CNNClassifier, ImageFolderLoader

    root, table = data
    pipe = make_pipeline(ImageFolderLoader(str(root / "train"), target_size=(8, 8), verbose=0),
                         CNNClassifier(**NET))
    grid = {"cnnclassifier__units": [4, 16]}

    def search():
        return GridSearchCV(pipe, grid, cv=StratifiedKFold(2, shuffle=True, random_state=0),
                            scoring={"accuracy": "accuracy", "pid": _pid}, refit="accuracy")

    serial = search().fit(table[["id"]], table["label"])
    with joblib.parallel_config(backend="dask"):
        spread = search().fit(table[["id"]], table["label"])

    # Every fold was fitted and scored in a worker process, none here.
    worker_pids = set(client.run(os.getpid).values())
    pids = {int(spread.cv_results_[f"split{k}_test_pid"][i]) for k in range(2) for i in range(2)}
    assert pids <= worker_pids and os.getpid() not in pids
    assert {int(p) for p in serial.cv_results_["split0_test_pid"]} == {os.getpid()}

    # Same table as the serial search: same columns, candidates, ranks' shape.
    assert sorted(spread.cv_results_) == sorted(serial.cv_results_)
    assert spread.cv_results_["params"] == serial.cv_results_["params"]
    for key in ("mean_test_accuracy", "split0_test_accuracy", "split1_test_accuracy"):
        scores = np.asarray(spread.cv_results_[key])
        assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert sorted(spread.cv_results_["rank_test_accuracy"]) in ([1, 2], [1, 1])
    assert spread.best_params_ in grid_candidates(grid)
    assert spread.best_params_ == spread.cv_results_["params"][int(np.argmin(spread.cv_results_["rank_test_accuracy"]))]

    # The refit (in this process) is an ordinary fitted pipeline.
    predicted = spread.best_estimator_.predict(table[["id"]])
    assert set(predicted) <= {"left", "right"} and len(predicted) == len(table)
    assert np.mean(predicted == table["label"].to_numpy()) > 0.7

    # The workers trained with the TensorFlow thread pools they were given.
    for info in client.run(_dask.worker_threads_info).values():
        assert info["env"]["TF_NUM_INTRAOP_THREADS"] == "1"
        assert info["env"]["TF_NUM_INTEROP_THREADS"] == "1"
        assert info["tf_started"] is True
        assert info["tf_compute_threads"] == 1  # TensorFlow's inter-op pool read the variable


def grid_candidates(grid):
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(grid))


def test_estimators_pickle_to_and_from_workers(client, data, model_file):
    from skimgclf import CNNClassifier, ImageFolderLoader

    root, table = data
    fitted = model_file[1]
    ids = table[["id"]]
    # A fitted pipeline sent to a worker predicts there what it predicts here.
    remote = client.submit(lambda est, X: est.predict_proba(X), fitted, ids, pure=False).result()
    np.testing.assert_allclose(remote, fitted.predict_proba(ids), atol=1e-5)
    # An unfitted one is fitted on a worker and comes back fitted.
    unfitted = make_pipeline(ImageFolderLoader(str(root / "train"), target_size=(8, 8), verbose=0),
                             CNNClassifier(**NET))
    back = client.submit(lambda est, X, y: clone(est).fit(X, y), unfitted, ids, table["label"],
                         pure=False).result()
    assert back[-1].classes_.tolist() == ["left", "right"]
    np.testing.assert_allclose(back.predict_proba(ids), fitted.predict_proba(ids), atol=1e-4)


def test_configure_workers_reports_each_worker(client):
    report = _dask.configure_workers(client, tf_threads=1)
    assert set(report) == set(client.scheduler_info()["workers"])
    assert all(tuple(v) == (1, "set") for v in report.values()), report


def test_check_workers_names_a_missing_image_folder(client, tmp_path):
    assert _dask.check_workers(client, [tmp_path]) == 2
    with pytest.raises(_dask.DaskSetupError, match=r"image folder .*nowhere does not exist on Dask worker "
                                                   r"tcp://.*same path on every worker"):
        _dask.check_workers(client, [tmp_path / "nowhere"])


# ------------------------------------------------------------------ scoring
def test_score_chunks_in_order_with_rows_of_the_whole_table(client, data, model_file, tmp_path):
    from skimgclf.io.tables import iter_table

    root, table = data
    path, pipe = model_file
    chunks = list(_dask.score_chunks(client, path, iter_table(root / "test.csv", chunksize=5),
                                     image_dir=root / "train", window=3))
    assert [c["id"].tolist() for c, _ in chunks] == [IDS[i:i + 5] for i in range(0, len(IDS), 5)]
    proba = np.concatenate([p for _, p in chunks])
    np.testing.assert_allclose(proba, pipe.predict_proba(table[["id"]]), atol=1e-5)

    # A missing image in the 4th chunk: the error counts rows from the table's start.
    (tmp_path / "bad.csv").write_text("id\n" + "\n".join(IDS[:17] + ["gone"] + IDS[17:]) + "\n")
    with pytest.raises(ValueError, match=r"^row 17: no image for id 'gone'"):
        for _ in _dask.score_chunks(client, path, iter_table(tmp_path / "bad.csv", chunksize=5),
                                    image_dir=root / "train", pipeline=pipe):
            pass


def test_cli_predict_on_the_cluster_writes_the_same_file(client, data, model_file, tmp_path, capsys):
    root, _ = data
    path, _ = model_file
    address = client.scheduler.address
    common = ["predict", str(path), str(root / "test.csv"), "--images", str(root / "train"), "--proba",
              "--chunk-size", "7", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "here.csv")]) == 0
    # A real command-line process, scoring on the cluster's workers.
    result = subprocess.run([sys.executable, "-m", "skimgclf", *common, "--out", str(tmp_path / "there.csv"),
                             "--dask-scheduler", address], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"predictions for {len(IDS)} images written to" in result.stdout
    here, there = (tmp_path / "here.csv").read_bytes(), (tmp_path / "there.csv").read_bytes()
    assert there == here
    assert [line.split(",")[0] for line in there.decode().splitlines()[1:]] == IDS
    assert sorted(os.listdir(tmp_path)) == ["here.csv", "there.csv"]  # no temporary file left

    # A missing image: the CSV line is named and no output file appears.
    bad = tmp_path / "bad.csv"
    bad.write_text("id\n" + "\n".join(IDS[:9] + ["gone"]) + "\n")
    capsys.readouterr()
    status = main(["predict", str(path), str(bad), "--images", str(root / "train"), "--chunk-size", "4",
                   "--out", str(tmp_path / "bad-out.csv"), "--quiet", "--dask-scheduler", address])
    assert status == 1
    assert f"{bad} line 11: no image for id 'gone'" in capsys.readouterr().err
    assert not (tmp_path / "bad-out.csv").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".bad-out")]


def test_cli_search_on_the_cluster(client, data, tmp_path, capsys):
    root, _ = data
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [4, 16]}')
    status = main(["search", str(root / "train.csv"), "--grid", str(grid), "--cv", "2", "--epochs", "2",
                   "--conv-blocks", "1", "--filters", "8", "--batch-size", "8", "--no-augment",
                   "--model", str(tmp_path / "best.skimgclf"), "--quiet",
                   "--dask-scheduler", client.scheduler.address])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "2 candidates x 2 folds" in out and "best: units=" in out
    results = pd.read_csv(tmp_path / "cv_results.csv")
    assert results["param_cnnclassifier__units"].tolist() == [4, 16]
    from skimgclf import load

    best = load(tmp_path / "best.skimgclf")
    assert best[-1].units in (4, 16)


def test_cli_refuses_n_jobs_with_dask_and_a_missing_folder_on_workers(client, data, tmp_path, capsys):
    root, _ = data
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [4]}')
    base = ["search", str(root / "train.csv"), "--grid", str(grid), "--model", str(tmp_path / "m.skimgclf"),
            "--quiet", "--target-size", "8", "8"]
    assert main(base + ["--n-jobs", "2", "--dask-scheduler", client.scheduler.address]) == 1
    assert "leave --n-jobs out" in capsys.readouterr().err
    assert main(base + ["--dask-scheduler", "tcp://127.0.0.1:9", "--dask-local", "1"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -------------------------------------------------------- without dask
def test_import_is_lazy_and_missing_dask_is_explained(monkeypatch):
    code = ("import sys, skimgclf.cluster, skimgclf.cli; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'imported dask'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'skimgclf\[dask\]'"):
        _dask.local_cluster(1)


def test_client_for_a_local_cluster_and_an_unreachable_scheduler(tmp_path):
    with _dask.client_for(n_local=1, image_dirs=[tmp_path], warm=False) as c:
        (info,) = c.run(_dask.worker_threads_info).values()
        assert info["env"]["TF_NUM_INTRAOP_THREADS"] == str(max(1, len(os.sched_getaffinity(0))))
    with pytest.raises(_dask.DaskSetupError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:9"), \
            _dask.client_for("tcp://127.0.0.1:9", timeout=2):
        pass


@pytest.mark.slow
def test_cli_with_a_local_cluster_reports_a_failed_task_on_one_line(data, model_file, tmp_path):
    """A worker's failure: the command's one error line, no worker traceback or TensorFlow log."""
    root, _ = data
    csv = tmp_path / "test.csv"
    pd.DataFrame({"id": IDS[:5] + ["no-such-image"]}).to_csv(csv, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "skimgclf", "predict", str(model_file[0]), str(csv), "--images", str(root / "train"),
         "--out", str(tmp_path / "p.csv"), "--dask-local", "1", "--quiet"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"skimgclf: error: {csv} line 7: no image for id 'no-such-image': no file no-such-image or "
                     f"no-such-image.<image extension> in {root / 'train'}"], result.stderr
    assert not (tmp_path / "p.csv").exists()
