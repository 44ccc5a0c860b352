"""TFDS builders that decode photos once into array_record files, and reading them back.

Each builder writes the photos, decoded and resized to the stored square, as raw uint8
records (`array_record`, random access through `tfds.data_sources`; no TensorFlow needed to
build or read). Training then reads these records, never the original files.

Prepared data lives under `data.cache_dir` (default: `$TFDS_DATA_DIR`, else
`~/tensorflow_datasets`), in a folder keyed on everything that decides its content: the
source lists' bytes, each photo's size and modification time, the stored size and the data
options. Unchanged inputs reuse it; any change prepares a new one.

Bad examples: with `data.on_bad_example='error'` the first one stops the build with a message
naming the file and list line; with `'skip'` every one is left out and recorded (in the
prepared data's metadata, in the log, and in `workdir/skipped.jsonl`).
"""

import concurrent.futures
import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import time
import zipfile

import filelock
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from jax.experimental import multihost_utils

from rsrl_jax import errors
from rsrl_jax.data import photos, sources, synthetic
from rsrl_jax.errors import DataError

FORMAT_VERSION = 4  # bump when decoding changes what is stored (invalidates prepared data)
SKIPPED_FILE = "skipped.jsonl"
READ_CHUNK = 256  # records per random-access read
PHOTOS_FILE_SUFFIX = "_photos.npy"  # the decoded photos beside the records, memory-mapped
LABELS_FILE_SUFFIX = "_labels.npz"  # scores, keys, fingerprints (masks): a reuse reads no record
FINGERPRINT_HEX = 16  # hex digits of SHA-256 kept as a photo's content fingerprint (64 bits)
LOG_EVERY_S = 10.0
LOCK_LOG_EVERY_S = 60.0  # while waiting for another process's preparation
COMPLETE_FILE = "rsrl_jax_complete.json"  # written last into a finished preparation


class BadExample(errors.DataError):
    """A bad photo or list line met with `data.on_bad_example='error'`."""


def stored_size(config: ml_collections.ConfigDict) -> int:
    """Side of the stored square: `data.stored_size`, or `data.image_size` when 0."""
    return int(config.data.stored_size or config.data.image_size)


def cache_dir(config: ml_collections.ConfigDict) -> str:
    if config.data.cache_dir:
        return os.path.expanduser(config.data.cache_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def bad_example_error(problem: sources.Problem) -> BadExample:
    return BadExample(
        f"{problem.message()} (set config.data.on_bad_example=skip to leave bad examples out; "
        f"each is then recorded in the workdir's {SKIPPED_FILE})"
    )


class _PhotoBuilder(tfds.core.GeneratorBasedBuilder):
    """Common part: features, one array_record split per source split, skip bookkeeping."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Photos decoded once to upright RGB uint8 squares."}

    def __init__(self, *, size: int, data_dir: str, with_masks: bool = False, **kwargs):
        self.size = size
        self.with_masks = with_masks
        self.skipped: list[sources.Problem] = []
        super().__init__(data_dir=data_dir, file_format="array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            # Raw bytes: 1 byte a pixel, read with a memcpy (the default stores int64s).
            "image": tfds.features.Tensor(
                shape=(self.size, self.size, 3),
                dtype=np.uint8,
                encoding=tfds.features.Encoding.BYTES,
            ),
            "score": np.int32,
            "key": tfds.features.Text(),  # filename or AVA id: which photo a record is
            # What the photo is: SHA-256 (first FINGERPRINT_HEX hex digits) of its file's
            # bytes, or of the pixels for generated photos; a run records it (run_data.py).
            "fingerprint": tfds.features.Text(),
        }
        if self.with_masks:
            features["mask"] = tfds.features.Tensor(
                shape=(self.size, self.size), dtype=np.bool_, encoding=tfds.features.Encoding.ZLIB
            )
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,  # record i is list entry i (skips aside): reproducible
            metadata=tfds.core.MetadataDict(),
        )

    def _generate_examples(self):  # each split has its own generator (_split_generators)
        raise NotImplementedError

    def _download_and_prepare(self, dl_manager, download_config):
        super()._download_and_prepare(dl_manager, download_config)
        # Saved with the records, so a reused cache reproduces the skip list.
        self.info.metadata["skipped"] = [p.to_json() for p in self.skipped]

    # TFDS prints "Downloading and preparing dataset ..." and "Dataset ... downloaded and
    # prepared to ..." on stdout around every build; nothing is downloaded here, and our own
    # log lines (`_build`, the decode progress) say what is prepared where.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass

    @property
    def skipped_records(self) -> list[dict]:
        return list((self.info.metadata or {}).get("skipped", []))


class _ListedPhotos(_PhotoBuilder):
    """A builder over a parsed photo list (folder or AVA): decodes the photos in threads."""

    def __init__(self, *, listing: sources.SourceList, on_bad: str, max_pixels: int, **kwargs):
        self.listing = listing
        self.on_bad = on_bad
        self.max_pixels = max_pixels
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        del dl_manager  # the photos are already where the list says (manual_dir = data.dir)
        self.skipped = list(self.listing.problems)
        return {name: self._decode(examples) for name, examples in self.listing.splits.items()}

    def _decode(self, examples: list[sources.Example]):
        """Yields (index, record) in list order; photos are decoded by a thread pool."""
        decode = _Decoder(self.size, self.max_pixels)
        start, last_log, done = time.perf_counter(), time.perf_counter(), 0
        workers = min(32, os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for lo in range(0, len(examples), READ_CHUNK * workers):
                chunk = examples[lo : lo + READ_CHUNK * workers]
                results = pool.map(decode, chunk)
                for i, (example, result) in enumerate(zip(chunk, results, strict=True)):
                    done += 1
                    if isinstance(result, photos.BadPhoto):
                        reason = str(result)
                        kind = _photo_problem_kind(reason, example.path)
                        problem = sources.Problem(example.key, example.where, reason, kind)
                        if self.on_bad == "error":
                            raise bad_example_error(problem)
                        self.skipped.append(problem)
                        continue
                    image, digest = result
                    record = {"image": image, "score": example.score, "key": example.key}
                    yield lo + i, {**record, "fingerprint": digest}
                now = time.perf_counter()
                if now - last_log > LOG_EVERY_S or done == len(examples):
                    rate = done / max(now - start, 1e-9)
                    logging.info(
                        "decoded %d/%d photos, %.0f photos/s, ETA %.0fs",
                        done,
                        len(examples),
                        rate,
                        (len(examples) - done) / rate,
                    )
                    last_log = now


def _photo_problem_kind(reason: str, path: str) -> str:
    """'photo:missing file' from BadPhoto's "PATH: missing file (detail)": one kind a cause."""
    return "photo:" + reason.removeprefix(f"{path}: ").split(" (")[0]


class _Decoder:
    """photo -> (array, content fingerprint), or the BadPhoto (returned, not raised, so the
    pool keeps going). The fingerprint hashes the file just read, so it comes from the page
    cache: one pass over the photos' bytes, not a second read from disk."""

    def __init__(self, size: int, max_pixels: int):
        self.size, self.max_pixels = size, max_pixels

    def __call__(self, example: sources.Example):
        try:
            image = photos.decode_photo(example.path, self.size, self.max_pixels)
            return image, file_fingerprint(example.path)
        except photos.BadPhoto as e:
            return e
        except OSError as e:  # the file went away between decoding and hashing
            return photos.BadPhoto(f"{example.path}: unreadable ({e})")


def content_fingerprint(data: bytes) -> str:
    """A photo's content fingerprint: the first FINGERPRINT_HEX hex digits of SHA-256."""
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_HEX]


def file_fingerprint(path: str) -> str:
    """`content_fingerprint` of a file's bytes, read in chunks (hashlib drops the GIL)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:FINGERPRINT_HEX]


class FolderPhotos(_ListedPhotos):
    """Scored photos in "xiheAA format": a folder with scores.csv and images/."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the photos under `DIR/images/` (any subfolders) and their scores in `DIR/scores.csv`,
    header `filename,score`, one photo a row: its path relative to `images/` and an integer
    score within `data.score_range`. Then run with `--config.data.name=folder
    --config.data.dir=DIR`.
    """


class AvaPhotos(_ListedPhotos):
    """AVA (Murray et al. 2012): class = rounded mean vote, or binned by data.ava_bins."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put `AVA.txt` in `DIR/`, the photos as `DIR/images/<image id>.jpg`, and (optional, for the
    official test split) `generic_test.jpgl` in `DIR/` or `DIR/aesthetics_image_lists/`.
    Then run with `--config.data.name=ava --config.data.dir=DIR`.
    """


class SyntheticPhotos(_PhotoBuilder):
    """The embedded synthetic photos (rsrl_jax.data.synthetic), with subject masks."""

    def __init__(self, *, num_examples: int, seed: int, label_noise: float, **kwargs):
        self.num_examples, self.seed, self.label_noise = num_examples, seed, label_noise
        super().__init__(with_masks=True, **kwargs)

    def _split_generators(self, dl_manager):
        return {"train": self._render()}

    def _render(self):
        logging.info("rendering %d synthetic photos at %dpx", self.num_examples, self.size)
        gen = synthetic.generate(self.num_examples, self.size, self.seed, self.label_noise)
        for i in range(self.num_examples):
            yield (
                i,
                {
                    "image": gen.images[i],
                    "score": gen.scores[i],
                    "key": f"synthetic_{i:06d}",
                    "fingerprint": content_fingerprint(gen.images[i].tobytes()),
                    "mask": gen.masks[i],
                },
            )


def fingerprint(parts: dict, listing: sources.SourceList | None = None) -> str:
    """A short hash of what decides the prepared records' content."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    if listing is not None:
        for path in listing.listed_files:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        for examples in listing.splits.values():
            for e in examples:
                try:
                    st = os.stat(e.path)
                    h.update(f"{e.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{e.path}\0missing\n".encode())
    return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What `config.data` prepares: the builder class, its arguments and where it writes."""

    name: str  # data.name
    cls: type
    kwargs: dict
    download: dict  # tfds.download.DownloadConfig arguments

    @property
    def root(self) -> str:
        """The keyed cache folder (TFDS's data_dir); the records go in `data_dir`."""
        return self.kwargs["data_dir"]

    @property
    def data_dir(self) -> str:
        """TFDS's version folder, `root/<builder name>/<version>`, known before building."""
        return os.path.join(self.root, self.cls.name, str(self.cls.VERSION))

    def builder(self) -> "_PhotoBuilder":
        """A new builder; it reads the prepared data's info if its folder is there."""
        return self.cls(**self.kwargs)


def _plan(config: ml_collections.ConfigDict) -> _Plan:
    """The builder class and arguments for `config.data`, in its keyed cache folder."""
    d, size = config.data, stored_size(config)
    options = {"format": FORMAT_VERSION, "name": d.name, "size": size}
    if d.name == "synthetic":
        options.update(num_examples=d.num_examples, seed=config.seed, label_noise=d.label_noise)
        key = fingerprint(options)
        kwargs = dict(
            num_examples=d.num_examples,
            seed=config.seed,
            label_noise=d.label_noise,
            size=size,
            data_dir=os.path.join(cache_dir(config), f"synthetic-{size}px-{key}"),
        )
        return _Plan(d.name, SyntheticPhotos, kwargs, {})
    root_dir = os.path.abspath(os.path.expanduser(d.dir))
    if d.name == "folder":
        listing = sources.read_folder(root_dir, tuple(d.score_range))
        cls = FolderPhotos
    elif d.name == "ava":
        listing = sources.read_ava(root_dir, tuple(d.ava_bins), d.ava_official_split)
        cls = AvaPhotos
    else:
        raise errors.ConfigError(f"config.data.name={d.name!r}: unknown data set")
    _check_listing(listing, d, root_dir)
    options.update(
        dir=root_dir,
        on_bad=d.on_bad_example,
        max_pixels=d.max_pixels,
        score_range=list(d.score_range),
        bins=list(d.ava_bins),
        official_split=d.ava_official_split,
    )
    key = fingerprint(options, listing)
    kwargs = dict(
        listing=listing,
        on_bad=d.on_bad_example,
        max_pixels=d.max_pixels,
        size=size,
        data_dir=os.path.join(cache_dir(config), f"{d.name}-{size}px-{key}"),
    )
    return _Plan(d.name, cls, kwargs, {"manual_dir": root_dir})


def _check_listing(listing: sources.SourceList, data, root_dir: str) -> None:
    """Stops on a bad list row (error mode) and on a problem of the whole list.

    A problem shared by most rows (a wrong delimiter, another score scale) or most photos
    (not where the list says) is told as one: it stops the run in error mode, and in skip
    mode when nothing would be left; in skip mode with rows left it is a warning and those
    rows are skipped one by one, recorded. Checked before any photo is decoded.
    """
    error_mode = data.on_bad_example == "error"
    whole = sources.systematic_problem(listing, tuple(data.score_range))
    if whole is not None:
        message, nothing_left = whole
        if error_mode or nothing_left:
            raise sources.BadSource(f"{listing.listed_files[0]}: {message}")
        logging.warning("%s; those rows are skipped", message)
    if error_mode and listing.problems:
        error = bad_example_error(listing.problems[0])
        if len(listing.problems) > 1:
            error = BadExample(f"{error} [and {len(listing.problems) - 1} more bad list lines]")
        raise error
    missing = sources.missing_photos_problem(listing, root_dir)
    if missing is not None:
        message, every_photo = missing
        if error_mode or every_photo:
            raise sources.BadSource(message)
        logging.warning("%s; those photos are skipped", message)


def make_builder(config: ml_collections.ConfigDict) -> tuple[_PhotoBuilder, dict]:
    """The builder for `config.data`, in its keyed cache folder; and its download config."""
    plan = _plan(config)
    return plan.builder(), plan.download


def lock_path(builder_or_plan) -> str:
    """The lock file of a prepared folder: beside it, `<cache_dir>/<folder>.lock`."""
    root = getattr(builder_or_plan, "data_dir_root", None) or builder_or_plan.root
    return os.fspath(root).rstrip(os.sep) + ".lock"


def is_complete(data_dir: str) -> bool:
    """Whether `data_dir` holds a finished preparation: its COMPLETE_FILE is written last.

    TFDS builds into an `incomplete.*` folder and renames it, so a kill mid-build leaves no
    version folder on a local disk; on storage without atomic renames (a bucket mounted as
    a folder) it can leave one half copied. Neither has this file.
    """
    return os.path.isfile(os.path.join(data_dir, COMPLETE_FILE))


def prepare(config: ml_collections.ConfigDict) -> _PhotoBuilder:
    """Builds the records for `config.data` unless an identical build is cached.

    Runs that prepare the same data at once (another seed or workdir) take a lock beside
    the prepared folder: one builds, the others wait for it and reuse its records. With
    several processes of one run, process 0 builds and the others wait for it (the cache dir
    must then be storage that every host sees, else each host builds its own).
    """
    plan = _plan(config)
    if jax.process_count() > 1:
        if jax.process_index() == 0:
            _prepare_once(plan)
        multihost_utils.sync_global_devices("rsrl_jax: prepared data ready")
    _prepare_once(plan)  # reuses what process 0 wrote, where the storage is shared
    return plan.builder()  # reads the prepared info


def _prepare_once(plan: _Plan) -> None:
    """Builds `plan`'s records unless complete, holding its lock while it checks and builds."""
    if is_complete(plan.data_dir):
        logging.info("reusing prepared %s data in %s", plan.name, plan.data_dir)
        return
    with _file_lock(lock_path(plan), f"preparing {plan.name} data in {plan.root}") as locked:
        if is_complete(plan.data_dir):  # another process prepared it while this one waited
            logging.info("reusing prepared %s data in %s", plan.name, plan.data_dir)
            return
        if not locked and os.path.isdir(plan.data_dir):  # read-only: nothing can be rebuilt
            logging.warning("%s is not marked complete; reading it as it is", plan.data_dir)
            return
        if locked:
            _remove_unfinished(plan)
        builder = plan.builder()
        _build(builder, plan.download, plan.name)
        _write_atomic(
            os.path.join(plan.data_dir, COMPLETE_FILE),
            json.dumps({"format": FORMAT_VERSION, "splits": _split_sizes(builder)}),
        )


def _split_sizes(builder: _PhotoBuilder) -> dict[str, int]:
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def _remove_unfinished(plan: _Plan) -> None:
    """Removes what an interrupted preparation of `plan` left (call holding its lock).

    TFDS's `incomplete.*` build folders, and a version folder without COMPLETE_FILE (half
    copied, or built before that file existed): the build starts again from nothing.
    """
    parent = os.path.dirname(plan.data_dir)
    leftovers = sorted(glob.glob(os.path.join(glob.escape(parent), "incomplete.*")))
    if os.path.isdir(plan.data_dir):
        leftovers.append(plan.data_dir)
    for path in leftovers:
        logging.warning("removing %s: not marked complete (an interrupted preparation)", path)
        shutil.rmtree(path)


@contextlib.contextmanager
def _file_lock(path: str, what: str):
    """Holds the file lock at `path` (`what` says what for); yields whether it was taken.

    A lock file that cannot be created (a read-only cache folder) gives a warning and no
    lock: reading prepared data needs none, and a build there fails on its own writes.
    The OS releases the lock of a killed process, so a kill never leaves others waiting.
    """
    lock = filelock.FileLock(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            logging.info("waiting for another process %s (lock %s)", what, path)
            while True:
                try:
                    lock.acquire(timeout=LOCK_LOG_EVERY_S)
                    break
                except filelock.Timeout:
                    logging.info("still waiting for another process %s (lock %s)", what, path)
    except OSError as e:
        logging.warning("cannot take the lock %s (%s): %s without it", path, e, what)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _write_atomic(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def _build(builder: _PhotoBuilder, download: dict, name: str) -> None:
    tfds.disable_progress_bar()  # our own log lines carry rate and ETA
    logging.info("preparing %s data once into %s", name, builder.data_dir)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**download))
    except OSError as e:  # photos' own errors are BadPhotos: this is the cache folder's
        raise DataError(
            f"cannot prepare {name} data in {builder.data_dir_root} ({e}): set "
            "--config.data.cache_dir to a writable folder with room for the stored photos"
        ) from e
    except AssertionError as e:  # TFDS refuses to write a split whose every example was bad
        if "No examples were yielded" not in str(e):
            raise
        where = f"{name} data in {download.get('manual_dir')}"
        decoded = [p for p in builder.skipped if p.kind.startswith("photo:")]
        kinds = {p.kind for p in decoded}
        listed = sum(len(split) for split in builder.listing.splits.values())
        if len(decoded) >= 2 and len(kinds) == 1 and len(decoded) == listed:
            raise BadExample(
                f"{where}: no usable photo: every one of the {len(decoded)} photos is unusable: "
                f"{kinds.pop().removeprefix('photo:')} (e.g. {decoded[0].message()})"
            ) from e
        first = "; ".join(p.message() for p in builder.skipped[:3])
        raise BadExample(
            f"{where}: no usable photo in a split ({len(builder.skipped)} skipped, first: {first})"
        ) from e


def read_splits(builder: _PhotoBuilder, splits: list[str]) -> dict[str, np.ndarray]:
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


def _read_records(builder: _PhotoBuilder, splits: list[str], path: str) -> dict[str, np.ndarray]:
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
    with _file_lock(lock_path(builder), f"writing {path}") as locked:
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
    builder: _PhotoBuilder,
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
    }
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
    for name in ("key", "fingerprint"):
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
    whole = all(len(labels.get(name, ())) == n for name in ("score", "key", "fingerprint"))
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


def record_skipped(builder: _PhotoBuilder, workdir: str | None) -> list[dict]:
    """Logs every skipped item and, in skip mode, lists them in `workdir/skipped.jsonl`."""
    skipped = builder.skipped_records
    for s in skipped:
        logging.warning("skipped %s: %r: %s", s["where"], s["item"], s["reason"])
    writer = jax.process_index() == 0  # one process writes for a multi-process run
    if writer and workdir is not None and getattr(builder, "on_bad", "error") == "skip":
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, SKIPPED_FILE)
        with open(path, "w") as f:
            for s in skipped:
                f.write(json.dumps(s) + "\n")
        logging.info("%d skipped item(s) listed in %s", len(skipped), path)
    return skipped
