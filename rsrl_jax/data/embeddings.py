"""Frozen embeddings as a data set: `DIR/embeddings.npz` (`data.name='embeddings'`).

The file is a numpy .npz (`numpy.savez`), read with `allow_pickle=False`:

- `embeddings`: float16, float32 or float64 [N, D], one feature vector a row (read as
  float32; CLIP features, or fc7 of an AlexNet from `python -m rsrl_jax.embed`);
- `scores`: integers [N] (floats that are exact integers, such as 5.0, count as integers),
  each row's score within `data.score_range`. Training needs them; a file for predict only
  may lack them (`embed` over photos without a scores.csv writes none);
- `ids`: optional strings (or integers) [N], unique and non-empty: each row's photo, its key
  in the run's data record; default the row numbers '0'..'N-1'.

A problem of the whole file (missing, unreadable, a missing key, a wrong dtype or shape)
stops with one line naming the file and key (`BadEmbeddings`). A problem of a row (NaN or
infinite values, a score that is no integer or outside `data.score_range`, an empty or
repeated id) follows `data.on_bad_example` as a bad list row does (`data.prepared`): 'error'
stops at the first, naming the row; 'skip' leaves the row out (a repeated id keeps its first
row) and lists it in the workdir's skipped.jsonl. The same problem in most rows is told once.
Rows are numbered from 0, as numpy indexes them (row i = embeddings[i]).

Which rows a run uses, under that policy, and the Dataset of them are
`data.embeddings_dataset`'s.
"""

import dataclasses
import os
import zipfile

import numpy as np

from rsrl_jax import errors
from rsrl_jax.data.listing import Problem

FILE = "embeddings.npz"
LAYOUT = (
    "'embeddings' float [N, D], 'scores' int [N], optional 'ids' str [N] (see docs/embeddings.md)"
)
SHOWN = 3  # rows named in a message about many


class BadEmbeddings(errors.DataError):
    """An embeddings file that cannot be read as the layout says (a problem of the file)."""


@dataclasses.dataclass(frozen=True)
class Table:
    """What a file holds: `embeddings` float32 [N, D], `scores` float64 [N] as stored (None
    when not read), `ids` str [N], and the `problems` of its rows, in row order, with the
    row of each (`rows`)."""

    path: str
    embeddings: np.ndarray
    scores: np.ndarray | None
    ids: np.ndarray
    problems: list[Problem]
    rows: list[int]

    def __len__(self) -> int:
        return len(self.embeddings)


def where(row: int) -> str:
    return f"{FILE} row {row}"


def read(path: str, score_range: tuple[int, int] | None = None) -> Table:
    """The file at `path`, its layout checked; BadEmbeddings naming the file and key if it
    cannot be used at all. `score_range` (lowest, highest): the scores are read and each
    checked against it; None: they are not read (predict)."""
    if not os.path.isfile(path):
        raise BadEmbeddings(
            f"{path}: missing; data.name='embeddings' reads DIR/{FILE} with {LAYOUT}; "
            "python -m rsrl_jax.embed writes one from photos"
        )
    fix = "write it with numpy.savez(path, embeddings=..., scores=..., ids=...)"
    # numpy's own reasons are not passed on: one advises loading pickles unsafely.
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(6)
        what = (
            "a single .npy array (numpy.save), not an .npz archive"
            if head == b"\x93NUMPY"
            else "not a numpy .npz archive (a photo? this run reads embeddings: write them "
            "with python -m rsrl_jax.embed and the run's backbone)"
        )
        raise BadEmbeddings(f"{path}: {what}; {fix}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: _array(npz, name, path) for name in npz.files}
    except BadEmbeddings:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = "holds pickled objects" if "pickle" in str(e) else type(e).__name__
        raise BadEmbeddings(f"{path}: not a readable numpy .npz ({reason}); {fix}") from None
    embeddings = _embeddings(arrays, path)
    n, dim = embeddings.shape
    ids = _ids(arrays, path, n)
    scores = None if score_range is None else _scores(arrays, path, n)
    problems, rows = [], []

    def problem(row: int, reason: str, kind: str):
        problems.append(Problem(item=str(ids[row]), where=where(row), reason=reason, kind=kind))
        rows.append(int(row))

    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    for row in bad:
        count = int((~np.isfinite(embeddings[row])).sum())
        problem(
            row,
            f"{count} of the {dim} values of embeddings[{row}] are NaN or infinite",
            "nonfinite",
        )
    if scores is not None:
        lo, hi = score_range
        integral = integral_scores(scores)
        for row in np.flatnonzero(~integral):
            problem(row, f"score {scores[row]:g} is not an integer", f"integer:{scores[row]:g}")
        for row in np.flatnonzero(integral & ((scores < lo) | (scores > hi))):
            value = int(scores[row])
            problem(row, f"score {value} outside data.score_range [{lo}, {hi}]", f"range:{value}")
    first: dict[str, int] = {}
    for row, key in enumerate(ids):
        if not key:
            problem(row, "empty id", "id")
        elif key in first:
            problem(row, f"duplicate id (first on row {first[key]})", "duplicate")
        else:
            first[key] = row
    first_problem = {}  # row -> its first problem, in the order checked
    for i in np.argsort(rows, kind="stable"):
        first_problem.setdefault(rows[i], problems[i])
    return Table(
        path=path,
        embeddings=embeddings,
        scores=scores,
        ids=ids,
        problems=list(first_problem.values()),
        rows=list(first_problem),
    )


def integral_scores(scores: np.ndarray) -> np.ndarray:
    """bool [N]: the scores that are finite whole numbers."""
    return np.isfinite(scores) & (scores == np.round(scores))


def _array(npz, name: str, path: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise
        raise BadEmbeddings(
            f"{path}: {name!r} holds Python objects (dtype object), which are not read: save "
            f"it as plain numbers or strings, e.g. {name}=numpy.asarray(values, dtype=str) for "
            "ids"
        ) from None


def _embeddings(arrays: dict, path: str) -> np.ndarray:
    if "embeddings" not in arrays:
        raise BadEmbeddings(f"{path}: no array 'embeddings' ({_holds(arrays)}); expected {LAYOUT}")
    x = arrays["embeddings"]
    if not np.issubdtype(x.dtype, np.floating):
        raise BadEmbeddings(
            f"{path}: 'embeddings' is {x.dtype}, expected float16, float32 or float64 [N, D]: "
            "save embeddings.astype(numpy.float32)"
        )
    if x.ndim == 2 and x.shape[0] == 0:  # a header-only list's kind: said as such
        raise BadEmbeddings(
            f"{path} lists no photos: 'embeddings' has 0 rows (shape {x.shape}); write one "
            "feature vector a row"
        )
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise BadEmbeddings(
            f"{path}: 'embeddings' has shape {x.shape}, expected [N, D] with N, D >= 1: one "
            "feature vector a row"
        )
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: a bad row
        return x.astype(np.float32)


def _scores(arrays: dict, path: str, n: int) -> np.ndarray:
    if "scores" not in arrays:
        raise BadEmbeddings(
            f"{path}: no array 'scores' ({_holds(arrays)}): training needs each row's integer "
            "score, scores=int array [N]; a file that python -m rsrl_jax.embed wrote from photos "
            "without scores.csv is for predict only"
        )
    s = arrays["scores"]
    if s.dtype == bool or not (
        np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)
    ):
        raise BadEmbeddings(
            f"{path}: 'scores' is {s.dtype}, expected integers [N]: save scores.astype(int)"
        )
    _check_rows(s, "scores", path, n)
    return s.astype(np.float64)


def _ids(arrays: dict, path: str, n: int) -> np.ndarray:
    if "ids" not in arrays:
        return np.array([str(i) for i in range(n)])
    ids = arrays["ids"]
    _check_rows(ids, "ids", path, n)
    if ids.dtype.kind == "S":
        try:
            return np.char.decode(ids, "utf-8").astype(str) if ids.size else ids.astype(str)
        except UnicodeDecodeError:
            raise BadEmbeddings(f"{path}: 'ids' are bytes that are not UTF-8 text") from None
    if ids.dtype.kind not in "Uiu":
        raise BadEmbeddings(
            f"{path}: 'ids' is {ids.dtype}, expected strings [N], each row's photo: save "
            "ids=numpy.asarray(names, dtype=str)"
        )
    return ids.astype(str)


def _check_rows(a: np.ndarray, name: str, path: str, n: int) -> None:
    if a.shape != (n,):
        raise BadEmbeddings(
            f"{path}: {name!r} has shape {a.shape}, expected [{n}]: one per row of 'embeddings'"
        )


def _holds(arrays: dict) -> str:
    return f"it holds {', '.join(map(repr, arrays)) or 'no array'}"


def write(out_dir: str, embeddings: np.ndarray, ids, scores=None) -> str:
    """Writes `out_dir`/embeddings.npz whole or not at all: `embeddings` as float32 [N, D],
    `ids` as str [N], `scores` as int32 [N] (None: none, a file for predict only)."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, FILE)
    arrays = {"embeddings": np.asarray(embeddings, np.float32), "ids": np.asarray(ids, str)}
    if scores is not None:
        arrays["scores"] = np.asarray(scores, np.int32)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        np.savez(f, **arrays)
    os.replace(temporary, path)
    return path
