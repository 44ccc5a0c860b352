"""The Dataset of an embeddings file (`data.name='embeddings'`): which rows a run uses
under `data.on_bad_example` (a problem of most rows told once, as a photo list's), and each
row's content fingerprint; the file's layout and checks are `data.embeddings`'.
"""

import hashlib
import os

import ml_collections
import numpy as np
from absl import logging

from rsrl_jax.data import dataset, embeddings
from rsrl_jax.data.listing import Problem


def whole_file_problem(table: embeddings.Table, score_range) -> tuple[str, bool] | None:
    """(message naming the file, whether no row is usable) when most rows (more than half, at
    least 2) are bad the same way, or when every row is bad; else None. As a photo list's
    (`list_problems.systematic_problem`): told as one, with what to do."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(table.problems):
        if p.kind != "duplicate":  # a repeat names its own two rows
            groups.setdefault(p.kind.split(":")[0], []).append(i)
    bad_rows = set(table.rows)
    nothing_left = len(bad_rows) == len(table)
    if groups:
        kind, members = max(groups.items(), key=lambda group: len(group[1]))
        if len(members) >= 2 and 2 * len(members) > len(table):
            share = f"{table.path}: {len(members)} of the {len(table)} rows have"
            if len(members) == len(table):
                share = f"{table.path}: every one of the {len(table)} rows has"
            first = table.problems[members[0]]
            if kind == "range":
                found = table.scores[embeddings.integral_scores(table.scores)]
                low, high = int(found.min()), int(found.max())
                lo, hi = score_range
                return (
                    f"{share} a score outside data.score_range [{lo}, {hi}] (scores found: "
                    f"{low}..{high}): if those are the scores, set "
                    f"--config.data.score_range='({low},{high})'"
                ), nothing_left
            return (
                f"{share} the same problem: {first.reason} (e.g. {first.message()})",
                nothing_left,
            )
    if nothing_left:
        return f"{table.path}: none of its {len(table)} rows is usable; the first: " + (
            table.problems[0].message()
        ), True
    return None


def usable_rows(
    table: embeddings.Table, on_bad: str, score_range
) -> tuple[np.ndarray, list[Problem]]:
    """(bool [N]: the rows to use, the problems of the rows left out) under `on_bad`
    ('error': the first bad row stops, as a BadExample naming it; 'skip': left out, logged).
    A problem of most rows stops in error mode, and in skip mode when nothing is left."""
    from rsrl_jax.data.builders import BadExample, bad_example_error  # TFDS: training only

    whole = whole_file_problem(table, score_range)
    if whole is not None:
        message, nothing_left = whole
        if on_bad == "error" or nothing_left:
            raise embeddings.BadEmbeddings(message)
        logging.warning("%s; those rows are skipped", message)
    if on_bad == "error" and table.problems:
        error = bad_example_error(table.problems[0])
        if len(table.problems) > 1:
            error = BadExample(f"{error} [and {len(table.problems) - 1} more bad rows]")
        raise error
    keep = np.ones(len(table), bool)
    keep[table.rows] = False
    for p in table.problems:
        logging.warning("skipped %s: %r: %s", p.where, p.item, p.reason)
    return keep, table.problems


def fingerprints(embeddings: np.ndarray) -> np.ndarray:
    """str [N]: each row's content fingerprint, the first 16 hex digits of the SHA-256 of its
    float32 bytes (as a photo's of its file: `data.photo_fingerprints.content_fingerprint`)."""
    rows = np.ascontiguousarray(embeddings, np.float32)
    return np.array([hashlib.sha256(row.tobytes()).hexdigest()[:16] for row in rows])


def load(config: ml_collections.ConfigDict):
    """The `dataset.Dataset` of `config.data.dir`/embeddings.npz: `images` are the float32
    feature vectors [N, D] of the usable rows, `keys` their ids, `fingerprints` their rows'
    (`fingerprints`), `skipped` the rows left out ({item, where, reason})."""
    score_range = tuple(config.data.score_range)
    path = os.path.join(os.path.expanduser(config.data.dir), embeddings.FILE)
    table = embeddings.read(path, score_range)
    keep, skipped = usable_rows(table, config.data.on_bad_example, score_range)
    logging.info(
        "embeddings: %d rows of %d features from %s (%d skipped)",
        int(keep.sum()),
        table.embeddings.shape[1],
        path,
        len(table) - int(keep.sum()),
    )
    x = table.embeddings[keep]
    return dataset.from_scores(
        x,
        np.round(table.scores[keep]).astype(np.int64),
        keys=table.ids[keep],
        fingerprints=fingerprints(x),
        skipped=tuple(p.to_json() for p in skipped),
    )
