"""Scaling benchmark: bounded memory when scoring many images, grid search on Dask.

Figures (each printed as it is measured, then as one Markdown table):

1. Peak memory (maximum resident set size, from the kernel) of
   ``skimgclf predict`` on N generated 28x28 PNG images, for N = 20,000 and
   200,000 (``--sizes``), each in a fresh process; beside it, the same model
   scoring the whole table at once (``model.predict_proba(table)``) for
   contrast. Bounded means: the peak does not grow with N.
2. Time of the same ``GridSearchCV`` (the embedded digits, 8x8) in one
   process and on a 2-worker Dask ``LocalCluster`` (``--workers``), in the
   same run; the ratio is the figure, absolute seconds depend on the machine.
3. Loading slow images (JPEGs resized) a second time with and without the
   on-disk cache (``ImageFolderLoader(cache_dir=...)``) in a fresh process.

Images are written to a temporary folder (``--tmp``), never into the
repository: a few hundred distinct PNGs (from ``SKIMGCLF_MNIST10K`` when
present, else drawn), and hard links to them for the rest, which is much
faster than encoding 200,000 files. Run:

    .venv/bin/python benchmarks/bench_scale.py              # everything
    .venv/bin/python benchmarks/bench_scale.py --quick      # small sizes, smoke run
    .venv/bin/python benchmarks/bench_scale.py --skip-search --sizes 20000 200000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MNIST10K = Path(os.environ.get("SKIMGCLF_MNIST10K", REPO.parent / "shared" / "data" / "mnist10k"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def log(message):
    print(message, flush=True)


# ------------------------------------------------------------------ data
def distinct_images(n, size=28, seed=0):
    """``n`` distinct uint8 images with labels: MNIST digits if present, else drawn blobs."""
    train = MNIST10K / "train.csv"
    if train.is_file():
        import pandas as pd
        from PIL import Image

        table = pd.read_csv(train, dtype=str).iloc[:n]
        images = [np.asarray(Image.open(MNIST10K / "train" / f"{i}.png").convert("L").resize((size, size)))
                  for i in table["id"]]
        return np.stack(images), table["label"].to_numpy()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.integers(0, 50, (n, size, size)).astype(np.uint8)
    h = size // 2
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        X[i, r * h:(r + 1) * h, c * h:(c + 1) * h] = 220
    return X, y.astype(str)


def write_folder(folder, n, images, prefix=""):
    """``n`` PNG files ``000000.png``...: the distinct ones encoded, the rest hard links."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    distinct = len(images)
    names = [f"{prefix}{i:06d}" for i in range(n)]
    for i in range(min(n, distinct)):
        ok, png = cv2.imencode(".png", images[i])
        assert ok
        (folder / f"{names[i]}.png").write_bytes(png.tobytes())
    for i in range(distinct, n):
        try:
            os.link(folder / f"{names[i % distinct]}.png", folder / f"{names[i]}.png")
        except OSError:  # no hard links here: copy
            shutil.copyfile(folder / f"{names[i % distinct]}.png", folder / f"{names[i]}.png")
    (folder.parent / f"{folder.name}.csv").write_text("id\n" + "\n".join(names) + "\n")
    return folder.parent / f"{folder.name}.csv"


def train_model(tmp, images, labels):
    """A small CNN on the distinct images, saved; returns the model file."""
    import pandas as pd
    from sklearn.pipeline import make_pipeline

    from skimgclf import CNNClassifier, ImageFolderLoader, save

    folder = tmp / "train"
    csv = write_folder(folder, len(images), images)
    table = pd.read_csv(csv, dtype=str)
    pipe = make_pipeline(ImageFolderLoader(folder, target_size=images.shape[1:3], verbose=0),
                         CNNClassifier(conv_blocks=2, filters=16, units=32, epochs=3, random_state=0))
    pipe.fit(table, labels)
    path = tmp / "model.skimgclf"
    save(pipe, path)
    return path


# --------------------------------------------------------------- memory
def _anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss(command):
    """Run ``command``; return (seconds, peak RSS MiB, peak anonymous RSS MiB) of that process.

    The peak RSS is the kernel's (``ru_maxrss``); it counts the pages of
    memory-mapped files too, which the system can drop at any time. The
    anonymous part (heap, arrays in memory) is what a data set larger than
    memory must not grow: sampled every 20 ms from ``/proc/PID/status``.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    anon = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        anon = max(anon, _anon_kib(proc.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[:4]}... failed ({proc.returncode}):\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, anon / 1024  # KiB on Linux


WHOLE_TABLE = textwrap.dedent("""
    import sys, pandas as pd, skimgclf
    model = skimgclf.load(sys.argv[1])
    model.set_params(imagefolderloader__image_dir=sys.argv[3])
    proba = model.predict_proba(pd.read_csv(sys.argv[2], dtype=str)[["id"]])
    assert len(proba) > 0
""")


FIT = textwrap.dedent("""
    import sys, numpy as np, pandas as pd
    from skimgclf import CNNClassifier, ImageFolderLoader
    csv, folder, labels, cache_dir = sys.argv[1:5]
    table = pd.read_csv(csv, dtype=str)
    y = np.load(labels)[np.arange(len(table)) % len(np.load(labels))]
    X = ImageFolderLoader(folder, cache=False, cache_dir=None if cache_dir == "-" else cache_dir,
                          verbose=0).fit_transform(table)
    CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=1, batch_size=256, random_state=0).fit(X, y)
""")


def bench_memory(tmp, sizes, chunk_size, train):
    images, labels = distinct_images(500)
    np.save(tmp / "labels.npy", np.asarray(labels, dtype=str))
    t = time.perf_counter()
    model = train_model(tmp, images, labels)
    log(f"model trained on {len(images)} distinct images in {time.perf_counter() - t:.1f} s")
    rows = []
    for n in sizes:
        t = time.perf_counter()
        folder = tmp / f"score{n}"
        csv = write_folder(folder, n, images)
        log(f"{n:,} images generated in {time.perf_counter() - t:.1f} s ({folder})")
        out = tmp / f"pred{n}.csv"
        row = {"n": n}
        row["predict"] = peak_rss([sys.executable, "-m", "skimgclf", "predict", str(model), str(csv),
                                   "--images", str(folder), "--out", str(out), "--quiet",
                                   "--chunk-size", str(chunk_size)])
        with open(out) as fh:
            assert sum(1 for _ in fh) - 1 == n
        row["whole"] = peak_rss([sys.executable, "-c", WHOLE_TABLE, str(model), str(csv), str(folder)])
        if train:
            row["fit_ram"] = peak_rss([sys.executable, "-c", FIT, str(csv), str(folder), str(tmp / "labels.npy"), "-"])
            cache = tmp / f"cache{n}"
            row["fit_disk"] = peak_rss([sys.executable, "-c", FIT, str(csv), str(folder), str(tmp / "labels.npy"),
                                        str(cache)])
            shutil.rmtree(cache)
        for key, what in (("predict", f"skimgclf predict, chunks of {chunk_size}"),
                          ("whole", "whole table at once (model.predict_proba)"),
                          ("fit_ram", "fit 1 epoch, images in memory"),
                          ("fit_disk", "fit 1 epoch, ImageFolderLoader(cache_dir=...)")):
            if key in row:
                seconds, rss, anon = row[key]
                log(f"  {what}: peak RSS {rss:,.0f} MiB (anonymous {anon:,.0f} MiB), {seconds:.1f} s")
        rows.append(row)
        shutil.rmtree(folder)
        out.unlink()
    return rows


# -------------------------------------------------------------- search
SEARCH = textwrap.dedent("""
    import json, os, sys, time
    import joblib, pandas as pd
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from skimgclf import CNNClassifier, ImageFolderLoader
    from skimgclf.datasets import make_sample_dataset

    workers, folder, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    paths = make_sample_dataset(folder) if not os.path.exists(os.path.join(folder, "train.csv")) else \\
        {"train_csv": os.path.join(folder, "train.csv"), "train_dir": os.path.join(folder, "train")}
    table = pd.read_csv(paths["train_csv"], dtype={"id": str})
    pipe = make_pipeline(
        ImageFolderLoader(os.path.abspath(paths["train_dir"]), target_size=(8, 8), verbose=0),
        CNNClassifier(conv_blocks=1, filters=16, epochs=epochs, batch_size=32, random_shift=0.0,
                      random_rotation=0.0, random_zoom=0.0, random_state=0))
    grid = {"cnnclassifier__units": [32, 64], "cnnclassifier__filters": [8, 16]}
    search = GridSearchCV(pipe, grid, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    if workers == 0:
        import skimgclf.model.classifier  # TensorFlow imported before the clock starts, as on the workers
        start = time.perf_counter()
        search.fit(table[["id"]], table["label"])
        up = 0.0
    else:
        from distributed import Client
        from skimgclf.cluster import local_cluster, warm_up
        t0 = time.perf_counter()
        cluster = local_cluster(workers)
        client = Client(cluster)
        warm_up(client)
        import skimgclf.model.classifier
        up = time.perf_counter() - t0
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            search.fit(table[["id"]], table["label"])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "startup": up, "best": search.best_score_,
                      "fit": float(search.cv_results_["mean_fit_time"].mean())}))
    if workers:
        client.close(); cluster.close()
""")


def bench_search(tmp, workers, epochs, repeats):
    import json

    folder = tmp / "digits"
    results = {0: [], workers: []}
    for _ in range(repeats):  # interleaved, so both sides see the same machine load
        for w in (0, workers):
            out = subprocess.run([sys.executable, "-c", SEARCH, str(w), str(folder), str(epochs)], env=ENV,
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-3000:])
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[w].append(result)
            where = "one process" if w == 0 else f"{w} Dask workers"
            extra = f" (+{result['startup']:.1f} s cluster start and TensorFlow import)" if w else ""
            log(f"  grid search, 4 candidates x 3 folds + refit, {where}: {result['seconds']:.1f} s{extra}, "
                f"best accuracy {result['best']:.3f}")
    best = {w: min(r["seconds"] for r in rs) for w, rs in results.items()}
    return best[0], best[workers], min(r["startup"] for r in results[workers])


# --------------------------------------------------------------- cache
LOAD = textwrap.dedent("""
    import sys, time, pandas as pd
    from skimgclf import ImageFolderLoader
    table = pd.read_csv(sys.argv[1], dtype=str)
    cache_dir = sys.argv[3] if len(sys.argv) > 3 else None
    start = time.perf_counter()
    X = ImageFolderLoader(sys.argv[2], suffix=".jpg", target_size=(32, 32), color_mode="rgb", cache=False,
                          cache_dir=cache_dir, verbose=0).transform(table)
    print(time.perf_counter() - start)
""")


def bench_disk_cache(tmp, n):
    from PIL import Image

    folder = tmp / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)) for _ in range(50)]
    for i in range(n):
        if i < len(base):
            base[i].save(folder / f"{i:05d}.jpg", quality=90)
        else:
            os.link(folder / f"{i % len(base):05d}.jpg", folder / f"{i:05d}.jpg")
    csv = tmp / "photos.csv"
    csv.write_text("id\n" + "\n".join(f"{i:05d}" for i in range(n)) + "\n")
    cache = tmp / "cache"

    def run(*extra):
        out = subprocess.run([sys.executable, "-c", LOAD, str(csv), str(folder), *extra], env=ENV,
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    plain = min(run() for _ in range(2))
    first = run(str(cache))
    cached = min(run(str(cache)) for _ in range(2))
    log(f"  {n:,} JPEGs 96x128 -> 32x32 rgb: decoding {plain:.2f} s; with cache_dir: first load {first:.2f} s, "
        f"later loads {cached:.2f} s ({plain / cached:.1f}x faster)")
    return n, plain, first, cached


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--photos", type=int, default=5000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-train", action="store_true", help="no training figures in the memory part")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--tmp", default=None, help="folder for the generated images (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.epochs, args.repeats, args.photos = [2000, 6000], 1, 1, 500
    tmp = Path(tempfile.mkdtemp(prefix="skimgclf-scale-", dir=args.tmp))
    lines = [(f"cores: {len(os.sched_getaffinity(0))}, load average at start: "
              f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"), ""]
    try:
        if not args.skip_memory:
            log("== peak memory while scoring (and training)")
            rows = bench_memory(tmp, args.sizes, args.chunk_size, not args.skip_train)
            lines += ["Peak RSS (anonymous part in brackets: heap and in-memory arrays) and time, fresh process:",
                      "", "| images | what | peak RSS | anonymous | time |", "|---:|---|---:|---:|---:|"]
            for row in rows:
                for key, what in (("predict", f"`skimgclf predict` (chunks of {args.chunk_size})"),
                                  ("whole", "`model.predict_proba(whole table)`"),
                                  ("fit_ram", "load + fit 1 epoch, in memory"),
                                  ("fit_disk", "load + fit 1 epoch, `cache_dir=`")):
                    if key in row:
                        seconds, rss, anon = row[key]
                        lines.append(f"| {row['n']:,} | {what} | {rss:,.0f} MiB | {anon:,.0f} MiB | {seconds:.1f} s |")
            lines.append("")
        if not args.skip_search:
            log("== grid search: one process vs Dask workers")
            serial, spread, up = bench_search(tmp, args.workers, args.epochs, args.repeats)
            lines += ["| grid search (digits, 4 x 3 folds) | seconds (best of runs) |", "|---|---:|",
                      f"| one process (TensorFlow on all cores) | {serial:.1f} |",
                      (f"| {args.workers} Dask workers, 1 task + cores/{args.workers} TF threads each | "
                       f"{spread:.1f} (+{up:.1f} start) |"),
                      f"| ratio one process / Dask | {serial / spread:.2f} |", ""]
        if not args.skip_cache:
            log("== on-disk cache of decoded images")
            n, plain, first, cached = bench_disk_cache(tmp, args.photos)
            lines += ["| load (fresh process) | seconds |", "|---|---:|",
                      f"| {n:,} JPEGs decoded and resized | {plain:.2f} |",
                      f"| same, first load with `cache_dir` (decode + store) | {first:.2f} |",
                      f"| same, later loads with `cache_dir` | {cached:.2f} ({plain / cached:.1f}x) |", ""]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("")
    log("\n".join(lines))


if __name__ == "__main__":
    main()
