"""Scoring in bounded memory (``skimgclf.scoring``): predictions of a table chunk by chunk."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import make_blobs_images, write_images

from skimgclf import ImageFolderLoader
from skimgclf.io import memcache
from skimgclf.io.tables import iter_table
from skimgclf.scoring import iter_predict_proba, predict_csv


# --------------------------------------------------------- bounded scoring
@pytest.fixture(scope="module")
def scored_model(tmp_path_factory):
    from sklearn.pipeline import make_pipeline

    from skimgclf import CNNClassifier

    root = tmp_path_factory.mktemp("scoring")
    X, y = make_blobs_images(30)
    ids = [f"{i:04d}" for i in range(30)]
    write_images(root / "img", X[..., 0], ids=ids)
    pipe = make_pipeline(ImageFolderLoader(root / "img", target_size=(8, 8), color_mode="grayscale", verbose=0),
                         CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=2, random_state=0))
    pipe.fit(ids, np.where(y == 0, "a", "b"))
    pd.DataFrame({"id": ids}).to_csv(root / "test.csv", index=False)
    return root, ids, pipe


def test_predict_csv_chunk_by_chunk_matches_predict(scored_model, tmp_path):
    root, ids, pipe = scored_model
    memcache.clear_cache()
    n = predict_csv(pipe, root / "test.csv", tmp_path / "out.csv", proba=True, chunk_size=7)
    assert n == 30
    # Nothing of the chunks stayed in memory, and the model was not changed.
    assert len(memcache.BATCHES) == 0 and pipe[0].cache is True
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert out["id"].tolist() == ids  # "0007" stays "0007"
    assert out["label"].tolist() == pipe.predict(ids).tolist()
    np.testing.assert_allclose(out[["proba_a", "proba_b"]].astype(float), pipe.predict_proba(ids), atol=1e-5)


def test_predict_csv_error_names_the_line_and_writes_nothing(scored_model, tmp_path):
    root, ids, pipe = scored_model
    csv = tmp_path / "bad.csv"
    csv.write_text("id\n" + "\n".join(ids[:12] + ["missing"] + ids[12:]) + "\n")
    with pytest.raises(ValueError, match=rf"^{csv} line 14: no image for id 'missing'"):
        predict_csv(pipe, csv, tmp_path / "out.csv", image_dir=root / "img", chunk_size=5)
    assert sorted(os.listdir(tmp_path)) == ["bad.csv"]
    # The generator underneath counts rows from the start of the table.
    with pytest.raises(ValueError, match=r"^row 12: "):
        list(iter_predict_proba(pipe, iter_table(csv, chunksize=5), image_dir=root / "img"))
