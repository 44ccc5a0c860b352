"""Reading the list of scored photos of a folder ("xiheAA format") or of AVA.

Only the lists are read here (fast, no photo is opened): each row becomes an `Example` or,
if it cannot be used, a `Problem` naming the file and line. What to do with problems
(stop, or skip with a record) is the builder's decision, not the parser's; a problem shared
by most rows is worded as one by `list_problems`.

Folder: `DIR/scores.csv` with header `filename,score` and the photos under `DIR/images/`
(filenames relative to it). AVA: `DIR/AVA.txt`, one photo a line (index, image id, the
number of votes for each score 1..10, two semantic tags, challenge id), photos
`DIR/images/<id>.jpg`, and, when present, the official test list `generic_test.jpgl`.
"""

import csv
import dataclasses
import decimal
import math
import os
import re

import numpy as np

from rsrl_jax import errors

FOLDER_HEADER = ("filename", "score")
AVA_FIELDS = 15  # index, image id, 10 vote counts, 2 tags, challenge id
AVA_TEST_LISTS = ("generic_test.jpgl", os.path.join("aesthetics_image_lists", "generic_test.jpgl"))
# A score may be written as any decimal that is an exact integer: `5`, `5.0` (as pandas
# writes it), `+5`, `5e0`; int() alone would refuse `5.0` (and accept `5_0`).
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Delimiters a spreadsheet may have written instead of the comma (or the space, in AVA.txt).
OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'", ",": "','"}


class BadSource(errors.DataError):
    """A data set whose lists cannot be read at all (missing file, wrong header)."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One photo to decode: `key` names it, `where` is its list line.

    `key` identifies the photo in a run, the same whatever the list's spelling: for a folder
    the normalised path relative to `images/` (`./a.jpg`, `sub/../a.jpg` -> `a.jpg`), for
    AVA the image id.
    """

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
    # What went wrong, the same for items bad the same way ('fields:1', 'range:50',
    # 'integer:5.5', 'missing file', ...): a problem of the whole file is told as one.
    kind: str = ""

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
    examples, problems = [], []
    seen = _Listed()
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(h.strip().lower() for h in header) != FOLDER_HEADER:
                raise BadSource(_header_problem(csv_path, header, (lo, hi)))
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                where = f"scores.csv line {reader.line_num}"
                name = row[0].strip()
                key = os.path.normpath(name) if name else ""
                path = os.path.join(root, "images", name)
                why, kind = None, ""
                if len(row) != 2:
                    why = f"expected 2 fields 'filename,score', got {len(row)}"
                    kind = f"fields:{len(row)}"
                elif not name:
                    why, kind = "empty filename", "name"
                elif os.path.isabs(name) or key == os.pardir or key.startswith(os.pardir + os.sep):
                    why = (
                        "filename must be a path inside images/, written relative to it "
                        "('a.jpg' for images/a.jpg)"
                    )
                    kind = "outside"
                else:
                    score, why, kind = _integer_score(row[1], lo, hi)
                if why is None:
                    why = seen.repeat(name, key, path, reader.line_num, "filename")
                    kind = "duplicate" if why else ""
                if why is not None:
                    item = name or ",".join(row)
                    problems.append(Problem(item=item, where=where, reason=why, kind=kind))
                    continue
                examples.append(Example(key=key, path=path, score=score, where=where))
    except UnicodeDecodeError as e:
        raise BadSource(f"{csv_path}: not UTF-8 text ({e})") from e
    return SourceList(splits={"train": examples}, problems=problems, listed_files=[csv_path])


def _integer_score(text: str, lo: int, hi: int) -> tuple[int | None, str | None, str]:
    """(score, None, '') for a decimal that is an exact integer within [lo, hi] (`5`, ` 5 `,
    `+5`, `5.0`, `5.00`, `5e0`); else (None, why, kind): `5.5` is not an integer."""
    text = text.strip()
    value = decimal.Decimal(text) if DECIMAL.fullmatch(text) else None
    if value is None or value != value.to_integral_value():
        return None, f"score {text!r} is not an integer", f"integer:{text}"
    if not lo <= value <= hi:
        return None, f"score {text} outside data.score_range [{lo}, {hi}]", f"range:{text}"
    return int(value), None, ""


def _header_problem(csv_path: str, header: list[str] | None, score_range) -> str:
    """What is wrong with a first line that is not the header `filename,score`."""
    got = ",".join(header) if header else ""
    message = f"{csv_path} line 1: header must be 'filename,score', got {got or 'an empty file'!r}"
    text = ",".join(header or ())
    for delimiter, said in OTHER_DELIMITERS.items():
        parts = tuple(p.strip().lower() for p in text.split(delimiter))
        if delimiter != "," and parts == FOLDER_HEADER:
            return (
                f"{message}: is the file delimited by {said}? scores.csv must be "
                "comma-separated with header filename,score"
            )
    if header and len(header) == 2 and _integer_score(header[1], *score_range)[0] is not None:
        return f"{message}: line 1 looks like a photo's row; put the header line first"
    return message


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
    problems = []
    seen = _Listed()
    for line_num, line in _numbered_lines(txt):
        fields = line.split()
        where = f"AVA.txt line {line_num}"
        item = fields[1] if len(fields) > 1 else line.strip()
        why, kind = None, ""
        if len(fields) != AVA_FIELDS:
            why = f"expected {AVA_FIELDS} fields (index, id, 10 vote counts, 2 tags, challenge)"
            kind = f"fields:{len(fields)}"
        elif not all(v.isdigit() for v in fields[:12]):
            why = "index, image id and vote counts must be non-negative integers"
            kind = "integers"
        else:
            votes = np.array([int(v) for v in fields[2:12]])
            if votes.sum() == 0:
                why, kind = "no votes", "votes"
        path = os.path.join(root, "images", f"{item}.jpg")
        if why is None:
            why = seen.repeat(item, item, path, line_num, "image id")
            kind = "duplicate" if why else ""
        if why is not None:
            problems.append(Problem(item=item, where=where, reason=why, kind=kind))
            continue
        example = Example(
            key=item,
            path=path,
            score=ava_score(votes, tuple(bins)),
            where=where,
        )
        splits["test" if item in test_ids else "train"].append(example)
    if test_ids and not splits["test"]:
        raise BadSource(f"{test_list}: none of its {len(test_ids)} ids is in {txt}")
    if not splits["test"]:
        del splits["test"]
    return SourceList(splits=splits, problems=problems, listed_files=listed)


def photo_identity(path: str) -> tuple:
    """What a photo is on disk, whatever path leads to it.

    The (device, inode) of the file `path` resolves to (through symlinks; hard links share
    it, and so do spellings a case-insensitive file system takes as one). Where `path` leads
    to no file, those of its fully resolved path (`sub/../a.jpg` without a `sub/` is `a.jpg`),
    else that path itself (so that a missing photo spelled twice is still one photo).
    One `stat` a photo: cheap enough for AVA's 255,000.
    """
    resolved = None
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, a file used as a folder, a NUL in the name
        resolved = os.path.realpath(path)  # 'sub/../a.jpg' without sub/ resolves to a.jpg
        try:
            st = os.stat(resolved)
        except (OSError, ValueError):
            return ("path", resolved)
    if st.st_ino == 0:  # a file system without inode numbers
        return ("path", resolved or os.path.realpath(path))
    return ("file", st.st_dev, st.st_ino)


class _Listed:
    """The photos of a list seen so far, by identity on disk and by key, to find repeats."""

    def __init__(self):
        self.by_identity: dict[tuple, tuple[int, str]] = {}  # identity -> (line, item)
        self.by_key: dict[str, tuple[int, str]] = {}  # key -> (line, item)

    def repeat(self, item: str, key: str, path: str, line: int, what: str) -> str | None:
        """Why the photo `item` (line `line`, key `key`, at `path`) repeats an earlier one;
        None (and it is recorded) if it is new. `what` names the list's field in messages."""
        identity = photo_identity(path)
        if identity in self.by_identity:
            first_line, first_item = self.by_identity[identity]
            if first_item == item:
                return f"duplicate {what} (first listed on line {first_line})"
            why = f"the same photo as line {first_line} ({first_item!r})"
            if self.by_key.get(key, (None,))[0] != first_line:  # a symlink or hard link
                why += ": both lead to one file on disk"
            return why
        if key in self.by_key:  # e.g. 'sub/../a.jpg' where sub links elsewhere
            first_line, first_item = self.by_key[key]
            return (
                f"another file than line {first_line} ({first_item!r}) under the same name "
                f"{key!r} once resolved (a linked folder on the way); list each photo by a "
                "path without '..'"
            )
        self.by_identity[identity] = (line, item)
        self.by_key[key] = (line, item)
        return None


def _read_id_list(path: str) -> set[str]:
    ids = set()
    for line_num, line in _numbered_lines(path):
        text = line.strip()
        if not text.isdigit():
            raise BadSource(f"{path} line {line_num}: {text!r} is not an AVA image id")
        ids.add(text)
    return ids


def _numbered_lines(path: str):
    """(line number from 1, line) of each non-blank line of the UTF-8 text file `path`."""
    with open(path, encoding="utf-8") as f:
        for line_num, line in enumerate(f, start=1):
            if line.strip():
                yield line_num, line


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise BadSource(f"{path}: missing; the data set needs {what} there")


def _require_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise BadSource(f"{path}: missing; the photos go in this folder")
