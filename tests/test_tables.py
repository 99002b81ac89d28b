"""Tables of ids (``skimgclf.io.tables``, ``skimgclf.io.ids``): read exactly as written, errors on the real line.

The one reader of CSV tables serves :func:`skimgclf.scoring.predict_csv` and
every command of the command line (their own tests are in ``test_cli.py``);
a DataFrame given to the loader goes through the same id rules
(``skimgclf.io.ids``). What the user sees:

- an id ``" 7.png"`` names the file `` 7.png``, never ``7.png``; when only
  ``7.png`` exists: ``no image for id ' 7.png': ... does not exist; the
  folder holds '7.png': ids are read exactly as written, spaces included``;
- a row with more fields than the header: ``.../t.csv line 2: 2 fields, but
  the header (line 1) has 1; a value that holds a comma must be quoted``;
- line numbers count blank lines, quoted values spanning lines, CRLF, a BOM:
  ``.../t.csv line 6: no image for id 'missing.png': ...``;
- a 100 MB value: ``.../t.csv line 2: a value longer than 131072
  characters; ...``, a 10 MB id given in a DataFrame: ``row 0: id
  'aaaa...'... (10000000 characters): ...``, the message a few hundred
  characters long.
"""

import os
import re
import string

import numpy as np
import pandas as pd
import pytest
from conftest import gray_loader, small_cnn, write_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skimgclf import ImageFolderLoader
from skimgclf.errors import ImageDecodeError, InputError, TableError, shown
from skimgclf.io import tables
from skimgclf.scoring import predict_csv


def _png(path, value):
    Image.fromarray(np.full((2, 2), value, np.uint8)).save(path, format="PNG")


def _loader(folder, **kw):
    # suffix="": every id is a whole file name (no extension guessed, so no id can stand for another's file).
    return ImageFolderLoader(folder, suffix="", color_mode="grayscale", target_size=(2, 2), scale=None, verbose=0,
                             **kw)


def _pixel_model(folder):
    """A fitted pipeline without TensorFlow whose label is the pixel value of the image it loaded."""
    flat = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    values = np.repeat(np.arange(256), 2)
    clf = KNeighborsClassifier(n_neighbors=1).fit(np.repeat(values[:, None], 4, axis=1).astype(np.float32), values)
    return Pipeline([("imagefolderloader", _loader(folder)), ("flat", flat), ("clf", clf)])


def _predict(folder, csv_path, tmp_path, chunk_size=4096):
    out = tmp_path / "pred.csv"
    predict_csv(_pixel_model(folder), csv_path, out, chunk_size=chunk_size)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


# -------------------------------------------------------------- ids verbatim
def test_an_id_with_spaces_loads_its_own_file_never_the_stripped_one(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "7.png", 10)
    _png(folder / " 7.png", 200)
    _png(folder / "8.png ", 90)
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id\n 7.png\n7.png\n8.png \n")
    df = tables.read_table(csv_path)
    assert df["id"].tolist() == [" 7.png", "7.png", "8.png "]
    # The API, given the table (or pandas' own reading of it), and scoring a CSV: the same files.
    for X in (df, pd.read_csv(csv_path, dtype=str), [" 7.png", "7.png", "8.png "]):
        assert _loader(folder).transform(X)[:, 0, 0, 0].tolist() == [200, 10, 90]
    out = _predict(folder, csv_path, tmp_path)
    assert out["id"].tolist() == [" 7.png", "7.png", "8.png "]  # written back as read
    assert out["label"].tolist() == ["200", "10", "90"]


def test_an_id_whose_spaced_file_is_missing_is_refused_with_a_hint(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "7.png", 10)
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id\n7.png\n\n 7.png\n")
    with pytest.raises(TableError) as info:
        _predict(folder, csv_path, tmp_path)
    assert str(info.value).startswith(f"{csv_path} line 4: no image for id ' 7.png': ")
    assert "the folder holds '7.png': ids are read exactly as written, spaces included" in str(info.value)
    assert not (tmp_path / "pred.csv").exists()


@pytest.mark.parametrize("blank", ["   ", "\t"])
def test_an_id_of_whitespace_only_is_refused_naming_the_line(tmp_path, blank):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(f"id,label\n0.png,a\n\n{blank},b\n")
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line 4: the image id is only whitespace")):
        tables.read_table(csv_path, label_column="label")
    with pytest.raises(InputError, match=re.escape("row 1: the id is only whitespace")):
        _loader(tmp_path).transform(["0.png", blank])


def test_ids_with_line_breaks_are_written_back_so_that_they_read_back_the_same(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    ids = ["a\rb.png", "\r.png", "c\nd.png", 'e,"f".png', "plain.png"]
    for i, image_id in enumerate(ids):
        _png(folder / image_id, 10 * (i + 1))
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id\n" + "\n".join('"' + i.replace('"', '""') + '"' for i in ids) + "\n", newline="")
    out = _predict(folder, csv_path, tmp_path, chunk_size=2)  # a bare \r is a line break to every CSV reader
    assert out["id"].tolist() == ids and out["label"].tolist() == ["10", "20", "30", "40", "50"]
    assert tables.read_table(tmp_path / "pred.csv")["id"].tolist() == ids


# ------------------------------------------------------------ ragged rows
@pytest.mark.parametrize("text, line", [
    ("id\n0.png,1.png\n", 2),  # pandas made the first field the index: predictions for the wrong ids
    ("id\n0.png\n\n1.png,\n", 4),  # a trailing comma is a second field too
    ("id,label\n0.png,a\n1.png,b,c\n", 3),
    ('id,label\n"0\n.png",a\n1.png,b,c\n', 4),
])
def test_a_row_with_more_fields_than_the_header_is_refused_naming_its_line(tmp_path, text, line):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(text)
    fields = text.split("\n")[0].count(",") + 1
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line {line}: ")) as info:
        tables.read_table(csv_path)
    assert f"but the header (line 1) has {fields}; a value that holds a comma must be quoted" in str(info.value)
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line {line}: ")):
        list(tables.iter_table(csv_path, chunksize=1))
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("0.png", "1.png", "0\n.png"):
        _png(folder / name, 5)
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line {line}: ")):
        _predict(folder, csv_path, tmp_path)
    assert not (tmp_path / "pred.csv").exists()


def test_a_row_with_fewer_fields_has_empty_ones(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id,label,note\n0.png,a\n1.png\n")
    assert tables.read_table(csv_path)["note"].tolist() == ["", ""]
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line 3: the label is empty")):
        tables.read_table(csv_path, label_column="label")


# ------------------------------------------------------------- line numbers
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_errors_name_the_physical_line(tmp_path, newline, bom):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "0.png", 1)
    _png(folder / "1.png", 2)
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes((bom + newline.join(["id", "0.png", "", "", "1.png", "missing.png"])).encode())
    with pytest.raises(TableError) as info:
        _predict(folder, csv_path, tmp_path, chunk_size=2)
    assert str(info.value).startswith(f"{csv_path} line 6: no image for id 'missing.png'")
    text = (bom + newline.join(['id,label', '"a', 'b.png",x', "", "1.png,", "2.png,y"])).encode()
    csv_path.write_bytes(text)
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line 5: the label is empty")):
        tables.read_table(csv_path, label_column="label")


def test_bytes_that_are_not_utf8_name_their_line_and_byte(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes(b"id\r\n0.png\r\r\n\n\xff.png\n")
    with pytest.raises(TableError) as info:
        tables.read_table(csv_path)
    assert str(info.value) == f"{csv_path} line 5: not UTF-8 text (invalid start byte at byte 13)"


@pytest.mark.parametrize("text, line, problem", [
    ('id\n0.png\n"1.png\n\n', 3, "a quoted value is not closed before the end of the file"),
    ('id\n0.png\n"1".png\n', 3, "a closing quote is followed by more text"),
])
def test_malformed_quoting_is_refused_naming_its_line(tmp_path, text, line, problem):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(text)
    with pytest.raises(TableError, match=re.escape(f"{csv_path} line {line}: {problem}")):
        tables.read_table(csv_path)


# -------------------------------------------------------- long values cut
def test_a_100_mb_value_is_refused_in_a_short_message(tmp_path):
    csv_path = tmp_path / "t.csv"
    with open(csv_path, "w") as fh:
        fh.write("id,label\n0.png,a\n")
        fh.write("x" * 100_000_000 + ",b\n")
    with pytest.raises(TableError) as info:
        tables.read_table(csv_path, label_column="label")
    message = str(info.value)
    assert message.startswith(f"{csv_path} line 3: a value longer than {tables.MAX_FIELD_CHARS} characters")
    assert len(message) < 400


def test_a_huge_id_in_a_dataframe_is_cut_in_messages(tmp_path):
    _png(tmp_path / "0.png", 3)
    huge = "a" * 10_000_000
    for X, n in ((pd.DataFrame({"id": ["0.png", huge]}), 10_000_000), ([huge + "/../x"], 10_000_005),
                 (["a\x00" + huge], 10_000_002)):
        with pytest.raises((InputError, ImageDecodeError)) as info:
            _loader(tmp_path).transform(X)
        message = str(info.value)
        assert len(message) < 5000 and "aaaa'..." in message and f"... ({n} characters)" in message, message[:300]
    assert shown(huge) == repr("a" * 200) + "... (10000000 characters)"


# ------------------------------------------------------------ properties
_SPECIAL = list(' ",\n\r\t\'') + ["é", "日", "🙂", "0", "7"]
_STEM = st.text(alphabet=st.sampled_from(_SPECIAL) | st.sampled_from(list(string.ascii_letters + string.digits))
                | st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\:"),
                min_size=1, max_size=8) | st.from_regex(r"0{1,3}[0-9]{0,3}", fullmatch=True)  # leading zeros
_TABLE = st.fixed_dictionaries({
    "stems": st.lists(_STEM, min_size=1, max_size=8, unique_by=lambda s: s.encode("utf-8")),
    "tails": st.lists(st.sampled_from(["", " ", "\t", "  "]), min_size=8, max_size=8),
    "blanks": st.lists(st.integers(0, 2), min_size=9, max_size=9),
    "labels": st.lists(st.text(alphabet=st.sampled_from(list('ab ,"\n1')), min_size=1, max_size=4)
                       .filter(lambda s: s.strip()), min_size=8, max_size=8),
    "newline": st.sampled_from(["\n", "\r\n"]),
    "bom": st.booleans(),
    "quote_all": st.booleans(),
    "chunk": st.integers(1, 4),
    "missing": st.integers(0, 7),
})


def _write_table(path, ids, labels, blanks, newline, bom, quote_all):
    """Write the CSV (RFC 4180 quoting) with blank lines; return the line each row starts on."""
    def cell(value):
        # A value holding a comma, a quote or a line break (\r alone too: it ends a line) is quoted.
        special = quote_all or any(c in value for c in ',"\r\n')
        return '"' + value.replace('"', '""') + '"' if special else value

    def row(fields):
        return ",".join(map(cell, fields)) + newline

    text, lines = ("\ufeff" if bom else "") + row(["id", "label"]), []
    for i, (image_id, label) in enumerate(zip(ids, labels)):
        text += newline * blanks[i]
        lines.append(1 + len(re.findall(r"\r\n|\r|\n", text)))  # \r\n, \r and \n each end a line
        text += row([image_id, label])
    text += newline * blanks[len(ids)]
    path.write_bytes(text.encode("utf-8"))
    return lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(table=_TABLE)
def test_generated_tables_are_read_verbatim_and_name_the_real_line(tmp_path_factory, table):
    tmp = tmp_path_factory.mktemp("table")
    folder = tmp / "images"
    folder.mkdir()
    n = len(table["stems"])
    ids = [stem + ".png" + tail for stem, tail in zip(table["stems"], table["tails"])]
    if len(set(ids)) < n:
        return
    values = {image_id: 10 + 20 * i for i, image_id in enumerate(ids)}
    for image_id, value in values.items():
        _png(folder / image_id, value)
    for image_id in ids:  # the same name without its spaces: a different image, never to be loaded
        decoy = image_id.strip()
        if decoy and decoy not in values and os.sep not in decoy:
            _png(folder / decoy, 250)
    labels = table["labels"][:n]
    csv_path = tmp / "t.csv"
    lines = _write_table(csv_path, ids, labels, table["blanks"], table["newline"], table["bom"], table["quote_all"])

    df = tables.read_table(csv_path, label_column="label")
    assert df["id"].tolist() == ids and df["label"].tolist() == labels
    assert df.index.tolist() == lines
    chunks = list(tables.iter_table(csv_path, chunksize=table["chunk"]))
    assert [i for c in chunks for i in c["id"]] == ids and [i for c in chunks for i in c.index] == lines
    # The right file for each id, through the API and through scoring the CSV.
    assert _loader(folder).transform(df)[:, 0, 0, 0].tolist() == [values[i] for i in ids]
    out = _predict(folder, csv_path, tmp, chunk_size=table["chunk"])
    assert out["id"].tolist() == ids and out["label"].astype(int).tolist() == [values[i] for i in ids]
    # A missing file is named on its own line.
    k = table["missing"] % n
    os.unlink(folder / ids[k])
    with pytest.raises(TableError) as info:
        _predict(folder, csv_path, tmp, chunk_size=table["chunk"])
    assert str(info.value).startswith(f"{csv_path} line {lines[k]}: no image for id {shown(ids[k])}")


# ------------------------------------------------------------------ CSV tables
def _tables():
    return pytest.importorskip("skimgclf.io.tables")


def test_csv_empty_file(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_bytes(b"")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: the file is empty (expected a header line such as 'id,label')")):
        tables.read_table(path, label_column="label")
    with pytest.raises(tables.TableError, match="the file is empty"):
        list(tables.iter_table(path))


def test_csv_header_only(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id,label\n")
    with pytest.raises(tables.TableError, match=re.escape(f"{path}: the table has a header but no rows")):
        tables.read_table(path, label_column="label")
    with pytest.raises(tables.TableError, match="the table has a header but no rows"):
        list(tables.iter_table(path))
    df = pd.read_csv(path)  # the Python API: a detecting loader has nothing to decide from
    with pytest.raises(ValueError, match=re.escape("cannot decide color_mode and target_size")):
        make_pipeline(ImageFolderLoader(images), small_cnn()).fit(df, df["label"])
    # one told the settings loads nothing, and the classifier refuses an empty training set
    with pytest.raises(ValueError, match=re.escape("X holds no images (0 samples)")):
        make_pipeline(gray_loader(images), small_cnn()).fit(df, df["label"])


def test_csv_missing_id_column(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("name,label\n0,a\n1,b\n")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: no column 'id'; the columns are ['name', 'label'] (choose one with --id-column)")):
        tables.read_table(path, label_column="label")
    with pytest.raises(ValueError, match=re.escape(
            "the id column 'id' is not in the table; its columns are ['name', 'label'] "
            "(set id_column=... to choose another)")):
        gray_loader(images).fit_transform(pd.read_csv(path))
    assert gray_loader(images, id_column="name").fit_transform(pd.read_csv(path)).shape == (2, 8, 8, 1)


def test_csv_missing_label_column_for_training(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id\n0\n1\n")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: no column 'label'; the columns are ['id'] (choose one with --label-column)")):
        tables.read_table(path, label_column="label")
    assert len(tables.read_table(path)) == 2  # fine for prediction


def test_csv_duplicate_ids_each_row_gets_its_image_and_prediction(blobs_pipeline):
    pipe, folder, X = blobs_pipeline
    ids = ["3", "3", "0", "3"]
    images = gray_loader(folder, scale=None).fit_transform(ids)
    assert images.shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0, ..., 0], X[3, ..., 0])
    pred = pipe.predict(pd.DataFrame({"id": ids}))
    assert pred.shape == (4,) and pred[0] == pred[1] == pred[3]


def test_csv_empty_or_nan_label_names_the_row(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id,label\n0,a\n1,\n2,b\n")
    with pytest.raises(tables.TableError, match=re.escape(f"{path} line 3: the label is empty")):
        tables.read_table(path, label_column="label")
    df = pd.read_csv(path)  # pandas reads the empty cell as NaN
    assert df["label"].isna().sum() == 1
    pipe = make_pipeline(gray_loader(images), small_cnn())
    with pytest.raises(ValueError, match=re.escape(
            "y has a missing or empty label at row 1 (nan); every training image needs a label")):
        pipe.fit(df, df["label"])
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="y has a missing or empty label at row 2"):
            pipe.fit(df, ["a", "b", blank])
    with pytest.raises(ValueError, match=re.escape("y has a missing label (NaN) at row 1")):
        pipe.fit(df, [0.0, np.nan, 1.0])


def test_csv_ids_with_surrounding_spaces_are_kept(tmp_path, images):
    path = tmp_path / "test.csv"
    path.write_text("id\n 1\n2 \n\t3 \n")
    for name, value in ((" 1", 200), ("2 ", 210), ("\t3 ", 220)):
        write_images(images, [np.full((8, 8), value)], ids=[name])
    X = gray_loader(images, scale=None).fit_transform(pd.read_csv(path, dtype=str))
    assert X[:, 0, 0, 0].tolist() == [200, 210, 220]
    tables = _tables()
    X = gray_loader(images, scale=None).fit_transform(tables.read_table(path))
    assert X[:, 0, 0, 0].tolist() == [200, 210, 220]
    with pytest.raises(ValueError, match=re.escape("row 1: the id is only whitespace ('   ')")):
        gray_loader(images).fit_transform(["1", "   "])


def test_csv_not_utf8(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_bytes("id,label\n0,caf\u00e9\n1,b\n".encode("latin-1"))
    with pytest.raises(tables.TableError) as info:
        tables.read_table(path, label_column="label")
    assert str(info.value) == f"{path} line 2: not UTF-8 text (invalid continuation byte at byte 14)"
    with pytest.raises(tables.TableError, match=re.escape(f"{path} line 2: not UTF-8 text")):
        list(tables.iter_table(path, label_column="label"))


def test_id_bytes_not_utf8(images):
    with pytest.raises(ValueError, match=re.escape("row 0: id b'\\xff' is not valid UTF-8")):
        gray_loader(images).fit_transform(np.array([b"\xff"], dtype=object))
