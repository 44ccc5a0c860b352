"""Reading prepared records back: the photos as one memory-mapped uint8 file.

The first load writes the photos of the prepared records into a .npy file beside them (the
scores, keys, fingerprints and masks into an .npz), and every load maps that file: a data set
larger than memory still trains, and the processes of one host share its pages.
"""

import glob
import os
import time
import zipfile

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from rsrl_jax.data import builders, cache_lock, prepared
from rsrl_jax.data.builders import READ_CHUNK

PHOTOS_FILE_SUFFIX = "_photos.npy"  # the decoded photos beside the records, memory-mapped
# scores, keys, fingerprints (true scores, masks): a reuse reads no record
LABELS_FILE_SUFFIX = "_labels.npz"
TEXT_FIELDS = ("key", "fingerprint", "pixels", "phash")  # str per photo


def read_splits(builder: builders.PhotoBuilder, splits: list[str]) -> dict[str, np.ndarray]:
    """The records of `splits`, concatenated in that order, as numpy arrays.

    Scores, keys and masks are held in memory. The photos are written once into a uint8
    .npy file beside the records (the rest into an .npz, so that later loads read no record)
    and memory-mapped from it: the OS pages photos in as batches ask for them, so a data set
    larger than memory (AVA at 256px is ~50 GB) still trains, and the processes of one host
    share those pages. With several processes, process 0 writes the files first and the
    others then map them (or write their own where storage is not shared). Where the folder
    cannot be written, the photos are held in memory.
    """
    path = os.path.join(builder.data_dir, "+".join(splits) + PHOTOS_FILE_SUFFIX)
    if jax.process_count() > 1 and jax.process_index() != 0:
        multihost_utils.sync_global_devices("rsrl_jax: photo file written")
        return _read_records(builder, splits, path)
    out = _read_records(builder, splits, path)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("rsrl_jax: photo file written")
    return out


def _read_records(
    builder: builders.PhotoBuilder, splits: list[str], path: str
) -> dict[str, np.ndarray]:
    """The records of `splits`, photos mapped from `path`: saved beside it, else read in chunks.

    The check and the write hold the prepared folder's lock, so a run started at the same
    time maps the file this one writes instead of writing (and removing) its own.
    """
    n = sum(builder.info.splits[split].num_examples for split in splits)
    shape = (n, builder.size, builder.size, 3)
    labels_path = path.removesuffix(PHOTOS_FILE_SUFFIX) + LABELS_FILE_SUFFIX
    saved = _saved_photos(path, labels_path, shape, warn=False)
    if saved is not None:
        return saved
    with cache_lock.file_lock(prepared.lock_path(builder), f"writing {path}") as locked:
        saved = _saved_photos(path, labels_path, shape, warn=True)  # the waited-for one's
        if saved is not None:
            return saved
        return _write_photo_file(builder, splits, path, labels_path, shape, locked)


def _saved_photos(path: str, labels_path: str, shape: tuple, warn: bool) -> dict | None:
    """The photo file mapped and its labels, if both are there and fit `shape` (else None)."""
    images = _mapped_photos(path, shape, warn)
    labels = _saved_labels(labels_path, shape[0]) if images is not None else None
    return None if labels is None else {**labels, "image": images}


def _write_photo_file(
    builder: builders.PhotoBuilder,
    splits: list[str],
    path: str,
    labels_path: str,
    shape: tuple,
    locked: bool,
) -> dict[str, np.ndarray]:
    """Reads the records into a new photo file at `path` (or memory) and the labels file."""
    n, size = shape[0], shape[1]
    new_file, fill = _new_photo_file(path, shape, remove_stale=locked)
    data_sources = [builder.as_data_source(split=split) for split in splits]
    out = {
        "score": np.empty(n, np.int32),
        "key": np.empty(n, object),
        "fingerprint": np.empty(n, object),
        "pixels": np.empty(n, object),
        "phash": np.empty(n, object),
    }
    if builder.with_true_scores:
        out["true_score"] = np.empty(n, np.int32)
    if builder.with_masks:
        out["mask"] = np.empty((n, size, size), bool)
    start, lo = time.perf_counter(), 0
    for source in data_sources:
        for first in range(0, len(source), READ_CHUNK):
            records = source.__getitems__(range(first, min(first + READ_CHUNK, len(source))))
            hi = lo + len(records)
            for name, array in out.items():
                array[lo:hi] = [r[name] for r in records]
            fill[lo:hi] = [r["image"] for r in records]
            lo = hi
    for name in TEXT_FIELDS:
        out[name] = np.array([k.decode() if isinstance(k, bytes) else k for k in out[name]])
    if new_file is not None:
        fill.flush()
        del fill
        _save_labels(labels_path, out)
        os.replace(new_file, path)  # last: a photo file under its final name is complete
        images = np.load(path, mmap_mode="r")
    else:
        images = fill
    out["image"] = images
    rate = n / max(time.perf_counter() - start, 1e-9)
    logging.info("read %d records of %s (%.0f images/s)", n, "+".join(splits), rate)
    return out


def _mapped_photos(path: str, shape: tuple, warn: bool = True) -> np.ndarray | None:
    """The photo file at `path` memory-mapped, if it is there and has `shape` (else None)."""
    if not os.path.exists(path):
        return None
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        if warn:
            logging.warning("%s is unreadable (%s): writing it again", path, e)
        return None
    if images.shape == shape and images.dtype == np.uint8:
        return images
    if warn:
        found = f"{images.shape} {images.dtype}"
        logging.warning("%s holds %s, not %s uint8: writing it again", path, found, shape)
    return None


def _saved_labels(path: str, n: int) -> dict[str, np.ndarray] | None:
    """Scores, keys, fingerprints (and masks) saved beside a photo file, if readable, whole
    and `n` long."""
    try:
        with np.load(path) as saved:
            labels = {name: saved[name] for name in saved.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    whole = all(len(labels.get(name, ())) == n for name in ("score", *TEXT_FIELDS))
    return labels if whole else None


def _save_labels(path: str, labels: dict[str, np.ndarray]) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        np.savez(f, **labels)
    os.replace(temporary, path)


def _new_photo_file(path: str, shape: tuple, remove_stale: bool) -> tuple[str | None, np.ndarray]:
    """(temporary file name, writable map) for a new photo file, or (None, array in memory).

    `remove_stale` (holding the lock: no other process is writing one) removes the
    temporary files of runs killed mid-write.
    """
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        for stale in glob.glob(glob.escape(path) + ".*.tmp") if remove_stale else ():
            os.remove(stale)
        return temporary, np.lib.format.open_memmap(temporary, "w+", np.uint8, shape)
    except OSError as e:
        logging.warning("cannot write %s (%s): holding the photos in memory", path, e)
        return None, np.empty(shape, np.uint8)
