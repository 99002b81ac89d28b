"""From a table of ids to an array of images: ids, paths, decoding, caches, the loader.

The flow, one module each::

    ids.py        table cells -> id text
    paths.py      ids -> files inside the image folder (the one resolver)
    decode.py     one file -> uint8 pixels (fast paths, Pillow, bombs)
    memcache.py   process-wide caches of decoded images and loaded arrays
    watch.py      inotify: has a folder changed?
    diskcache.py  decoded images on disk (memory maps + SQLite index)
    detect.py     what a folder holds: suffix, colour mode, size
    tables.py     CSV tables as text (the command line's input)
    loader.py     ImageFolderLoader, the estimator

Nothing here imports TensorFlow.
"""
