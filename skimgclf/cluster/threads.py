"""TensorFlow's threads on Dask workers: each worker process gets its share of the cores.

TensorFlow sizes its thread pools from the machine's cores in every
process, so several worker processes on one machine would run many times
more threads than there are cores. Importing this module never imports Dask.
"""

from __future__ import annotations

import os

__all__ = ["configure_workers", "share_cores_with_processes", "worker_env", "worker_threads_info"]

_INSTALL_HINT = "install it with: pip install 'skimgclf[dask]' (or 'dask[distributed]')"
#: Name under which the thread settings are registered on a cluster.
_PLUGIN_NAME = "skimgclf-threads"


def distributed_module():
    """Import ``distributed``, or say how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"running on a Dask cluster needs dask.distributed; {_INSTALL_HINT}") from exc
    return distributed


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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
    >>> from skimgclf.cluster import worker_env
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


def share_cores_with_processes(n_jobs):
    """Give the ``n_jobs`` worker processes this process starts (joblib's) each their share of the cores.

    Sets ``TF_NUM_INTRAOP_THREADS`` (cores / processes) and
    ``TF_NUM_INTEROP_THREADS`` (1) in this process's environment, which the
    worker processes inherit before they import TensorFlow. A value the user
    set is kept.

    Parameters
    ----------
    n_jobs : int
        Worker processes, as joblib counts them (negative: one per core).

    Returns
    -------
    None
    """
    n_proc = os.cpu_count() or 1
    workers = n_proc if n_jobs < 0 else min(n_jobs, n_proc)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, n_proc // workers)))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


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
        return max(1, cores() // max(1, int(getattr(worker, "nthreads", 1) or 1)))

    def setup(self, worker):
        threads = self._threads_for(worker)
        worker._skimgclf_threads = (threads, _apply_threads(threads))

    def teardown(self, worker):  # pragma: no cover - nothing to undo
        pass


def _as_worker_plugin(plugin):
    distributed = distributed_module()
    base = distributed.WorkerPlugin

    class ThreadsPlugin(_ThreadsPlugin, base):
        pass

    out = ThreadsPlugin(plugin.tf_threads, plugin.by_host)
    return out


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
    distributed_module()
    by_host = {}
    if tf_threads is None:
        workers = client.scheduler_info(**({"n_workers": -1} if _accepts_n_workers(client) else {}))["workers"]
        worker_cores = client.run(cores)
        per_host = {}
        for address, info in workers.items():
            host = info.get("host") or address.rsplit(":", 1)[0].split("://")[-1]
            slot = per_host.setdefault(host, [0, worker_cores.get(address, 1)])
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
