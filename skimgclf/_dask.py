"""Running skimgclf on a Dask cluster: grid search and batch scoring.

Everything that knows about Dask lives here, and Dask is imported only when
one of these functions runs: ``dask[distributed]`` is an optional extra
(``pip install 'skimgclf[dask]'``) and ``import skimgclf._dask`` works
without it.

- :func:`local_cluster` starts a ``distributed.LocalCluster`` of worker
  processes whose TensorFlow thread pools share the machine's cores instead
  of each taking all of them.
- :func:`configure_workers` does the same for the workers of an existing
  cluster (``dask-scheduler`` / ``dask-worker``), and
  :func:`check_workers` verifies that they run skimgclf and can see the
  image folders.
- With either, ``GridSearchCV`` over a ``Pipeline(ImageFolderLoader,
  CNNClassifier)`` runs on the cluster under
  ``joblib.parallel_config(backend="dask")``: each task receives the table of
  ids and the pipeline (both small), and the worker reads the images itself.
- :func:`score_chunks` scores the chunks of a large table on the workers,
  loading the model once per worker process, and gives the results back in
  the table's order; ``skimgclf predict --dask-scheduler`` writes them with
  the same code as a prediction on one machine.

Images are read where the tasks run: the image folder must be reachable at
the same absolute path on every worker (a shared file system, or the same
copy on every machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict, deque

__all__ = [
    "DaskSetupError",
    "check_workers",
    "client_for",
    "configure_workers",
    "local_cluster",
    "score_chunks",
    "warm_up",
    "worker_env",
    "worker_threads_info",
]

_INSTALL_HINT = "install it with: pip install 'skimgclf[dask]' (or 'dask[distributed]')"
#: Name under which the thread settings are registered on a cluster.
_PLUGIN_NAME = "skimgclf-threads"


class DaskSetupError(ValueError):
    """A Dask cluster cannot run skimgclf's work as asked.

    Raised when no scheduler answers, a worker lacks skimgclf (or has
    another version), or an image folder does not exist on a worker. The
    message names the worker and the path.
    """


def _distributed():
    """Import ``distributed``, or say how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"running on a Dask cluster needs dask.distributed; {_INSTALL_HINT}") from exc
    return distributed


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------- threads
def worker_env(tf_threads):
    """Environment variables that give a worker process ``tf_threads`` compute threads.

    TensorFlow sizes its thread pools from the machine's cores in every
    process, so several worker processes on one machine would run many times
    more threads than there are cores. These variables, set before the
    worker imports TensorFlow, give each one its share.

    Parameters
    ----------
    tf_threads : int
        Threads for one worker process's TensorFlow operations (its
        intra-op pool) and for OpenMP/BLAS libraries.

    Returns
    -------
    dict of str to str
        ``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS`` (1),
        ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
        ``TF_CPP_MIN_LOG_LEVEL`` (2) and ``SKIMGCLF_WORKER_THREADS``.

    Examples
    --------
    >>> from skimgclf._dask import worker_env
    >>> worker_env(2)["TF_NUM_INTRAOP_THREADS"]
    '2'
    """
    n = int(tf_threads)
    if n < 1:
        raise ValueError(f"tf_threads must be at least 1; got {tf_threads!r}")
    n = str(n)
    return {
        "TF_NUM_INTRAOP_THREADS": n,
        # Inter-op parallelism runs independent operations side by side; a
        # small CNN has few, and every extra thread competes for the cores.
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "SKIMGCLF_WORKER_THREADS": n,
    }


def _apply_threads(tf_threads):
    """In a worker process: set the variables, and TensorFlow's pools if still possible.

    Returns a short description of what took effect.
    """
    import sys

    env = worker_env(tf_threads)
    before = {k: os.environ.get(k) for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    os.environ.update(env)
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return "set"  # TensorFlow reads the variables when it starts
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(tf_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow's runtime already started: its pools keep the sizes
        # they started with, from these variables or from the API.
        started = (tf.config.threading.get_intra_op_parallelism_threads() or before["TF_NUM_INTRAOP_THREADS"],
                   tf.config.threading.get_inter_op_parallelism_threads() or before["TF_NUM_INTEROP_THREADS"])
        wanted = (env["TF_NUM_INTRAOP_THREADS"], env["TF_NUM_INTEROP_THREADS"])
        return "set" if tuple(str(v) for v in started) == wanted else "too late"
    return "set"


def worker_threads_info():
    """What the current process's thread settings are (run it on a worker).

    Returns
    -------
    dict
        ``env``: the thread variables as set in this process;
        ``tf_started``: whether TensorFlow's runtime has started;
        ``tf_compute_threads``: threads of TensorFlow's inter-op pool (Linux,
        after start), the pool ``TF_NUM_INTEROP_THREADS`` sizes.
    """
    import sys

    names = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "SKIMGCLF_WORKER_THREADS")
    info = {"env": {k: os.environ.get(k) for k in names}, "tf_started": False, "tf_compute_threads": None}
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            from tensorflow.python.eager import context

            info["tf_started"] = context.context()._context_handle is not None
        except Exception:  # noqa: BLE001 - private API: report unknown
            info["tf_started"] = None
    try:
        tasks = os.listdir("/proc/self/task")
        count = 0
        for task in tasks:
            try:
                with open(f"/proc/self/task/{task}/comm") as fh:
                    count += fh.read().strip() == "tf_Compute"
            except OSError:
                pass
        info["tf_compute_threads"] = count if info["tf_started"] else None
    except OSError:
        pass
    return info


class _ThreadsPlugin:
    """A worker plugin giving every worker, present and future, its thread share."""

    name = _PLUGIN_NAME

    def __init__(self, tf_threads=None, by_host=None):
        self.tf_threads = tf_threads
        self.by_host = dict(by_host or {})

    def _threads_for(self, worker):
        if self.tf_threads is not None:
            return int(self.tf_threads)
        host = worker.address.rsplit(":", 1)[0].split("://")[-1]
        if host in self.by_host:
            return self.by_host[host]
        return max(1, _cores() // max(1, int(getattr(worker, "nthreads", 1) or 1)))

    def setup(self, worker):
        threads = self._threads_for(worker)
        worker._skimgclf_threads = (threads, _apply_threads(threads))

    def teardown(self, worker):  # pragma: no cover - nothing to undo
        pass


def _as_worker_plugin(plugin):
    distributed = _distributed()
    base = distributed.WorkerPlugin

    class ThreadsPlugin(_ThreadsPlugin, base):
        pass

    out = ThreadsPlugin(plugin.tf_threads, plugin.by_host)
    return out


def local_cluster(n_workers=2, *, threads_per_worker=1, tf_threads=None, memory_limit="auto", **kwargs):
    """Start a Dask ``LocalCluster`` of worker processes that share the cores.

    Each worker is a separate process (``processes=True``), started with
    :func:`worker_env` so that its TensorFlow pools use ``tf_threads``
    threads: ``n_workers * threads_per_worker * tf_threads`` stays within
    the machine's cores by default.

    Parameters
    ----------
    n_workers : int, default=2
        Worker processes.
    threads_per_worker : int, default=1
        Tasks each worker runs at once. One network per process trains
        fastest: TensorFlow already parallelises inside it.
    tf_threads : int or None, default=None
        TensorFlow threads per worker process. ``None`` divides the cores of
        this machine among ``n_workers * threads_per_worker``.
    memory_limit : str, float or int, default="auto"
        Passed to ``LocalCluster``: each worker's memory limit.
    **kwargs : dict
        Other ``distributed.LocalCluster`` arguments (``env`` entries are
        added to the thread variables). The scheduler's HTTP server (the
        dashboard) listens on a free port of 127.0.0.1 unless
        ``dashboard_address`` says otherwise.

    Returns
    -------
    distributed.LocalCluster
        The running cluster; connect with ``distributed.Client(cluster)`` and
        close both when done (they are context managers).

    Raises
    ------
    ImportError
        If ``dask[distributed]`` is not installed.

    Examples
    --------
    >>> from distributed import Client                        # doctest: +SKIP
    >>> from skimgclf._dask import local_cluster              # doctest: +SKIP
    >>> with local_cluster(2) as cluster, Client(cluster) as client:   # doctest: +SKIP
    ...     with joblib.parallel_config(backend="dask"):
    ...         search.fit(train, train["label"])
    """
    distributed = _distributed()
    n_workers, threads_per_worker = int(n_workers), int(threads_per_worker)
    if n_workers < 1 or threads_per_worker < 1:
        raise ValueError(f"n_workers and threads_per_worker must be at least 1; got {n_workers}, "
                         f"{threads_per_worker}")
    if tf_threads is None:
        tf_threads = max(1, _cores() // (n_workers * threads_per_worker))
    env = {**worker_env(tf_threads), **kwargs.pop("env", {})}
    # Its HTTP server (dashboard, metrics) on a free port of this machine
    # only, not on every interface at 8787.
    kwargs.setdefault("dashboard_address", "127.0.0.1:0")
    kwargs.setdefault("processes", True)
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                    memory_limit=memory_limit, env=env, **kwargs)


def configure_workers(client, tf_threads=None):
    """Give the workers of a running cluster their share of the cores.

    Registers a worker plugin that sets :func:`worker_env` in every worker
    process, now and in workers that join later. It takes effect for
    TensorFlow only in processes that have not started it yet; start the
    workers fresh (``client.restart()``) if they have.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.
    tf_threads : int or None, default=None
        TensorFlow threads per worker process. ``None``: on each machine, its
        cores divided by the task threads of all workers on it (so
        ``dask-worker --nworkers 4 --nthreads 1`` on 8 cores gives 2 each).

    Returns
    -------
    dict
        Per worker address: ``(threads, "set" or "too late")``.
    """
    _distributed()
    by_host = {}
    if tf_threads is None:
        workers = client.scheduler_info(**({"n_workers": -1} if _accepts_n_workers(client) else {}))["workers"]
        cores = client.run(_cores)
        per_host = {}
        for address, info in workers.items():
            host = info.get("host") or address.rsplit(":", 1)[0].split("://")[-1]
            slot = per_host.setdefault(host, [0, cores.get(address, 1)])
            slot[0] += int(info.get("nthreads", 1))
        by_host = {host: max(1, n_cores // max(1, n_threads)) for host, (n_threads, n_cores) in per_host.items()}
    plugin = _as_worker_plugin(_ThreadsPlugin(tf_threads, by_host))
    client.register_plugin(plugin, name=_PLUGIN_NAME)
    return client.run(_reported_threads)


def _accepts_n_workers(client):
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _reported_threads(dask_worker=None):
    if dask_worker is None:  # pragma: no cover - client.run passes it
        from distributed import get_worker

        dask_worker = get_worker()
    return getattr(dask_worker, "_skimgclf_threads", None)


def _import_quietly():
    from .cli import _import_backend

    _import_backend()  # TensorFlow without its start-up lines on the worker's stderr
    return os.getpid()


def warm_up(client):
    """Import TensorFlow on every worker now, all at once, without its start-up log.

    Each worker process otherwise pays TensorFlow's import (seconds) in its
    first task. Importing does not start TensorFlow's runtime, so thread
    settings made afterwards still apply.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.

    Returns
    -------
    int
        The number of workers warmed up.
    """
    _distributed()
    workers = list(client.scheduler_info(**({"n_workers": -1} if _accepts_n_workers(client) else {}))["workers"])
    futures = [client.submit(_import_quietly, workers=[w], allow_other_workers=False, pure=False)
               for w in workers]
    client.gather(futures)
    return len(workers)


# -------------------------------------------------------------- checks
def _worker_view(dirs):
    import skimgclf

    return {"version": skimgclf.__version__, "missing": [d for d in dirs if not os.path.isdir(d)]}


def check_workers(client, image_dirs=()):
    """Check that every worker runs this skimgclf and sees the image folders.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.
    image_dirs : iterable of str or path-like, default=()
        Folders the tasks will read, as absolute paths.

    Returns
    -------
    int
        The number of workers checked.

    Raises
    ------
    DaskSetupError
        If the cluster has no workers, a worker cannot import skimgclf or has
        another version, or a folder does not exist on a worker. Folders must
        be at the same path on every worker (a shared file system).
    """
    import skimgclf

    dirs = [os.path.abspath(os.fspath(d)) for d in image_dirs]
    try:
        views = client.run(_worker_view, dirs, on_error="return")
    except TypeError:  # pragma: no cover - older distributed without on_error
        views = client.run(_worker_view, dirs)
    if not views:
        raise DaskSetupError(f"the Dask cluster at {client.scheduler.address} has no workers")
    for address, view in sorted(views.items()):
        if isinstance(view, BaseException):
            raise DaskSetupError(f"Dask worker {address} cannot run skimgclf "
                                 f"({view.__class__.__name__}: {view}); install it on every worker")
        if view["version"] != skimgclf.__version__:
            raise DaskSetupError(f"Dask worker {address} runs skimgclf {view['version']}, this process "
                                 f"{skimgclf.__version__}; install the same version everywhere")
        if view["missing"]:
            raise DaskSetupError(
                f"image folder {view['missing'][0]} does not exist on Dask worker {address}; the "
                "workers read the images themselves, so the folder must be at the same path on every "
                "worker (a shared file system)"
            )
    return len(views)


def _quiet_nanny_close():
    """Drop the nanny's "Worker process still alive after 4.0 seconds, killing" warning.

    Worker processes that imported TensorFlow take a few seconds to exit when
    a local cluster closes, and the nanny then ends them, as intended: not
    worth a warning on the command line. Returns the function that removes
    the filter again.
    """
    import logging

    logger = logging.getLogger("distributed.nanny")
    quiet = _CloseFilter()
    logger.addFilter(quiet)
    return lambda: logger.removeFilter(quiet)


class _CloseFilter:
    """A logging filter dropping the nanny's "still alive ... killing" warning."""

    def filter(self, record):
        return "still alive after" not in record.getMessage()


@contextlib.contextmanager
def client_for(scheduler=None, n_local=None, *, tf_threads=None, image_dirs=(), timeout=30, warm=True):
    """A connected ``distributed.Client``: to a scheduler, or to a new local cluster.

    Parameters
    ----------
    scheduler : str or None, default=None
        Address of a running scheduler (``tcp://host:8786``); its workers are
        given their thread share with :func:`configure_workers`.
    n_local : int or None, default=None
        Start :func:`local_cluster` with this many workers instead; it is
        closed when the block ends.
    tf_threads : int or None, default=None
        TensorFlow threads per worker process (``None``: share the cores).
    image_dirs : iterable of str, default=()
        Folders checked with :func:`check_workers`.
    timeout : float, default=30
        Seconds to wait for the scheduler.
    warm : bool, default=True
        Import TensorFlow on the workers before yielding (:func:`warm_up`).

    Yields
    ------
    distributed.Client
        The client, also the default one inside the block (for
        ``joblib.parallel_config(backend="dask")``).

    Raises
    ------
    DaskSetupError
        If the scheduler does not answer, or :func:`check_workers` fails.
    """
    distributed = _distributed()
    if (scheduler is None) == (n_local is None):
        raise ValueError("give exactly one of scheduler and n_local")
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout=timeout))
            except (OSError, TimeoutError) as exc:
                raise DaskSetupError(f"no Dask scheduler answers at {scheduler} ({exc})") from None
            configure_workers(client, tf_threads)
        else:
            stack.callback(_quiet_nanny_close())
            cluster = stack.enter_context(local_cluster(int(n_local), tf_threads=tf_threads))
            client = stack.enter_context(distributed.Client(cluster))
        check_workers(client, image_dirs)
        if warm:
            warm_up(client)
        yield client


# ------------------------------------------------------------- scoring
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
        from ._persistence import load

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


def _score_partition(digest, blob, loader_params, ids):
    """Run on a worker: probabilities of the images named by ``ids``."""
    from ._loader import ImageFolderLoader

    model = _worker_model(digest, blob)
    params = dict(loader_params)
    threads = os.environ.get("SKIMGCLF_WORKER_THREADS")
    if threads and params.get("n_jobs") is None:
        params["n_jobs"] = max(1, int(threads))
    # A loader of its own per task: the cached model is shared by the
    # worker's threads and is never changed.
    loader = ImageFolderLoader(**params)
    return model.steps[-1][1].predict_proba(loader.transform(ids))


def _model_blob(model):
    """``(bytes, sha256)`` of a model file, or of an estimator saved to one."""
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as fh:
            blob = fh.read()
    else:
        from ._persistence import save

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
    ValueError
        A loading error from a worker, with its "row N" counted from the
        start of the table.
    """
    _distributed()
    from sklearn.pipeline import Pipeline

    from ._loader import ImageFolderLoader

    if pipeline is not None:
        local = pipeline
    elif isinstance(model, (str, os.PathLike)):
        from ._persistence import load

        local = load(model)
    else:
        local = model
    if not (isinstance(local, Pipeline) and isinstance(local.steps[0][1], ImageFolderLoader)):
        raise TypeError("model must be a Pipeline whose first step is an ImageFolderLoader")
    params = local.steps[0][1].get_params()
    root = params["image_dir"] if image_dir is None else image_dir
    params.update(image_dir=os.path.abspath(os.fspath(root)), id_column=id_column, cache=False,
                  cache_dir=None, verbose=0)
    blob, digest = _model_blob(model)
    blob_future = client.scatter(blob, broadcast=True, hash=False)
    if window is None:
        window = 2 * max(1, sum(client.nthreads().values()))
    window = max(1, int(window))
    pending = deque()
    start = 0
    try:
        for chunk in chunks:
            future = client.submit(_score_partition, digest, blob_future, params,
                                   chunk[[id_column]], pure=False)
            pending.append((chunk, start, future))
            start += len(chunk)
            while len(pending) >= window:
                yield _collect(pending.popleft())
        while pending:
            yield _collect(pending.popleft())
    finally:
        if pending:
            client.cancel([future for _, _, future in pending])
        client.cancel([blob_future])


def _collect(item):
    from ._scoring import _shift_rows

    chunk, start, future = item
    try:
        proba = future.result()
    except ValueError as exc:
        shifted = _shift_rows(exc, start)
        if shifted is exc:
            raise
        raise shifted from None
    return chunk, proba
