"""Scoring the chunks of a large table on a Dask cluster's workers, in order.

Importing this module never imports Dask.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict, deque

from .._pipelines import chunk_loader, split_pipeline
from ..errors import InputError
from .threads import distributed_module

__all__ = ["score_chunks"]


_MODELS = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 2


def _worker_model(digest, blob):
    """The model of ``blob`` in this worker process, loaded once (by digest)."""
    with _MODELS_LOCK:
        model = _MODELS.get(digest)
        if model is not None:
            _MODELS.move_to_end(digest)
            return model
        from ..model.persistence import load

        fd, path = tempfile.mkstemp(suffix=".skimgclf")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            model = load(path)
        finally:
            os.unlink(path)
        _MODELS[digest] = model
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
        return model


def _score_partition(digest, blob, reader_params, ids):
    """Run on a worker: probabilities of the images named by ``ids``."""
    model = _worker_model(digest, blob)
    loader, rest = split_pipeline(model)
    threads = os.environ.get("SKIMGCLF_WORKER_THREADS")
    # A loader of its own per task: the cached model is shared by the
    # worker's threads and is never changed.
    reader = chunk_loader(loader, n_jobs=max(1, int(threads)) if threads else None, **reader_params)
    return rest.predict_proba(reader.transform(ids))


def _model_blob(model):
    """``(bytes, sha256)`` of a model file, or of an estimator saved to one."""
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as fh:
            blob = fh.read()
    else:
        from ..model.persistence import save

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.skimgclf")
            save(model, path)
            with open(path, "rb") as fh:
                blob = fh.read()
    return blob, hashlib.sha256(blob).hexdigest()


def score_chunks(client, model, chunks, *, image_dir=None, id_column="id", window=None, pipeline=None):
    """Score chunks of a table of ids on a Dask cluster, in order.

    Every chunk becomes one task: a worker loads its images (from the
    worker's own file system) and returns their class probabilities. The
    model is sent to each worker once and loaded there once per process.
    At most ``window`` chunks are in flight, so memory stays bounded on the
    client however long ``chunks`` is.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.
    model : str, path-like or Pipeline
        A model file written by :func:`skimgclf.save`, or a fitted
        ``Pipeline(ImageFolderLoader, CNNClassifier)`` (saved the same way
        before it is sent).
    chunks : iterable of DataFrame
        The table, chunk by chunk, with the ids in ``id_column``.
    image_dir : str, path-like or None, default=None
        Folder of the images, the same absolute path on every worker.
        ``None`` keeps the loader's own ``image_dir``.
    id_column : str, default="id"
        The column of ids.
    window : int or None, default=None
        Chunks in flight at once; ``None`` is twice the cluster's threads.
    pipeline : Pipeline or None, default=None
        ``model`` already loaded, when ``model`` is a file (saves loading it
        here again to read the loader's parameters).

    Yields
    ------
    chunk : DataFrame
        The next chunk, as given.
    proba : ndarray of shape (len(chunk), n_classes)
        Its probabilities, in the order of the model's ``classes_``.

    Raises
    ------
    InputError
        A loading error from a worker, its ``row`` counted from the start of
        the table.
    """
    distributed_module()
    loader, _ = split_pipeline(_local_pipeline(model, pipeline))
    root = loader.image_dir if image_dir is None else image_dir
    params = {"image_dir": os.path.abspath(os.fspath(root)), "id_column": id_column}
    blob, digest = _model_blob(model)
    blob_future = client.scatter(blob, broadcast=True, hash=False)
    if window is None:
        window = 2 * max(1, sum(client.nthreads().values()))
    try:
        yield from _in_window(client, chunks, max(1, int(window)),
                              lambda chunk: client.submit(_score_partition, digest, blob_future, params,
                                                          chunk[[id_column]], pure=False))
    finally:
        client.cancel([blob_future])


def _local_pipeline(model, pipeline):
    """The pipeline ``model`` is, or holds: ``pipeline`` if given, the file loaded here, or ``model`` itself."""
    if pipeline is not None:
        return pipeline
    if isinstance(model, (str, os.PathLike)):
        from ..model.persistence import load

        return load(model)
    return model


def _in_window(client, chunks, window, submit):
    """Yield ``(chunk, result)`` in order, with at most ``window`` futures (``submit(chunk)``) in flight.

    The futures still pending when the caller stops (or an error) are cancelled.
    """
    pending = deque()
    start = 0
    try:
        for chunk in chunks:
            pending.append((chunk, start, submit(chunk)))
            start += len(chunk)
            while len(pending) >= window:
                yield _collect(pending.popleft())
        while pending:
            yield _collect(pending.popleft())
    finally:
        if pending:
            client.cancel([future for _, _, future in pending])


def _collect(item):
    chunk, start, future = item
    try:
        proba = future.result()
    except InputError as exc:
        if exc.row is None or not start:
            raise
        raise exc.at_row(exc.row + start) from None
    return chunk, proba
