"""Stratified, seedable splits: k folds for test, and a validation part inside each fold.

Every class is spread evenly over the folds (counts differ by at most one), also classes
with fewer members than folds, which scikit-learn's splitters refuse or warn about.
"""

import dataclasses

import numpy as np

from rsrl_jax import errors


def stratified_positions(labels: np.ndarray, seed) -> np.ndarray:
    """A position in [0, 1) per sample, evenly spaced within each class.

    Within a class of n members, a random permutation gets positions (i + u) / n with one
    random offset u, so any interval [a, b) holds n * (b - a) members, give or take one.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pos = np.empty(len(labels), np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        perm = rng.permutation(members)
        pos[perm] = (np.arange(len(perm)) + rng.uniform()) / len(perm)
    return pos


@dataclasses.dataclass(frozen=True)
class Split:
    """Indices into the data set of one fold's three parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def fold_splits(
    labels: np.ndarray, folds: int, val_fraction: float, test_fraction: float, seed: int
) -> list[Split]:
    """Stratified k-fold (each sample is a test sample exactly once), or one split if k = 1.

    Inside each training fold a stratified `val_fraction` is held out for validation (model
    selection); the rest is the RSRL training set D.
    """
    labels = np.asarray(labels)
    pos = stratified_positions(labels, [seed, 0])
    if folds == 1:
        test_of = [pos < test_fraction]
    else:
        fold_id = np.minimum((pos * folds).astype(np.int64), folds - 1)
        test_of = [fold_id == f for f in range(folds)]
    splits = []
    for f, is_test in enumerate(test_of):
        rest = np.flatnonzero(~is_test)
        is_val = stratified_positions(labels[rest], [seed, 1, f]) < val_fraction
        splits.append(Split(train=rest[~is_val], val=rest[is_val], test=np.flatnonzero(is_test)))
    return splits


def protocol_splits(
    labels: np.ndarray, protocol, seed: int, official_test=None, groups=None
) -> list[Split]:
    """The config's protocol: stratified k folds, or the data set's own test list if it has one.

    With `official_test` (bool per sample, e.g. AVA's generic_test.jpgl) there is one split:
    that test set, and a stratified `protocol.val_fraction` of the rest for validation.
    `groups` (int [N], each sample's group named by its first member: `duplicates`) keeps
    each group in one part: see `grouped_splits`.
    """
    labels = np.asarray(labels)
    if groups is not None and not np.array_equal(groups, np.arange(len(labels))):
        return grouped_splits(labels, protocol, seed, official_test, np.asarray(groups))
    if official_test is None:
        splits = fold_splits(
            labels, protocol.folds, protocol.val_fraction, protocol.test_fraction, seed
        )
        check_parts(splits, labels, protocol, seed)
        return splits
    official_test = np.asarray(official_test, bool)
    rest = np.flatnonzero(~official_test)
    is_val = stratified_positions(labels[rest], [seed, 1, 0]) < protocol.val_fraction
    return [Split(train=rest[~is_val], val=rest[is_val], test=np.flatnonzero(official_test))]


def check_parts(splits: list[Split], labels, protocol, seed: int) -> None:
    """Raises `errors.ConfigError` naming `protocol.folds` (or `protocol.test_fraction`) when a
    split would train or test on no sample: more folds than the samples can fill (41 folds
    of 40 photos), or a test fraction too small for the data; it names the most folds that
    give every fold both parts."""
    for f, split in enumerate(splits):
        empty = [part for part in ("train", "test") if len(getattr(split, part)) == 0]
        if not empty:
            continue
        n = len(labels)
        if protocol.folds == 1:
            raise errors.ConfigError(
                f"protocol.test_fraction={protocol.test_fraction}: the split would "
                f"{' and '.join(empty)} on no sample of the {n}; set a fraction that leaves "
                "both parts at least one sample"
            )
        most = next(
            (
                k
                for k in range(min(protocol.folds - 1, n), 1, -1)
                if all(
                    len(s.train) and len(s.test)
                    for s in fold_splits(labels, k, protocol.val_fraction, 0.0, seed)
                )
            ),
            1,
        )
        raise errors.ConfigError(
            f"protocol.folds={protocol.folds}: fold {f} would {' and '.join(empty)} on no "
            f"sample of the {n}; use at most protocol.folds={most}"
        )


def grouped_splits(labels, protocol, seed: int, official_test, groups) -> list[Split]:
    """`protocol_splits` of the groups' first members, the other members following theirs.

    With `official_test`, a group with an official test photo is a test group: its test
    photos test, and its copies listed for training are in no part (a copy of a test photo
    must not train, and the official test set stays as listed): `left_out`.
    """
    firsts = np.flatnonzero(groups == np.arange(len(labels)))
    group_of = np.searchsorted(firsts, groups)  # each sample's group, as a position in firsts
    test_group = None
    if official_test is not None:
        test_group = np.zeros(len(firsts), bool)
        np.logical_or.at(test_group, group_of, np.asarray(official_test, bool))
    out = []
    for split in protocol_splits(labels[firsts], protocol, seed, test_group):
        parts = []
        for part in (split.train, split.val, split.test):
            chosen = np.zeros(len(firsts), bool)
            chosen[part] = True
            members = chosen[group_of]
            if official_test is not None and part is split.test:
                members &= np.asarray(official_test, bool)
            parts.append(np.flatnonzero(members))
        out.append(Split(*parts))
    return out


def left_out(official_test, groups) -> np.ndarray:
    """Positions of the copies of official test photos listed for training (in no part)."""
    if official_test is None or groups is None:
        return np.zeros(0, np.int64)
    official_test = np.asarray(official_test, bool)
    test_group = np.zeros(len(groups), bool)
    test_group[np.asarray(groups)[official_test]] = True
    return np.flatnonzero(test_group[groups] & ~official_test)


def protocol_warnings(
    labels: np.ndarray,
    class_scores,
    protocol,
    fold_splits: list[Split],
    official_test=None,
) -> list[str]:
    """What the splits leave a class without, one line each, for the log.

    A class with fewer photos than `protocol.folds` is absent from some folds' test parts;
    a fold may have no training photo of a class (the network never learns it there) or no
    validation photo of it (the round chosen on validation ignores it), or an empty
    validation part. The run stays well defined (such a class keeps its output, and its
    metrics say it is absent), so these are warnings, not refusals: AVA's official split,
    for one, may leave a rare score out of training.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=len(class_scores))
    lines = []
    k = protocol.folds
    if official_test is None and k > 1:
        for c in np.flatnonzero(counts < k):
            n = int(counts[c])
            lines.append(
                f"score {class_scores[c]} has {n} photo{'s' if n != 1 else ''}, fewer than "
                f"protocol.folds={k}: {k - n} fold{'s' if k - n != 1 else ''} test none of it"
            )
    present = np.flatnonzero(counts > 0)
    for f, split in enumerate(fold_splits):
        untrained = _absent(present, labels[split.train], class_scores)
        if untrained:
            lines.append(
                f"fold {f}: no training photo of {untrained}: the network never learns it in "
                "this fold"
            )
        if len(split.val) == 0:
            lines.append(
                f"fold {f}: the validation part is empty (protocol.val_fraction="
                f"{protocol.val_fraction} of {len(split.train)} photos): the round is chosen on "
                "nothing; raise protocol.val_fraction"
            )
            continue
        unvalidated = _absent(present, labels[split.val], class_scores)
        if unvalidated:
            lines.append(
                f"fold {f}: no validation photo of {unvalidated}: the round chosen on "
                f"validation ignores {'it' if ', ' not in unvalidated else 'them'}"
            )
    return lines


def _absent(classes: np.ndarray, part_labels: np.ndarray, class_scores) -> str:
    """'score 9' / 'scores 1, 9' for the `classes` with no member in `part_labels`, or ''."""
    missing = [str(class_scores[c]) for c in classes if not np.any(part_labels == c)]
    if not missing:
        return ""
    return f"score{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
