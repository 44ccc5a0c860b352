"""Prepared data: which builder `config.data` needs, its cache folder, and building it once.

Prepared data lives under `data.cache_dir` (default: `$TFDS_DATA_DIR`, else
`~/tensorflow_datasets`), in a folder keyed on everything that decides its content: the
source lists' bytes, each photo's size, modification time, inode and status-change time, the
stored size and the data options. Unchanged inputs reuse it; any change prepares a new one.
A lock beside the folder lets one process build while others wait, and a marker file written
last tells a finished preparation from an interrupted one. (The lock itself, taken
with a wait that is logged, is `cache_lock`'s.)
"""

import dataclasses
import glob
import hashlib
import json
import os
import shutil

import jax
import ml_collections
import tensorflow_datasets as tfds
from absl import logging
from jax.experimental import multihost_utils

from rsrl_jax import errors
from rsrl_jax.data import builders, cache_lock, list_problems, sources
from rsrl_jax.data.builders import BadExample, bad_examples_error
from rsrl_jax.data.listing import BadSource, SourceList
from rsrl_jax.errors import DataError
from rsrl_jax.files import write_atomic

# Bump when decoding changes what is stored (invalidates prepared data; 5: pixel
# fingerprints and perceptual hashes, for copies and near-duplicates; 6: both of the
# full-resolution pixels, not a large JPEG's reduced decode).
FORMAT_VERSION = 6
# Bump when the synthetic records change (invalidates prepared synthetic data only; 2: the
# noiseless rater's `true_score`).
SYNTHETIC_VERSION = 2
COMPLETE_FILE = "rsrl_jax_complete.json"  # written last into a finished preparation


def stored_size(config: ml_collections.ConfigDict) -> int:
    """Side of the stored square: `data.stored_size`, or `data.image_size` when 0."""
    return int(config.data.stored_size or config.data.image_size)


def cache_dir(config: ml_collections.ConfigDict) -> str:
    if config.data.cache_dir:
        return os.path.expanduser(config.data.cache_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def fingerprint(parts: dict, listing: SourceList | None = None) -> str:
    """A short hash of what decides the prepared records' content.

    Each photo counts by its size, modification time, inode and status-change time (ctime):
    a file rewritten in place and given its old mtime back (`touch -r`, `cp -p`, `rsync -a`,
    an archive restore) still changes its ctime or inode, which no user tool can set back,
    so its content is decoded and fingerprinted again. (A chmod also changes the ctime: the
    cost is one decoding, never a stale photo.)
    """
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    if listing is not None:
        for path in listing.listed_files:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        for examples in listing.splits.values():
            for e in examples:
                try:
                    st = os.stat(e.path)
                    stamp = f"{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}"
                    h.update(f"{e.path}\0{stamp}\n".encode())
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

    def builder(self) -> builders.PhotoBuilder:
        """A new builder; it reads the prepared data's info if its folder is there."""
        return self.cls(**self.kwargs)


def _plan(config: ml_collections.ConfigDict) -> _Plan:
    """The builder class and arguments for `config.data`, in its keyed cache folder."""
    d, size = config.data, stored_size(config)
    options = {"format": FORMAT_VERSION, "name": d.name, "size": size}
    if d.name == "synthetic":
        options.update(
            num_examples=d.num_examples,
            seed=config.seed,
            label_noise=d.label_noise,
            synthetic=SYNTHETIC_VERSION,
        )
        key = fingerprint(options)
        kwargs = dict(
            num_examples=d.num_examples,
            seed=config.seed,
            label_noise=d.label_noise,
            size=size,
            data_dir=os.path.join(cache_dir(config), f"synthetic-{size}px-{key}"),
        )
        return _Plan(d.name, builders.SyntheticPhotos, kwargs, {})
    root_dir = os.path.abspath(os.path.expanduser(d.dir))
    if d.name == "folder":
        columns = (d.filename_column, d.score_column)
        listing = sources.read_folder(root_dir, tuple(d.score_range), columns)
        cls = builders.FolderPhotos
    elif d.name == "ava":
        listing = sources.read_ava(root_dir, tuple(d.ava_bins), d.ava_official_split)
        cls = builders.AvaPhotos
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


def _check_listing(listing: SourceList, data, root_dir: str) -> None:
    """Stops on a bad list row or missing photo (error mode: all of them in one message)
    and on a problem of the whole list.

    A problem shared by most rows (a wrong delimiter, another score scale) or most photos
    (not where the list says) is told as one: it stops the run in error mode, and in skip
    mode when nothing would be left; in skip mode with rows left it is a warning and those
    rows are skipped one by one, recorded. Checked before any photo is decoded.
    """
    error_mode = data.on_bad_example == "error"
    whole = list_problems.systematic_problem(listing, tuple(data.score_range))
    if whole is not None:
        message, nothing_left = whole
        if error_mode or nothing_left:
            raise BadSource(f"{listing.listed_files[0]}: {message}")
        logging.warning("%s; those rows are skipped", message)
    missing = list_problems.missing_photos_problem(listing, root_dir)
    if missing is not None:  # before the rows: where the photos are, not 40 missing files
        message, every_photo = missing
        if error_mode or every_photo:
            raise BadSource(message + list_problems.also_bad_rows(listing, error_mode))
        logging.warning("%s; those photos are skipped", message)
    if error_mode and listing.problems:  # with the missing photos: all in one message
        bad = listing.problems + list_problems.missing_photos(listing, root_dir)
        raise bad_examples_error(list_problems.by_line(bad))


def make_builder(config: ml_collections.ConfigDict) -> tuple[builders.PhotoBuilder, dict]:
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


def prepare(config: ml_collections.ConfigDict, check_listing=None) -> builders.PhotoBuilder:
    """Builds the records for `config.data` unless an identical build is cached.

    `check_listing(listing)`, if given, sees a folder's or AVA's parsed list
    (`listing.SourceList`) before any photo is decoded, and may raise to stop there.

    Runs that prepare the same data at once (another seed or workdir) take a lock beside
    the prepared folder: one builds, the others wait for it and reuse its records. With
    several processes of one run, process 0 builds and the others wait for it (the cache dir
    must then be storage that every host sees, else each host builds its own).
    """
    plan = _plan(config)
    if check_listing is not None and "listing" in plan.kwargs:
        check_listing(plan.kwargs["listing"])
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
    what = f"preparing {plan.name} data in {plan.root}"
    with cache_lock.file_lock(lock_path(plan), what) as locked:
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
        write_atomic(
            os.path.join(plan.data_dir, COMPLETE_FILE),
            json.dumps({"format": FORMAT_VERSION, "splits": _split_sizes(builder)}),
        )


def _split_sizes(builder: builders.PhotoBuilder) -> dict[str, int]:
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


def _build(builder: builders.PhotoBuilder, download: dict, name: str) -> None:
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
