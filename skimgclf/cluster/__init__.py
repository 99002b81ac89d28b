"""Running skimgclf on a Dask cluster: grid search and batch scoring.

Everything that knows about Dask lives here, and Dask is imported only when
one of these functions runs: ``dask[distributed]`` is an optional extra
(``pip install 'skimgclf[dask]'``) and ``import skimgclf.cluster`` works
without it. Three modules: :mod:`.threads` (TensorFlow's threads per
worker), :mod:`.lifecycle` (clusters, checks, clients) and :mod:`.scoring`.

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

from ..errors import DaskSetupError
from .lifecycle import check_workers, client_for, local_cluster, warm_up
from .scoring import score_chunks
from .threads import configure_workers, worker_env, worker_threads_info

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
