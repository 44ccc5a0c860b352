"""Reading the list of scored photos of a folder ("xiheAA format") or of AVA.

Only the lists are read here (fast, no photo is opened): each row becomes an `Example` or,
if it cannot be used, a `Problem` naming the file and line. What to do with problems
(stop, or skip with a record) is the builder's decision, not the parser's; a problem shared
by most rows is worded as one by `list_problems`.

Folder: `DIR/scores.csv` with header `filename,score` and the photos under `DIR/images/`
(filenames relative to it). AVA: `DIR/AVA.txt`, one photo a line (index, image id, the
number of votes for each score 1..10, two semantic tags, challenge id), photos
`DIR/images/<id>.jpg`, and, when present, the official test list `generic_test.jpgl`.

A list file's text is read by `list_text`; the photos it names are matched to the files on
disk by `photo_names`; a list that cannot be read at all is a `listing.BadSource`.
"""

import csv
import decimal
import math
import os
import re

import numpy as np

from rsrl_jax.data import list_problems, list_text, photo_names
from rsrl_jax.data.listing import (
    AVA_FIELDS,
    OTHER_DELIMITERS,
    BadSource,
    Example,
    Problem,
    SourceList,
)

FOLDER_HEADER = ("filename", "score")
AVA_TEST_LISTS = ("generic_test.jpgl", os.path.join("aesthetics_image_lists", "generic_test.jpgl"))
# A score may be written as any decimal that is an exact integer: `5`, `5.0` (as pandas
# writes it), `+5`, `5e0`; int() alone would refuse `5.0` (and accept `5_0`).
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# A line naming the columns again, as where two lists were joined into one.
REPEATED_HEADER = "a repeated header line (files joined?): delete it"


def read_folder(
    root: str,
    score_range: tuple[int, int],
    columns: tuple[str, str] = FOLDER_HEADER,
) -> SourceList:
    """Parses `root/scores.csv`; rows with a bad score, name or a duplicate are problems.

    The header names the columns: `columns` (data.filename_column, data.score_column) are
    found by name in any order, other columns ignored. Each line is one row, parsed on its
    own: a quote left open names its line and never swallows the rows after it. A name not
    on disk as written is matched to a unique file spelled otherwise (`photo_names.Respeller`). A
    header line again further down (lists joined into one) is a bad row saying so.
    """
    csv_path = os.path.join(root, "scores.csv")
    list_text.require_file(csv_path, f"scores.csv (header '{','.join(columns)}')")
    images = os.path.join(root, "images")
    lo, hi = score_range
    examples, problems = [], []
    seen, respeller = photo_names.ListedPhotos(), photo_names.Respeller(images, "scores.csv")
    lines = list_text.text_lines(csv_path)
    header_text = lines[0][1] if lines else ""
    if header_text is None:
        raise BadSource(f"{csv_path} line 1: {lines[0][2][1]}")
    header, why = _csv_fields(header_text) if header_text.strip() else (None, None)
    if why is not None:
        raise BadSource(f"{csv_path} line 1: the header: {why}")
    if header is None and any(t and t.strip() for _, t, _ in lines):
        header = []  # a blank first line: told as such
    name_at, score_at = _header_columns(csv_path, header, columns, (lo, hi))
    wanted = ",".join(header)
    wanted_names = [c.strip().lower() for c in columns]
    for line_num, text, undecodable in lines[1:]:
        where = f"scores.csv line {line_num}"
        if text is None:
            problems.append(
                Problem(item=undecodable[0], where=where, reason=undecodable[1], kind="encoding")
            )
            continue
        if not text.strip():
            continue  # a blank line
        row, why = _csv_fields(text)
        kind = "csv" if why else ""
        name = row[name_at].strip() if row and name_at < len(row) else ""
        key = os.path.normpath(name) if name else ""
        path = os.path.join(images, name)
        if why is None and set(wanted_names) <= {f.strip().lower() for f in row}:
            why, kind, name = REPEATED_HEADER, "header", text.strip()
        elif why is None and len(row) != len(header):
            why = f"expected {len(header)} fields {wanted!r}, got {len(row)}"
            kind = f"fields:{len(row)}"
        elif why is None and not name:
            why, kind = "empty filename", "name"
        elif why is None and (
            os.path.isabs(name) or key == os.pardir or key.startswith(os.pardir + os.sep)
        ):
            why = (
                "filename must be a path inside images/, written relative to it "
                "('a.jpg' for images/a.jpg)"
            )
            kind = "outside"
        elif why is None:
            score, why, kind = _integer_score(row[score_at], lo, hi)
        if why is None:
            found, why = respeller.find(name, path, line_num)
            kind = "ambiguous" if why else ""
            if found is not None:
                key, path = os.path.normpath(found), os.path.join(images, found)
        if why is None:
            why = seen.repeat(name, key, path, line_num, "filename")
            kind = "duplicate" if why else ""
        if why is not None:
            item = name or text.strip()
            problems.append(Problem(item=item, where=where, reason=why, kind=kind))
            continue
        examples.append(Example(key=key, path=path, score=score, where=where))
    respeller.log()
    listing = SourceList(splits={"train": examples}, problems=problems, listed_files=[csv_path])
    _require_photos_folder(listing, root)
    list_text.require_rows(
        csv_path, examples or problems, f"a row '{wanted}' per photo under the header"
    )
    return listing


def _csv_fields(text: str) -> tuple[list[str], str | None]:
    """The fields of one CSV line, or ([], why) when it cannot be read as one row."""
    if "\0" in text:
        return [], "holds a NUL byte (is the file UTF-16 text, or not text at all?)"
    try:
        return next(csv.reader([text], strict=True, skipinitialspace=True), []), None
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            why = (
                "a quote opened on this line is never closed (each row is one line; the "
                'rows after it are read on their own): close it ("a.jpg",5) or remove it'
            )
        else:
            why = (
                f"a quote in the middle of a field ({e}): quote the whole field, doubling "
                'any quote inside it ("a""b.jpg",5), or remove the quote'
            )
        return [], why


def _header_columns(path, header, columns, score_range) -> tuple[int, int]:
    """The positions of the filename and score columns in `header`, else BadSource."""
    names = [h.strip().lower() for h in header or ()]
    wanted = [c.strip().lower() for c in columns]
    if header is not None and all(names.count(w) == 1 for w in wanted):
        return names.index(wanted[0]), names.index(wanted[1])
    got = ",".join(header) if header else ""
    empty = "a blank line" if header == [] else "an empty file"
    message = f"{path} line 1: header must be '{','.join(columns)}', got {got or empty!r}"
    if not header:
        return _raise(message)
    for delimiter, said in OTHER_DELIMITERS.items():
        parts = [p.strip().lower() for p in got.split(delimiter)]
        if delimiter != "," and all(w in parts for w in wanted):
            return _raise(
                f"{message}: is the file delimited by {said}? scores.csv must be "
                f"comma-separated with header {','.join(columns)}"
            )
    if any(_integer_score(h, *score_range)[0] is not None for h in header) and len(header) > 1:
        return _raise(f"{message}: line 1 looks like a photo's row; put the header line first")
    twice = [w for w in wanted if names.count(w) > 1]
    if twice:
        return _raise(f"{message}: column {twice[0]!r} is named twice; rename one")
    absent = [(w, f) for w, f in zip(wanted, ("filename", "score"), strict=True) if w not in names]
    found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
    said = " and ".join(repr(w) for w, _ in absent)
    fields = " and ".join(f"--config.data.{f}_column" for _, f in absent)
    return _raise(
        f"{message}: no column {said} (columns found: {found}); the columns are found by "
        f"name in any order, others ignored: rename it in the header, or set {fields}"
    )


def _raise(message: str):
    raise BadSource(message)


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
    list_text.require_file(txt, "AVA.txt")
    test_ids, listed = set(), [txt]
    candidates = [os.path.join(root, name) for name in AVA_TEST_LISTS]
    test_list = next((p for p in candidates if os.path.isfile(p)), None)
    if official_split and test_list:
        test_ids = _read_id_list(test_list)
        listed.append(test_list)
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    problems = []
    seen = photo_names.ListedPhotos()
    respeller = photo_names.Respeller(os.path.join(root, "images"), "AVA.txt")
    for line_num, line, undecodable in list_text.text_lines(txt):
        if line is not None and not line.strip():
            continue
        if line is None:
            item, why = undecodable
            where = f"AVA.txt line {line_num}"
            problems.append(Problem(item=item, where=where, reason=why, kind="encoding"))
            continue
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
            found, why = respeller.find(f"{item}.jpg", path, line_num)
            kind = "ambiguous" if why else ""
            if found is not None:
                path = os.path.join(root, "images", found)
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
    respeller.log()
    if test_ids and not splits["test"] and (splits["train"] or problems):  # else: no rows
        raise BadSource(f"{test_list}: none of its {len(test_ids)} ids is in {txt}")
    if not splits["test"]:
        del splits["test"]
    listing = SourceList(splits=splits, problems=problems, listed_files=listed)
    _require_photos_folder(listing, root)
    rows = splits["train"] or splits.get("test") or problems
    list_text.require_rows(
        txt, rows, "one line per photo (index, image id, 10 votes, 2 tags, challenge)"
    )
    return listing


def _read_id_list(path: str) -> set[str]:
    ids = set()
    for line_num, line, undecodable in list_text.text_lines(path):
        if line is None:
            raise BadSource(f"{path} line {line_num}: {undecodable[1]}")
        text = line.strip()
        if not text:
            continue
        if not text.isdigit():
            raise BadSource(f"{path} line {line_num}: {text!r} is not an AVA image id")
        ids.add(text)
    return ids


def _require_photos_folder(listing: SourceList, root: str) -> None:
    """Stops when `root/images/` is not a folder, saying where the listed photos are if
    they are found elsewhere (beside the list, another folder): the list is read first so
    that the message can name them."""
    images = os.path.join(root, "images")
    if os.path.isdir(images):
        return
    if os.path.islink(images) and not os.path.exists(images):
        state = f"a link to {os.readlink(images)}, which is missing"
    else:
        state = "not a folder" if os.path.lexists(images) else "missing"
    hint = list_problems.where_the_listed_photos_are(listing, root)
    raise BadSource(f"{images}: {state}; {hint or 'the photos go in this folder'}")
