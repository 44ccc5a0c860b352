"""Reading the list of scored photos of a folder ("xiheAA format") or of AVA.

Only the lists are read here (fast, no photo is opened): each row becomes an `Example` or,
if it cannot be used, a `Problem` naming the file and line. What to do with problems
(stop, or skip with a record) is the builder's decision, not the parser's.

Folder: `DIR/scores.csv` with header `filename,score` and the photos under `DIR/images/`
(filenames relative to it). AVA: `DIR/AVA.txt`, one photo a line (index, image id, the
number of votes for each score 1..10, two semantic tags, challenge id), photos
`DIR/images/<id>.jpg`, and, when present, the official test list `generic_test.jpgl`.
"""

import csv
import dataclasses
import math
import os

import numpy as np

from rsrl_jax import errors

FOLDER_HEADER = ("filename", "score")
AVA_FIELDS = 15  # index, image id, 10 vote counts, 2 tags, challenge id
AVA_TEST_LISTS = ("generic_test.jpgl", os.path.join("aesthetics_image_lists", "generic_test.jpgl"))


class BadSource(errors.DataError):
    """A data set whose lists cannot be read at all (missing file, wrong header)."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One photo to decode: `key` names it (filename or AVA id), `where` is its list line."""

    key: str
    path: str
    score: int
    where: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why an item (a list line or a photo) was not used."""

    item: str
    where: str
    reason: str

    def message(self) -> str:
        return f"{self.where}: {self.item!r}: {self.reason}"

    def to_json(self) -> dict:
        return {"item": self.item, "where": self.where, "reason": self.reason}


@dataclasses.dataclass
class SourceList:
    """The usable examples by split ('train', and 'test' for AVA's official split)."""

    splits: dict[str, list[Example]]
    problems: list[Problem]
    listed_files: list[str]  # every list file read, for the cache fingerprint


def read_folder(root: str, score_range: tuple[int, int]) -> SourceList:
    """Parses `root/scores.csv`; rows with a bad score, name or a duplicate are problems."""
    csv_path = os.path.join(root, "scores.csv")
    _require_file(csv_path, "scores.csv (header 'filename,score')")
    _require_dir(os.path.join(root, "images"))
    lo, hi = score_range
    examples, problems, first_line = [], [], {}
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(h.strip().lower() for h in header) != FOLDER_HEADER:
                raise BadSource(
                    f"{csv_path} line 1: header must be 'filename,score', got "
                    f"{','.join(header) if header else 'an empty file'!r}"
                )
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                where = f"scores.csv line {reader.line_num}"
                name = row[0].strip()
                why = None
                if len(row) != 2:
                    why = f"expected 2 fields 'filename,score', got {len(row)}"
                elif not name:
                    why = "empty filename"
                elif os.path.isabs(name) or os.path.normpath(name).startswith(os.pardir):
                    why = "filename must be a path inside images/"
                else:
                    score, why = _integer_score(row[1], lo, hi)
                if why is None and name in first_line:
                    why = f"duplicate filename (first listed on line {first_line[name]})"
                if why is not None:
                    problems.append(Problem(item=name or ",".join(row), where=where, reason=why))
                    continue
                first_line[name] = reader.line_num
                path = os.path.join(root, "images", name)
                examples.append(Example(key=name, path=path, score=score, where=where))
    except UnicodeDecodeError as e:
        raise BadSource(f"{csv_path}: not UTF-8 text ({e})") from e
    return SourceList(splits={"train": examples}, problems=problems, listed_files=[csv_path])


def _integer_score(text: str, lo: int, hi: int) -> tuple[int | None, str | None]:
    text = text.strip()
    try:
        score = int(text)
    except ValueError:
        return None, f"score {text!r} is not an integer"
    if not lo <= score <= hi:
        return None, f"score {score} outside data.score_range [{lo}, {hi}]"
    return score, None


def ava_score(votes: np.ndarray, bins: tuple[float, ...] = ()) -> int:
    """The class of a photo from its vote counts for scores 1..10.

    Default: the mean vote rounded half up (4.5 -> 5), so classes are scores 1..10. With
    `bins` (increasing edges on the mean vote), the class is the number of edges <= the mean,
    e.g. `(5.0,)` gives AVA's usual low (0) / high (1) split.
    """
    mean = float(np.dot(np.arange(1, 11), votes) / np.sum(votes))
    if bins:
        return int(np.searchsorted(np.asarray(bins, np.float64), mean, side="right"))
    return int(math.floor(mean + 0.5))


def read_ava(root: str, bins: tuple[float, ...] = (), official_split: bool = True) -> SourceList:
    """Parses `root/AVA.txt`; puts the ids of `generic_test.jpgl` (if present) in 'test'."""
    txt = os.path.join(root, "AVA.txt")
    _require_file(txt, "AVA.txt")
    _require_dir(os.path.join(root, "images"))
    test_ids, listed = set(), [txt]
    candidates = [os.path.join(root, name) for name in AVA_TEST_LISTS]
    test_list = next((p for p in candidates if os.path.isfile(p)), None)
    if official_split and test_list:
        test_ids = _read_id_list(test_list)
        listed.append(test_list)
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    problems, first_line = [], {}
    with open(txt, encoding="utf-8") as f:
        for line_num, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"AVA.txt line {line_num}"
            item = fields[1] if len(fields) > 1 else line.strip()
            why = None
            if len(fields) != AVA_FIELDS:
                why = f"expected {AVA_FIELDS} fields (index, id, 10 vote counts, 2 tags, challenge)"
            elif not all(v.isdigit() for v in fields[:12]):
                why = "index, image id and vote counts must be non-negative integers"
            elif item in first_line:
                why = f"duplicate image id (first listed on line {first_line[item]})"
            else:
                votes = np.array([int(v) for v in fields[2:12]])
                if votes.sum() == 0:
                    why = "no votes"
            if why is not None:
                problems.append(Problem(item=item, where=where, reason=why))
                continue
            first_line[item] = line_num
            example = Example(
                key=item,
                path=os.path.join(root, "images", f"{item}.jpg"),
                score=ava_score(votes, tuple(bins)),
                where=where,
            )
            splits["test" if item in test_ids else "train"].append(example)
    if test_ids and not splits["test"]:
        raise BadSource(f"{test_list}: none of its {len(test_ids)} ids is in {txt}")
    if not splits["test"]:
        del splits["test"]
    return SourceList(splits=splits, problems=problems, listed_files=listed)


def _read_id_list(path: str) -> set[str]:
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line_num, line in enumerate(f, start=1):
            text = line.strip()
            if not text:
                continue
            if not text.isdigit():
                raise BadSource(f"{path} line {line_num}: {text!r} is not an AVA image id")
            ids.add(text)
    return ids


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise BadSource(f"{path}: missing; the data set needs {what} there")


def _require_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise BadSource(f"{path}: missing; the photos go in this folder")
