"""TFDS builders that decode photos once into array_record files.

Each builder writes the photos, decoded and resized to the stored square, as raw uint8
records (`array_record`, random access through `tfds.data_sources`; no TensorFlow needed to
build or read). Training then reads these records, never the original files. Where the
records are prepared and when they are reused: `data.prepared`; reading them back:
`data.photo_file`.

Bad examples: with `data.on_bad_example='error'` the first one stops the build with a message
naming the file and list line; with `'skip'` every one is left out and recorded (in the
prepared data's metadata, in the log, and in `workdir/skipped.jsonl`).

A listed photo's decoding in the pool (its fingerprints, a copy of another score) is
`photo_fingerprints`'s.
"""

import concurrent.futures
import json
import os
import time

import jax
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.data import list_problems, photo_fingerprints, photos, synthetic
from rsrl_jax.data.listing import Example, Problem, SourceList
from rsrl_jax.files import write_atomic

READ_CHUNK = 256  # photos decoded (or records read) per batch of work
LOG_EVERY_S = 10.0
SHOWN_PROBLEMS = 20  # bad rows or photos named in the one error that lists them


class BadExample(errors.DataError):
    """A bad photo or list line met with `data.on_bad_example='error'`."""


def bad_example_error(problem: Problem) -> BadExample:
    return BadExample(
        f"{problem.message()} (set config.data.on_bad_example=skip to leave bad examples out; "
        f"each is then recorded in the workdir's {workdir_files.SKIPPED})"
    )


def bad_examples_error(problems: list[Problem], what: str = "rows") -> BadExample:
    """One error for every bad row (or photo) found, so that one rerun sees them all: the
    first SHOWN_PROBLEMS named with their lines, and the count."""
    if len(problems) == 1:
        return bad_example_error(problems[0])
    files = {p.where.rsplit(" line ", 1)[0] for p in problems}
    where = f" in {files.pop()}" if len(files) == 1 else ""
    shown = "; ".join(p.message() for p in problems[:SHOWN_PROBLEMS])
    first = f" (the first {SHOWN_PROBLEMS} shown)" if len(problems) > SHOWN_PROBLEMS else ""
    return BadExample(
        f"{len(problems)} bad {what}{where}: {shown}{first}; fix them, or set "
        "config.data.on_bad_example=skip to leave them out (each is then recorded in the "
        f"workdir's {workdir_files.SKIPPED})"
    )


class PhotoBuilder(tfds.core.GeneratorBasedBuilder):
    """Common part: features, one array_record split per source split, skip bookkeeping."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Photos decoded once to upright RGB uint8 squares."}

    def __init__(
        self,
        *,
        size: int,
        data_dir: str,
        with_masks: bool = False,
        with_true_scores: bool = False,
        **kwargs,
    ):
        self.size = size
        self.with_masks = with_masks
        self.with_true_scores = with_true_scores  # the noiseless rater's score, synthetic only
        self.skipped: list[Problem] = []
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
            # What the photo is: SHA-256 (its first `photo_fingerprints.FINGERPRINT_HEX` hex
            # digits) of its file's bytes, or of the pixels for generated photos; a run
            # records it (run_data.py).
            "fingerprint": tfds.features.Text(),
            # The same for the upright RGB pixels before resizing, and their 64-bit pHash
            # ('' for generated photos): copies and near-duplicates (data.duplicates).
            "pixels": tfds.features.Text(),
            "phash": tfds.features.Text(),
        }
        if self.with_true_scores:  # the score a rater without noise gives (mislabelled or not)
            features["true_score"] = np.int32
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
        # Saved with the records, so a reused cache reproduces the skip list; in list order
        # (the list's problems are found before decoding's).
        self.info.metadata["skipped"] = [p.to_json() for p in list_problems.by_line(self.skipped)]

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


class _ListedPhotos(PhotoBuilder):
    """A builder over a parsed photo list (folder or AVA): decodes the photos in threads."""

    def __init__(self, *, listing: SourceList, on_bad: str, max_pixels: int, **kwargs):
        self.listing = listing
        self.on_bad = on_bad
        self.max_pixels = max_pixels
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        del dl_manager  # the photos are already where the list says (manual_dir = data.dir)
        self.skipped = list(self.listing.problems)
        self.copies = photo_fingerprints.Copies()
        return {name: self._decode(examples) for name, examples in self.listing.splits.items()}

    def _decode(self, examples: list[Example]):
        """Yields (index, record) in list order; photos are decoded by a thread pool."""
        decode = photo_fingerprints.Decoder(self.size, self.max_pixels)
        start, last_log, done = time.perf_counter(), time.perf_counter(), 0
        workers = min(32, os.cpu_count() or 1)
        bad: list[Problem] = []  # error mode: every bad photo, named in one error
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for lo in range(0, len(examples), READ_CHUNK * workers):
                chunk = examples[lo : lo + READ_CHUNK * workers]
                results = pool.map(decode, chunk)
                for i, (example, result) in enumerate(zip(chunk, results, strict=True)):
                    done += 1
                    now = time.perf_counter()  # photo by photo: slow photos still log
                    if now - last_log > LOG_EVERY_S or done == len(examples):
                        _log_decoded(done, len(examples), now - start)
                        last_log = now
                    if isinstance(result, photos.BadPhoto):
                        reason = str(result)
                        kind = photo_fingerprints.problem_kind(reason, example.path)
                        if kind == "photo:missing file":
                            root = os.path.dirname(self.listing.listed_files[0])
                            reason += list_problems.beside_the_list(example, root)
                        problem = Problem(example.key, example.where, reason, kind)
                        if self.on_bad == "error":  # raised once all are decoded
                            bad.append(problem)
                        else:
                            self.skipped.append(problem)
                        continue
                    image, digest, pixels, phash = result
                    problem = self.copies.conflict(example, digest, pixels)
                    if problem is not None:
                        if self.on_bad == "error":  # raised once all are decoded
                            bad.append(problem)
                        else:
                            self.skipped.append(problem)
                        continue
                    if bad:
                        continue  # the build stops: only the bad photos are looked for
                    record = {"image": image, "score": example.score, "key": example.key}
                    hashes = {"fingerprint": digest, "pixels": pixels, "phash": phash}
                    yield lo + i, {**record, **hashes}
        if bad:
            raise bad_examples_error(bad, "photos")


def _log_decoded(done: int, total: int, seconds: float) -> None:
    rate = done / max(seconds, 1e-9)
    logging.info(
        "decoded %d/%d photos, %.0f photos/s, ETA %.0fs", done, total, rate, (total - done) / rate
    )


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


class SyntheticPhotos(PhotoBuilder):
    """The embedded synthetic photos (rsrl_jax.data.synthetic), with subject masks and the
    noiseless rater's scores (`synthetic.noiseless_scores`)."""

    def __init__(self, *, num_examples: int, seed: int, label_noise: float, **kwargs):
        self.num_examples, self.seed, self.label_noise = num_examples, seed, label_noise
        super().__init__(with_masks=True, with_true_scores=True, **kwargs)

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
                    "true_score": gen.true_scores[i],
                    "key": f"synthetic_{i:06d}",
                    "fingerprint": photo_fingerprints.content_fingerprint(gen.images[i].tobytes()),
                    "pixels": photo_fingerprints.content_fingerprint(gen.images[i].tobytes()),
                    "phash": "",
                    "mask": gen.masks[i],
                },
            )


def record_skipped(builder: PhotoBuilder, workdir: str | None) -> list[dict]:
    """Logs every skipped item and, in skip mode, lists them in `workdir/skipped.jsonl`, in
    list order (also those of a cache prepared before it was kept in that order)."""
    skipped = sorted(builder.skipped_records, key=lambda s: list_problems.line_order(s["where"]))
    for s in skipped:
        logging.warning("skipped %s: %r: %s", s["where"], s["item"], s["reason"])
    writer = jax.process_index() == 0  # one process writes for a multi-process run
    if writer and workdir is not None and getattr(builder, "on_bad", "error") == "skip":
        path = write_skipped(workdir, skipped)
        logging.info("%d skipped item(s) listed in %s", len(skipped), path)
    return skipped


def write_skipped(folder: str, skipped: list[dict]) -> str:
    """`folder/skipped.jsonl` (a run's workdir, or embed's output): the items left out as
    bad, one JSON line each, in the order given; returns its path. The one writer of that
    file: the run's recorder and embed call it too."""
    os.makedirs(folder, exist_ok=True)
    path = workdir_files.WorkdirFiles(folder).skipped
    write_atomic(path, "".join(json.dumps(s) + "\n" for s in skipped))
    return path
