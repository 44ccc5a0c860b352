"""A run's record of its data: which photos, scored how, with what content, split how.

A run is tied to its data: its splits, and the selections its round checkpoints hold (masks
over each fold's training set D), are defined over its photos. So a run records, when it
starts, `workdir/data_identity.npz` (numpy's .npz; `np.load` reads it):

- `keys`, uint8: the photos' keys in UTF-8, each ended by a NUL byte (read them with
  `bytes(keys).decode().split("\\0")[:-1]`): each photo's key (folder: its path under
  `images/`, normalised; AVA: its id; synthetic: `synthetic_NNNNNN`), in the order of the
  data when the run started;
- `scores`, int32 [N]: its score (class);
- `fingerprints`, bytes [N] (16 ASCII hex digits): its content fingerprint (the start of
  the SHA-256 of its file; of its pixels for synthetic photos);
- `fold{F}_train`, `fold{F}_val`, `fold{F}_test`, int32: positions in `keys` of fold F's
  three parts, in the order the run uses them (every fold of the protocol);
- `version`: this layout's version.

Uncompressed (zlib would take seconds for little gain): the key's length + 24 bytes a photo,
+ 4 a fold; AVA's 255,000 photos, one split: 8 MB, written in a fraction of a second.

A resumed run compares the data it has now with the record before any work (`resume`),
by key: photos added, removed, re-scored or changed in content stop it with one message that
names them. The order of the list does not matter: the splits are always taken from the
record, by key, in the recorded order, never drawn again. `--config.resume=force` continues
a run whose photos are the same set but re-scored or changed in content (each change is
logged, and the record takes the new scores and fingerprints); it never remaps the splits,
so added or removed photos are refused even then.

How the data differ from the record, by key, and the refusal that names it are
`identity_changes`'.
"""

import dataclasses
import json
import os
import zipfile

import numpy as np
from absl import logging

from rsrl_jax.data import identity_changes, splits
from rsrl_jax.errors import DataError
from rsrl_jax.workdir_files import WorkdirFiles

VERSION = 1
PARTS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Identity:
    """The photos of a run (key, score, fingerprint each) and its folds, as positions in them."""

    keys: np.ndarray  # str [N]
    scores: np.ndarray  # int32 [N]
    fingerprints: np.ndarray  # str [N]
    folds: list[splits.Split]  # positions into `keys`, in the order the run uses them


def data_identity(data, fold_splits: list[splits.Split]) -> Identity:
    """The identity of a `dataset.Dataset` and the splits a run takes of it."""
    keys, fingerprints = _keys_and_fingerprints(data)
    scores = np.asarray(data.class_scores, np.int32)[data.labels]
    return Identity(keys=keys, scores=scores, fingerprints=fingerprints, folds=list(fold_splits))


def save(workdir: str, identity: Identity) -> None:
    """Writes `workdir/data_identity.npz` whole or not at all (a kill leaves the old one)."""
    arrays = {
        "version": np.int32(VERSION),
        "keys": np.frombuffer("".join(k + "\0" for k in identity.keys).encode(), np.uint8),
        "scores": np.asarray(identity.scores, np.int32),
        "fingerprints": np.asarray(identity.fingerprints, str).astype(np.bytes_),
    }
    for f, split in enumerate(identity.folds):
        for part in PARTS:
            arrays[f"fold{f}_{part}"] = np.asarray(getattr(split, part), np.int32)
    path = WorkdirFiles(workdir).identity
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as out:
        np.savez(out, **arrays)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def fold_count(workdir: str) -> int:
    """How many folds the record holds (read from its member names alone); 0 when it has
    none or cannot be read (the run's own check names what is wrong)."""
    try:
        with zipfile.ZipFile(WorkdirFiles(workdir).identity) as record:
            names = set(record.namelist())
    except (OSError, zipfile.BadZipFile):
        return 0
    count = 0
    while f"fold{count}_train.npy" in names:
        count += 1
    return count


def recorded_identity(workdir: str) -> Identity | None:
    """The recorded identity, or None for a run that has none (made by an older version)."""
    path = WorkdirFiles(workdir).identity
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as saved:
            arrays = {name: saved[name] for name in saved.files}
        folds = []
        while f"fold{len(folds)}_train" in arrays:
            f = len(folds)
            parts = (arrays[f"fold{f}_{part}"].astype(np.int64) for part in PARTS)
            folds.append(splits.Split(*parts))
        return Identity(
            keys=np.array(arrays["keys"].tobytes().decode().split("\0")[:-1], dtype=str),
            scores=arrays["scores"],
            fingerprints=arrays["fingerprints"].astype(str),
            folds=folds,
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{path}: unreadable ({e!r}); the run's record of its data is damaged, "
            "so it cannot be resumed safely: start it again in another --workdir"
        ) from e


def compare(recorded: Identity, data) -> identity_changes.Changes:
    """What differs between a run's record and `data` (a Dataset), photo by photo, by key."""
    keys, fingerprints = _keys_and_fingerprints(data)
    scores = np.asarray(data.class_scores, np.int32)[data.labels]
    return identity_changes.differences(recorded, keys, scores, fingerprints)


def check_listing(workdir: str, listing, force: bool) -> None:
    """Before any photo is decoded: the photos and scores a list names (`listing.SourceList`)
    against the record of the run in `workdir` (none: nothing to check).

    Added, removed and re-scored photos stop a resume here, not after hours of decoding; a
    photo that the run left out as bad (its `skipped.jsonl`) and the list still names is not
    "added". Contents are checked after decoding (`resume`), by fingerprint.
    """
    recorded = recorded_identity(workdir)
    if recorded is None:
        return
    examples = [e for split in listing.splits.values() for e in split]
    keys = np.array([e.key for e in examples], dtype=str)
    scores = np.array([e.score for e in examples], np.int32)
    changes = identity_changes.differences(recorded, keys, scores)
    left_out = _skipped_items(workdir)
    changes = dataclasses.replace(changes, added=[k for k in changes.added if k not in left_out])
    if changes:
        identity_changes.refuse(workdir, changes, force)


def _skipped_items(workdir: str) -> set[str]:
    """The items a skip-mode run listed in its `skipped.jsonl` (empty if it has none)."""
    try:
        with open(WorkdirFiles(workdir).skipped) as f:
            return {json.loads(line)["item"] for line in f if line.strip()}
    except (OSError, ValueError, KeyError):
        return set()


def splits_by_key(recorded: Identity, data) -> list[splits.Split]:
    """The recorded folds as positions into `data`, found by key, in the recorded order.

    `data` must hold every recorded photo (`compare(...).same_photos`); its order may differ.
    """
    position = _positions(recorded, data)
    return [splits.Split(*(position[getattr(s, part)] for part in PARTS)) for s in recorded.folds]


def resume(workdir: str, data, force: bool) -> tuple[list[splits.Split], Identity | None]:
    """The splits of the run in `workdir` over `data`, checked against its record.

    Returns (splits, the identity to record now, or None when the record stands). Raises
    DataError naming what changed when `data` are not the run's photos as recorded; with
    `force`, re-scored and changed photos are logged one by one and the run goes on with its
    recorded splits (the record takes their new scores and fingerprints); added or removed
    photos are refused even then. A run recorded before this check existed has no record:
    its splits are drawn from the seed as then (None is returned for the caller to draw them).
    """
    recorded = recorded_identity(workdir)
    if recorded is None:
        return None, None
    changes = compare(recorded, data)
    reasons = {s["item"]: s["reason"] for s in getattr(data, "skipped", ())}
    if reasons:  # a recorded photo the list still names but decoding left out
        gone = [k for k in changes.removed if k in reasons]
        changes = dataclasses.replace(
            changes,
            removed=[k for k in changes.removed if k not in reasons],
            skipped=[f"{k}: {reasons[k]}" for k in gone],
        )
    if not changes:
        return splits_by_key(recorded, data), None
    identity_changes.refuse(workdir, changes, force)
    for key, before, now in changes.rescored:
        logging.warning("resume=force: %r re-scored %d -> %d; its split stays", key, before, now)
    for key in changes.changed:
        logging.warning("resume=force: %r changed in content; its split stays", key)
    current, position = data_identity(data, []), _positions(recorded, data)
    updated = dataclasses.replace(
        recorded, scores=current.scores[position], fingerprints=current.fingerprints[position]
    )
    return splits_by_key(recorded, data), updated


def recorded_splits(workdir: str, data) -> list[splits.Split] | None:
    """The splits of the finished run in `workdir` over `data`, which must be its data as
    recorded (DataError naming the differences otherwise); None if the run has no record."""
    recorded = recorded_identity(workdir)
    if recorded is None:
        return None
    changes = compare(recorded, data)
    if changes:
        raise DataError(
            f"{workdir}: the data differ from the run's: {changes.summary()}; its splits "
            "cannot be told on other data (put the run's scores and photos back)"
        )
    return splits_by_key(recorded, data)


def _positions(recorded: Identity, data) -> np.ndarray:
    """int64 [N]: the position in `data` of each recorded photo (all must be there)."""
    keys, _ = _keys_and_fingerprints(data, check=False)  # compare() has checked them
    i_rec, i_now = identity_changes.match_keys(recorded.keys, keys)
    if len(i_rec) != len(recorded.keys):
        raise ValueError("the data lack photos of the run's record")  # compare() first
    position = np.empty(len(recorded.keys), np.int64)
    position[i_rec] = i_now
    return position


def _keys_and_fingerprints(data, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(keys, fingerprints) of a Dataset as str arrays; `check`: that no key names two photos."""
    if data.keys is None or data.fingerprints is None:
        raise ValueError("the data set has no keys or fingerprints: load it with datasets.load")
    keys = np.asarray(data.keys, str)
    if not check:
        return keys, np.asarray(data.fingerprints, str)
    ordered = np.sort(keys)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(twice):  # the lists' readers refuse repeats; a key must name one photo
        raise DataError(f"photo key {twice[0]!r} names two photos of the data")
    return keys, np.asarray(data.fingerprints, str)
