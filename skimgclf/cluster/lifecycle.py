"""Dask clusters for skimgclf: a local one that shares the cores, a check of the workers, a client.

Importing this module never imports Dask.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..errors import DaskSetupError
from .threads import _accepts_n_workers, configure_workers, cores, distributed_module, worker_env

__all__ = ["check_workers", "client_for", "local_cluster", "warm_up"]


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
    >>> from skimgclf.cluster import local_cluster              # doctest: +SKIP
    >>> with local_cluster(2) as cluster, Client(cluster) as client:   # doctest: +SKIP
    ...     with joblib.parallel_config(backend="dask"):
    ...         search.fit(train, train["label"])
    """
    distributed = distributed_module()
    n_workers, threads_per_worker = int(n_workers), int(threads_per_worker)
    if n_workers < 1 or threads_per_worker < 1:
        raise ValueError(f"n_workers and threads_per_worker must be at least 1; got {n_workers}, "
                         f"{threads_per_worker}")
    if tf_threads is None:
        tf_threads = max(1, cores() // (n_workers * threads_per_worker))
    env = {**worker_env(tf_threads), **kwargs.pop("env", {})}
    # Its HTTP server (dashboard, metrics) on a free port of this machine
    # only, not on every interface at 8787.
    kwargs.setdefault("dashboard_address", "127.0.0.1:0")
    kwargs.setdefault("processes", True)
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                    memory_limit=memory_limit, env=env, **kwargs)


def _import_quietly():
    from .._backend import import_backend

    import_backend()  # TensorFlow without its start-up lines on the worker's stderr
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
    distributed_module()
    workers = list(client.scheduler_info(**({"n_workers": -1} if _accepts_n_workers(client) else {}))["workers"])
    futures = [client.submit(_import_quietly, workers=[w], allow_other_workers=False, pure=False)
               for w in workers]
    client.gather(futures)
    return len(workers)


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


def _quiet_logs():
    """Raise Dask's loggers in this process to ERROR; returns what puts their levels back."""
    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.client", "distributed.worker",
                                                    "distributed.scheduler", "distributed.nanny")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)

    def restore():
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return restore


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
def client_for(scheduler=None, n_local=None, *, tf_threads=None, image_dirs=(), timeout=30, warm=True,
               quiet=False):
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
    quiet : bool, default=False
        Keep the cluster's own logs off this process's standard error: a
        local cluster's workers log only critical events and run TensorFlow
        with ``TF_CPP_MIN_LOG_LEVEL=3``, and Dask's loggers in this process
        only errors. A failed task still raises here, so the caller reports
        it (the command line does, on one line, under ``--quiet``).

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
    distributed = distributed_module()
    if (scheduler is None) == (n_local is None):
        raise ValueError("give exactly one of scheduler and n_local")
    with contextlib.ExitStack() as stack:
        if quiet:
            stack.callback(_quiet_logs())
        if scheduler is not None:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout=timeout))
            except (OSError, TimeoutError) as exc:
                raise DaskSetupError(f"no Dask scheduler answers at {scheduler} ({exc})") from None
            configure_workers(client, tf_threads)
        else:
            stack.callback(_quiet_nanny_close())
            extra = {"silence_logs": logging.CRITICAL, "env": {"TF_CPP_MIN_LOG_LEVEL": "3"}} if quiet else {}
            cluster = stack.enter_context(local_cluster(int(n_local), tf_threads=tf_threads, **extra))
            client = stack.enter_context(distributed.Client(cluster))
        check_workers(client, image_dirs)
        if warm:
            warm_up(client)
        yield client
