"""Scoring a table of image ids of any length in bounded memory.

A fitted ``Pipeline(ImageFolderLoader, CNNClassifier)`` predicts a whole
table at once with ``predict`` -- every image in memory together. For a
table of millions of rows, :func:`predict_csv` reads the CSV, loads and
scores it chunk by chunk, and writes the predictions as it goes: memory is
set by ``chunk_size``, not by the length of the table. With a Dask client
the chunks are scored on the cluster's workers (:mod:`skimgclf.cluster`), and
the file written is the same. ``skimgclf predict`` is this function, and
``skimgclf evaluate`` reads the same chunks through :func:`iter_predict_proba`.

:func:`split_pipeline` (from :mod:`skimgclf._pipelines`) is the one check
that a model is a fitted pipeline starting with an
:class:`~skimgclf.ImageFolderLoader`.

Importing this module never imports TensorFlow or Dask.
"""

from __future__ import annotations

import os

import numpy as np

from ._files import atomic_write
from ._pipelines import chunk_loader, split_pipeline
from .errors import InputError

__all__ = ["iter_predict_proba", "predict_csv", "prediction_table", "split_pipeline"]


def iter_predict_proba(model, chunks, *, image_dir=None, id_column="id", client=None, model_file=None):
    """Class probabilities of a table given chunk by chunk, one chunk in memory at a time.

    Parameters
    ----------
    model : Pipeline
        A fitted ``Pipeline(ImageFolderLoader, ..., classifier)``. It is not
        changed: each chunk is loaded by a copy of its loader.
    chunks : iterable of DataFrame
        The table in chunks (:func:`skimgclf.io.tables.iter_table`, or
        ``pandas.read_csv(..., chunksize=N)``), ids in ``id_column``.
    image_dir : str, path-like or None, default=None
        Folder of the images; ``None`` keeps the loader's ``image_dir``.
    id_column : str, default="id"
        The column of ids.
    client : distributed.Client or None, default=None
        Score the chunks on this Dask cluster's workers instead of here (see
        :func:`skimgclf.cluster.scoring.score_chunks`).
    model_file : str, path-like or None, default=None
        With a client: the file ``model`` was loaded from, sent to the
        workers as it is (otherwise ``model`` is saved to send it).

    Yields
    ------
    chunk : DataFrame
        The next chunk, as given.
    proba : ndarray of shape (len(chunk), n_classes)
        Its probabilities, in the order of the classifier's ``classes_``.

    Raises
    ------
    InputError
        A loading error; its ``row`` counts from the start of the table.
    """
    loader, rest = split_pipeline(model)
    if client is not None:
        from .cluster.scoring import score_chunks

        yield from score_chunks(client, model_file if model_file is not None else model, chunks,
                                image_dir=image_dir, id_column=id_column, pipeline=model)
        return
    reader = chunk_loader(loader, image_dir=image_dir, id_column=id_column)
    start = 0
    for chunk in chunks:
        try:
            proba = rest.predict_proba(reader.transform(chunk[[id_column]]))
        except InputError as exc:
            if exc.row is None or not start:
                raise
            raise exc.at_row(exc.row + start) from None
        start += len(chunk)
        yield chunk, proba


def prediction_table(chunk, proba, classes, *, id_column="id", label_column="label", with_proba=False):
    """The rows of a predictions CSV for one chunk.

    Parameters
    ----------
    chunk : DataFrame
        The chunk; its ids are written as they are.
    proba : ndarray of shape (len(chunk), n_classes)
        Its probabilities.
    classes : ndarray of shape (n_classes,)
        The classifier's ``classes_``.
    id_column, label_column : str, default="id", "label"
        Column names written.
    with_proba : bool, default=False
        Add one column ``proba_<class>`` per class.

    Returns
    -------
    DataFrame
        ``id, label`` (and the probabilities), in the chunk's order.
    """
    import pandas as pd

    out = pd.DataFrame({id_column: chunk[id_column].to_numpy(),
                        label_column: classes[np.argmax(proba, axis=1)]})
    if with_proba:
        for j, c in enumerate(classes):
            out[f"proba_{c}"] = proba[:, j]
    return out


def _quoting(table):
    """How to quote a chunk of predictions so that every id and label reads back as it was.

    The :mod:`csv` module quotes a value holding the delimiter, a quote or a
    character of the line terminator (``"\\n"`` here), but not a lone
    ``"\\r"``, at which every reader ends a line: a chunk with one quotes all
    its text.
    """
    import csv

    import pandas as pd

    text = [pd.Series(table.columns.astype(str))] + [table[c].astype(str) for c in table.columns
                                                     if table[c].dtype.kind not in "iufb"]
    lone_cr = any(values.str.contains("\r", regex=False).any() for values in text)
    return csv.QUOTE_NONNUMERIC if lone_cr else csv.QUOTE_MINIMAL


def predict_csv(model, csv, out, *, image_dir=None, id_column="id", label_column="label", proba=False,
                chunk_size=4096, client=None, model_file=None, progress=None, before_commit=None):
    """Write predictions for every row of a CSV of image ids, in bounded memory.

    The CSV is read, loaded and scored ``chunk_size`` rows at a time, and
    each chunk's predictions are written before the next is read. The ids
    are written exactly as in the CSV (read as text), in its order. The
    output appears only when complete (a temporary file renamed over it).

    Parameters
    ----------
    model : Pipeline
        A fitted ``Pipeline(ImageFolderLoader, ..., classifier)``, such as
        one loaded with :func:`skimgclf.load`.
    csv : str or path-like
        The CSV with an ``id_column``; other columns are ignored.
    out : str or path-like
        The predictions CSV to write: ``id,label`` and, with ``proba``, one
        column ``proba_<class>`` per class.
    image_dir : str, path-like or None, default=None
        Folder of the images; ``None`` keeps the loader's ``image_dir``.
    id_column : str, default="id"
        The column of ids, read and written.
    label_column : str, default="label"
        The name of the label column written.
    proba : bool, default=False
        Also write the class probabilities.
    chunk_size : int, default=4096
        Rows loaded and scored at a time.
    client : distributed.Client or None, default=None
        Score the chunks on a Dask cluster; the file written is the same.
    model_file : str, path-like or None, default=None
        With a client: the file ``model`` was loaded from.
    progress : callable or None, default=None
        Called with the number of rows of each chunk written.
    before_commit : callable or None, default=None
        Called with the number of rows once every row is written, just
        before the file replaces ``out``: if it raises, no file is left
        (the command line prints its last line there, so that a full
        standard output leaves no predictions behind).

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    ValueError
        If the CSV or an image cannot be read; the message names the CSV's
        line. No output file is written then.

    Examples
    --------
    >>> from skimgclf import load                                   # doctest: +SKIP
    >>> from skimgclf.scoring import predict_csv                    # doctest: +SKIP
    >>> predict_csv(load("model.skimgclf"), "test.csv", "predictions.csv",
    ...             image_dir="test/")                              # doctest: +SKIP
    200000
    """
    from .io.tables import RowLines, iter_table

    classes = split_pipeline(model)[1].classes_
    csv = os.fspath(csv)
    with atomic_write(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        chunks = RowLines(iter_table(csv, id_column=id_column, chunksize=chunk_size), csv)
        scored = iter_predict_proba(model, chunks, image_dir=image_dir, id_column=id_column, client=client,
                                    model_file=model_file)
        n = _write_predictions(fh, scored, chunks, classes, id_column=id_column,
                               label_column=label_column, proba=proba, progress=progress)
        if before_commit is not None:
            fh.flush()
            before_commit(n)
    return n


def _write_predictions(fh, scored, chunks, classes, *, id_column, label_column, proba, progress):
    """Write each ``(chunk, probabilities)`` of ``scored`` to ``fh`` as it comes; the number of rows.

    An :class:`InputError` of a chunk is raised naming the line of the file
    (``chunks``, a :class:`~skimgclf.io.tables.RowLines`), not the row.
    """
    n = 0
    try:
        for chunk, p in scored:
            table = prediction_table(chunk, p, classes, id_column=id_column,
                                     label_column=label_column, with_proba=proba)
            table.to_csv(fh, header=n == 0, index=False, float_format="%.6g", lineterminator="\n",
                         quoting=_quoting(table))
            n += len(chunk)
            chunks.release(n)
            if progress is not None:
                progress(len(chunk))
    except InputError as exc:
        error = chunks.error(exc)  # the line of the file, not the row
        if error is exc:
            raise
        raise error from exc
    return n
