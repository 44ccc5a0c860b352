"""Two runs share one data cache: a preparation is done once, and a killed one poisons nothing.

Processes that prepare the same data at once take a file lock beside the prepared folder:
one builds, the others wait and reuse it. A build killed mid-way leaves TFDS's
`incomplete.*` folder (and, on storage without atomic renames, a half-copied version
folder); the next run cleans it up and builds again.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import photo_factory as pf
import pytest

from conftest import tiny_config
from rsrl_jax.data import datasets, photo_file, prepared
from rsrl_jax.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports everything, says it is ready, waits for the go file, then prepares and reads the
# data: both processes reach the cache within milliseconds of each other.
WORKER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    sys.path.insert(0, "tests")
    from absl import logging
    from conftest import tiny_config
    from rsrl_jax.data import datasets
    logging.set_verbosity(logging.INFO)
    logging.use_absl_handler()
    ready, go, out, overrides = sys.argv[1], sys.argv[2], sys.argv[3], eval(sys.argv[4])
    config = tiny_config(overrides)
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    data = datasets.load(config)
    digest = hashlib.sha256()
    for array in (data.images, data.labels, data.masks, data.keys.astype(str)):
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    open(out, "w").write(digest.hexdigest())
    """
).replace("import hashlib,", "import numpy as np, hashlib,")


def start_worker(tmp_path, i, overrides):
    args = [str(tmp_path / f"ready{i}"), str(tmp_path / "go"), str(tmp_path / f"out{i}")]
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args, repr(overrides)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout=120.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_two_processes_preparing_the_same_data_at_once_both_get_it(tmp_path):
    overrides = {
        "data.num_examples": 40,
        "data.image_size": 64,
        "data.cache_dir": repr(str(tmp_path / "cache")),
    }
    workers = [start_worker(tmp_path, i, overrides) for i in range(2)]
    wait_for(lambda: all(os.path.exists(tmp_path / f"ready{i}") for i in range(2)))
    (tmp_path / "go").write_text("")
    results = [w.communicate(timeout=300) for w in workers]
    for w, (_, stderr) in zip(workers, results, strict=True):
        assert w.returncode == 0, stderr[-3000:]
    digests = [(tmp_path / f"out{i}").read_text() for i in range(2)]
    assert digests[0] == digests[1]
    logs = "".join(stderr for _, stderr in results)
    assert logs.count("preparing synthetic data once") == 1, logs[-3000:]
    assert "waiting for another process preparing synthetic data" in logs, logs[-3000:]
    # The data are those of a run on its own.
    data = datasets.load(tiny_config(overrides))
    want = datasets.load(tiny_config({**overrides, "data.cache_dir": repr(str(tmp_path / "c2"))}))
    np.testing.assert_array_equal(data.images, want.images)
    np.testing.assert_array_equal(data.labels, want.labels)


def write_folder(root, n):
    """`n` small JPEGs with scores 1..4, enough that decoding takes a moment."""
    os.makedirs(root / "images")
    rng = np.random.default_rng(0)
    for i in range(n):
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        pf.save_rgb_jpeg(str(root / "images" / f"p{i:04d}.jpg"), colour, size=(320, 240))
    rows = [f"p{i:04d}.jpg,{1 + i % 4}" for i in range(n)]
    (root / "scores.csv").write_text("filename,score\n" + "\n".join(rows) + "\n")


def folder_overrides(tmp_path, cache):
    return {
        "data.name": "'folder'",
        "data.dir": repr(str(tmp_path / "photos")),
        "data.cache_dir": repr(str(tmp_path / cache)),
        "data.image_size": 64,
    }


def incomplete_dirs(builder):
    parent = os.path.dirname(builder.data_dir)
    if not os.path.isdir(parent):
        return []
    return [d for d in os.listdir(parent) if d.startswith("incomplete.")]


def test_a_build_killed_midway_is_cleaned_up_and_built_again(tmp_path):
    write_folder(tmp_path / "photos", 400)
    overrides = folder_overrides(tmp_path, "cache")
    config = tiny_config(overrides)
    builder, _ = prepared.make_builder(config)
    worker = start_worker(tmp_path, 0, overrides)
    wait_for(lambda: os.path.exists(tmp_path / "ready0"))
    (tmp_path / "go").write_text("")
    try:  # killed while TFDS writes into its incomplete.* folder
        wait_for(lambda: incomplete_dirs(builder) or worker.poll() is not None)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    assert worker.returncode == -signal.SIGKILL
    assert incomplete_dirs(builder) and not builder.is_prepared()

    data = datasets.load(config)
    assert len(data) == 400 and incomplete_dirs(builder) == []
    clean = datasets.load(tiny_config(folder_overrides(tmp_path, "clean")))
    np.testing.assert_array_equal(data.images, clean.images)
    np.testing.assert_array_equal(data.labels, clean.labels)


def test_a_half_copied_version_folder_is_not_trusted(tmp_path):
    """Storage without atomic renames (a bucket) can leave a version folder half there: with
    no records, or a dataset_info.json cut short. Neither is reused as prepared data."""
    write_folder(tmp_path / "photos", 12)
    config = tiny_config(folder_overrides(tmp_path, "cache"))
    want = datasets.load(config)
    builder, _ = prepared.make_builder(config)
    info = os.path.join(builder.data_dir, "dataset_info.json")
    text = open(info).read()
    for name in os.listdir(builder.data_dir):
        if "array_record" in name:
            os.remove(os.path.join(builder.data_dir, name))
    with open(info, "w") as f:
        f.write(text[: len(text) // 2])
    os.remove(os.path.join(builder.data_dir, prepared.COMPLETE_FILE))
    data = datasets.load(config)
    np.testing.assert_array_equal(data.images, want.images)
    np.testing.assert_array_equal(data.labels, want.labels)
    assert prepared.make_builder(config)[0].is_prepared()


def test_prepared_data_are_reused_where_no_lock_can_be_taken(tmp_path, caplog):
    """A cache folder that cannot be written (read-only storage): reused, with a warning."""
    overrides = {"data.num_examples": 12, "data.cache_dir": repr(str(tmp_path / "cache"))}
    config = tiny_config(overrides)
    want = datasets.load(config)
    builder, _ = prepared.make_builder(config)
    os.remove(os.path.join(builder.data_dir, "train" + photo_file.PHOTOS_FILE_SUFFIX))
    lock = prepared.lock_path(builder)
    os.remove(lock)
    os.makedirs(lock)  # stands for a lock file that cannot be created
    data = datasets.load(config)
    np.testing.assert_array_equal(data.images, want.images)
    assert "cannot take the lock" in caplog.text


def test_a_cache_folder_that_cannot_be_written_is_named(tmp_path):
    (tmp_path / "a_file").write_text("")
    cache = tmp_path / "a_file" / "cache"  # cannot be created, even by root
    config = tiny_config({"data.num_examples": 12, "data.cache_dir": repr(str(cache))})
    with pytest.raises(
        DataError, match=r"cannot prepare synthetic data in .*--config.data.cache_dir"
    ):
        datasets.load(config)
