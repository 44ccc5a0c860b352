"""How the data differ from a run's record of them (`identity.Identity`), photo by photo,
by key (`Changes`), and the refusal that names the changes and what to do.
"""

import dataclasses

import numpy as np

from rsrl_jax.errors import DataError

SHOWN = 5  # names given per kind of change in a message


@dataclasses.dataclass(frozen=True)
class Changes:
    """How the data now differ from a run's record, by key."""

    added: list[str]
    removed: list[str]
    rescored: list[tuple[str, int, int]]  # (key, recorded score, score now)
    changed: list[str]  # the content fingerprint differs
    skipped: list[str] = dataclasses.field(default_factory=list)  # listed, now left out as bad

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.rescored or self.changed or self.skipped)

    @property
    def same_photos(self) -> bool:
        """The same set of photos (only their scores or contents differ)."""
        return not (self.added or self.removed or self.skipped)

    def summary(self) -> str:
        """'4 re-scored (a.jpg 3->4, ...), 6 added (x.jpg, ...)': counts and a few names."""
        kinds = [
            ("re-scored", [f"{k} {a}->{b}" for k, a, b in self.rescored]),
            ("added", self.added),
            ("removed", self.removed),
            ("still listed but now skipped as bad photos", self.skipped),
            ("changed in content", self.changed),
        ]
        return ", ".join(f"{len(items)} {kind} ({_few(items)})" for kind, items in kinds if items)


def differences(recorded, keys, scores, fingerprints=None) -> Changes:
    """Changes from `recorded` to photos `keys` [N] with `scores` [N] (and contents
    `fingerprints` [N], when known).

    Vectorised (sorted matching of keys): AVA's 255,000 photos take a fraction of a second.
    Names come in the recorded order (re-scored, removed, changed) or the photos' (added).
    """
    i_rec, i_now = match_keys(recorded.keys, keys)
    order = np.argsort(i_rec)  # recorded order
    i_rec, i_now = i_rec[order], i_now[order]
    rescored = np.flatnonzero(recorded.scores[i_rec] != scores[i_now])
    changed = []
    if fingerprints is not None:
        changed = np.flatnonzero(recorded.fingerprints[i_rec] != fingerprints[i_now])
    added = np.ones(len(keys), bool)
    added[i_now] = False
    removed = np.ones(len(recorded.keys), bool)
    removed[i_rec] = False
    return Changes(
        added=[str(k) for k in keys[added]],
        removed=[str(k) for k in recorded.keys[removed]],
        rescored=[
            (str(recorded.keys[i_rec[j]]), int(recorded.scores[i_rec[j]]), int(scores[i_now[j]]))
            for j in rescored
        ],
        changed=[str(recorded.keys[i_rec[j]]) for j in changed],
    )


def refuse(workdir: str, changes: Changes, force: bool) -> None:
    """Raises DataError naming `changes` unless `force` and the photos are the same ones."""
    message = f"{workdir}: the data differ from the run's: {changes.summary()}; "
    if not changes.same_photos:
        raise DataError(
            message + "use another --workdir for new data (or put the run's photos back). "
            "--config.resume=force cannot resume it either: the run's splits and its rounds' "
            "selections are defined over its photos"
        )
    if not force:
        raise DataError(
            message + "use another --workdir for new data (or put the run's scores and photos "
            "back), or --config.resume=force to go on with the run's splits and the new scores "
            "and contents"
        )


def match_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ia, ib): positions of the keys both unique-key arrays hold, a[ia] == b[ib]."""
    if a.shape == b.shape and np.array_equal(a, b):  # the usual resume: the same list
        return np.arange(len(a)), np.arange(len(b))
    _, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return ia, ib


def _few(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (", ..." if len(items) > SHOWN else "")
