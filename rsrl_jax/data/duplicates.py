"""The same photo under two names: copies are one group, split together; near-duplicates told.

Exported and downloaded sets (AVA among them) hold copies: `x.jpg` and `x (1).jpg`, or a
PNG saved again with other compression. Split apart, a copy in training and its twin in
test inflate the test figures. So photos with the same file bytes (`fingerprints`) or the
same decoded pixels (`pixel_fingerprint`) are one group (connected: a chain of copies is one
group), and the splits (`splits.protocol_splits`) put every group in one part of each fold.

Near-duplicates (re-encoded, resized copies) are found by a perceptual hash, imagehash's
pHash (64 bits: the signs of the photo's lowest 8 x 8 DCT frequencies at 32 x 32 gray):
two photos whose hashes differ in at most `data.near_duplicate_distance` bits (default 4;
a re-encoded or resized copy differs in 0-2, unrelated photos in about 32) are reported,
and grouped like copies with `data.group_near_duplicates=True`.

The pair search (`hash_pairs.near_pairs`) is not O(N^2).
"""

import dataclasses
import hashlib

import imagehash
import numpy as np
from absl import logging
from PIL import Image

from rsrl_jax.data import hash_pairs, splits


def pixel_fingerprint(rgb: np.ndarray) -> str:
    """The first 16 hex digits of the SHA-256 of decoded pixels (their shape included)."""
    h = hashlib.sha256(repr(rgb.shape).encode())
    h.update(memoryview(np.ascontiguousarray(rgb, np.uint8)).cast("B"))  # no copy
    return h.hexdigest()[:16]


# pHash reads a 32 x 32 gray thumbnail: a large photo is first box-averaged (every pixel
# counts) to about this short side, so its Lanczos resize is 4-5x cheaper (a 1500 px photo:
# 3 ms, not 15); within 2 bits of pHash of the unreduced photo.
PHASH_SIDE = 128


def perceptual_hash(rgb: np.ndarray) -> str:
    """imagehash's 64-bit pHash of an RGB uint8 photo (full resolution: the same pixels give
    the same hash, whatever file they come from), as 16 hex digits."""
    gray = Image.fromarray(rgb, "RGB").convert("L")
    factor = min(gray.size) // PHASH_SIDE
    return str(imagehash.phash(gray.reduce(factor) if factor > 1 else gray))


@dataclasses.dataclass(frozen=True)
class Duplicates:
    """Each photo's group (for the splits) and why photos are linked (for the log and file).

    `groups[i]` is the position of the first photo of i's group (i itself when alone).
    `links` are (i, j, why, distance): why 'bytes', 'pixels' or 'near' (distance: bits of
    pHash, 0 for copies); near links are every near pair found outside the copies' groups.
    """

    groups: np.ndarray  # int64 [N]
    copies: np.ndarray  # int64 [N]: as `groups`, by bytes and pixels only
    links: list[tuple[int, int, str, int]]
    distance: int
    group_near: bool

    @property
    def trivial(self) -> bool:
        """No photo shares its group: the splits are those of data without copies."""
        return bool(np.array_equal(self.groups, np.arange(len(self.groups))))

    def copy_counts(self) -> tuple[int, int]:
        """(photos that have a copy, groups of copies)."""
        sizes = np.bincount(self.copies, minlength=len(self.copies))
        return int(sizes[sizes > 1].sum()), int((sizes > 1).sum())

    @property
    def near_pairs(self) -> list[tuple[int, int, int]]:
        return [(i, j, d) for i, j, why, d in self.links if why == "near"]

    def report(self, keys, fold_splits=None) -> dict:
        """duplicates.json: the split groups (keys, the links that make them and, given the
        run's `fold_splits`, where each member lies in each fold and whether the group lies
        in one part of every fold), every near pair, and the threshold."""
        keys = [str(k) for k in keys]
        members: dict[int, list[int]] = {}
        for i, g in enumerate(self.groups.tolist()):
            members.setdefault(g, []).append(i)
        grouped = {g: m for g, m in members.items() if len(m) > 1}
        links: dict[int, list[dict]] = {g: [] for g in grouped}
        for i, j, why, d in self.links:
            if why != "near" or self.group_near:
                link = {"keys": [keys[i], keys[j]], "why": why}
                if why == "near":
                    link["distance"] = d
                links[int(self.groups[i])].append(link)
        groups = [{"keys": [keys[i] for i in m], "links": links[g]} for g, m in grouped.items()]
        near = [
            {"keys": [keys[i], keys[j]], "distance": d, "grouped": self.group_near}
            for i, j, d in self.near_pairs
        ]
        if fold_splits is not None:
            parts = part_of(fold_splits, len(keys))
            apart = split_apart(self.groups, parts)
            for group, (g, m) in zip(groups, grouped.items(), strict=True):
                group["split_together"] = not apart[g]
                group["parts"] = [{keys[i]: PARTS[p[i]] for i in m} for p in parts]
            pairs = np.array([(i, j) for i, j, _ in self.near_pairs], np.int64).reshape(-1, 2)
            for pair, i, j in zip(near, pairs[:, 0], pairs[:, 1], strict=True):
                pair["split_together"] = not split_apart(np.array([0, 0]), parts[:, [i, j]])[0]
        return {
            "near_duplicate_distance": self.distance,
            "group_near_duplicates": self.group_near,
            "groups": groups,
            "near_duplicates": near,
        }


# A photo's part in a fold (`part_of`); 'none': a copy of an official test photo listed for
# training (`splits.left_out`).
PARTS = ("train", "val", "test", "none")
NONE = 3


def part_of(fold_splits, n: int) -> np.ndarray:
    """int8 [folds, n]: each photo's part in each fold, an index into PARTS."""
    parts = np.full((len(fold_splits), n), NONE, np.int8)
    for f, split in enumerate(fold_splits):
        for p, members in enumerate((split.train, split.val, split.test)):
            parts[f, np.asarray(members, np.int64)] = p
    return parts


def split_apart(groups: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """bool [N]: for each group (by its first photo's position), whether its members lie in
    two parts of some fold (a member in no part splits nothing)."""
    groups = np.asarray(groups, np.int64)
    apart = np.zeros(len(groups), bool)
    for fold in parts:
        used = fold != NONE
        lo = np.full(len(groups), NONE, np.int8)
        hi = np.full(len(groups), -1, np.int8)
        np.minimum.at(lo, groups[used], fold[used])
        np.maximum.at(hi, groups[used], fold[used])
        apart |= lo < hi
    return apart


def find(
    fingerprints, pixels=None, phashes=None, distance: int = 4, group_near: bool = False
) -> Duplicates:
    """The groups of photos with equal `fingerprints` (file bytes) or `pixels` (decoded
    pixels), and near pairs of `phashes` (hex; '' for none) within `distance` bits."""
    n = len(fingerprints)
    by_bytes = hash_pairs.first_of_equal(np.asarray(fingerprints, str))
    edges = [(by_bytes, np.arange(n))]
    links = [
        (int(by_bytes[i]), int(i), "bytes", 0) for i in np.flatnonzero(by_bytes != np.arange(n))
    ]
    if pixels is not None:
        by_pixels = hash_pairs.first_of_equal(np.asarray(pixels, str))
        edges.append((by_pixels, np.arange(n)))
        new = (by_pixels != np.arange(n)) & (by_bytes != by_bytes[by_pixels])
        links += [(int(by_pixels[i]), int(i), "pixels", 0) for i in np.flatnonzero(new)]
    copies = hash_pairs.components(n, edges)
    near = []
    if phashes is not None:
        phashes = np.asarray(phashes, str)
        has = np.flatnonzero(phashes != "")
        values = np.array([int(h, 16) for h in phashes[has]], np.uint64)
        for a, b, d in zip(*hash_pairs.near_pairs(values, distance), strict=True):
            i, j = int(has[a]), int(has[b])
            if copies[i] != copies[j]:
                near.append((i, j, "near", int(d)))
    groups = copies
    if group_near and near:
        pairs = np.array([(i, j) for i, j, _, _ in near], np.int64)
        groups = hash_pairs.components(n, edges + [(pairs[:, 0], pairs[:, 1])])
    return Duplicates(groups, copies, links + near, distance, group_near)


def record(recorder, data, fold_splits) -> None:
    """Logs the copies and near-duplicates of `data` (a Dataset), one line each, and lists
    them in `workdir/duplicates.json` through the run's `recorder` (none: no file).

    `fold_splits` are the run's splits: a resumed run's are its recorded ones, which may
    predate the grouping (a run of an older version, a forced resume that now groups
    near-duplicates). Every group they split is told, never claimed to be split together.
    """
    found = data.duplicates
    if found is None:
        return
    copies, groups = found.copy_counts()
    near = found.near_pairs
    if not (copies or near):
        return
    parts = part_of(fold_splits, len(found.groups))
    in_no_part = (parts == NONE).all(axis=0)
    out = [i for i in splits.left_out(data.official_test, found.groups) if in_no_part[i]]
    where = recorder.files.duplicates
    report = found.report(data.keys, fold_splits)
    report["left_out_of_training"] = [str(data.keys[i]) for i in out]
    recorder.write_duplicates(report)
    apart = split_apart(found.groups, parts)
    if copies:
        copies_apart = int(split_apart(found.copies, parts).sum())
        logging.warning(
            "%d photos are byte- or pixel-identical copies in %d groups (%s); listed in %s",
            copies,
            groups,
            "kept together in every split"
            if not copies_apart
            else f"{copies_apart} of them not together in this run's recorded splits",
            where,
        )
    if near:
        near_apart = sum(bool(apart[found.groups[i]]) for i, _, _ in near)
        if not found.group_near:
            how = "reported only (data.group_near_duplicates=True splits them together)"
        elif near_apart:
            how = (
                f"grouped (data.group_near_duplicates=True), but {near_apart} of them not "
                "together in this run's recorded splits"
            )
        else:
            how = "split together (data.group_near_duplicates=True)"
        logging.warning(
            "%d near-duplicate pairs (perceptual hashes within %d of 64 bits: "
            "data.near_duplicate_distance), %s; listed in %s",
            len(near),
            found.distance,
            how,
            where,
        )
    if apart.any():
        logging.warning("%s", _apart_line(found, parts, apart, data.keys))
    if len(out):
        logging.warning(
            "%d copies of official test photos are listed for training: left out of training "
            "and validation (the test set stays as listed); listed in %s",
            len(out),
            where,
        )


def _apart_line(found: Duplicates, parts: np.ndarray, apart: np.ndarray, keys) -> str:
    """The one line for the groups a run's recorded splits put in two parts: their count
    and a first example (a test member first)."""
    first = int(np.flatnonzero(apart)[0])
    members = np.flatnonzero(found.groups == first)
    f = next(f for f, fold in enumerate(parts) if split_apart(found.groups, fold[None])[first])
    fold = parts[f]
    used = sorted((i for i in members if fold[i] != NONE), key=lambda i: -fold[i])
    a, b = used[0], next(i for i in used if fold[i] != fold[used[0]])
    spanned = apart[found.groups]
    kind = "copies"
    if (found.copies[spanned] != found.groups[spanned]).any():  # a near link joins some
        kind = "copies and near-duplicates"
    return (
        f"{int(apart.sum())} groups of {kind} lie across the recorded splits of this run "
        f"(e.g. {str(keys[a])!r} in {PARTS[fold[a]]} and {str(keys[b])!r} in "
        f"{PARTS[fold[b]]} of fold {f}): its test figures may be inflated; a new --workdir "
        "splits them together"
    )
