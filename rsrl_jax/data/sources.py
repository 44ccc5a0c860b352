"""Reading the list of scored photos of a folder ("xiheAA format") or of AVA.

Only the lists are read here (fast, no photo is opened): each row becomes an `Example` or,
if it cannot be used, a `Problem` naming the file and line. What to do with problems
(stop, or skip with a record) is the builder's decision, not the parser's; a problem shared
by most rows is worded as one by `list_problems`.

Folder: `DIR/scores.csv` with header `filename,score` and the photos under `DIR/images/`
(filenames relative to it). AVA: `DIR/AVA.txt`, one photo a line (index, image id, the
number of votes for each score 1..10, two semantic tags, challenge id), photos
`DIR/images/<id>.jpg`, and, when present, the official test list `generic_test.jpgl`.

Over 300 lines, not yet split (issue 32, item 4): the seam is the folder's scores.csv and
AVA.txt readers vs the photo-path spelling checks they share (_Respeller, _files_under).
"""

import codecs
import csv
import decimal
import math
import os
import re
import unicodedata

import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.data import list_problems

# The parsed list's types live below both this parser and `list_problems`, which words them.
from rsrl_jax.data.listing import AVA_FIELDS as AVA_FIELDS
from rsrl_jax.data.listing import OTHER_DELIMITERS as OTHER_DELIMITERS
from rsrl_jax.data.listing import Example as Example
from rsrl_jax.data.listing import Problem as Problem
from rsrl_jax.data.listing import SourceList as SourceList

FOLDER_HEADER = ("filename", "score")
AVA_TEST_LISTS = ("generic_test.jpgl", os.path.join("aesthetics_image_lists", "generic_test.jpgl"))
# A score may be written as any decimal that is an exact integer: `5`, `5.0` (as pandas
# writes it), `+5`, `5e0`; int() alone would refuse `5.0` (and accept `5_0`).
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
LINE_BREAK = re.compile("\r\n|\r|\n")
# A line naming the columns again, as where two lists were joined into one.
REPEATED_HEADER = "a repeated header line (files joined?): delete it"


class BadSource(errors.DataError):
    """A data set whose lists cannot be read at all (missing file, wrong header)."""


def read_folder(
    root: str,
    score_range: tuple[int, int],
    columns: tuple[str, str] = FOLDER_HEADER,
) -> SourceList:
    """Parses `root/scores.csv`; rows with a bad score, name or a duplicate are problems.

    The header names the columns: `columns` (data.filename_column, data.score_column) are
    found by name in any order, other columns ignored. Each line is one row, parsed on its
    own: a quote left open names its line and never swallows the rows after it. A name not
    on disk as written is matched to a unique file spelled otherwise (`_Respeller`). A
    header line again further down (lists joined into one) is a bad row saying so.
    """
    csv_path = os.path.join(root, "scores.csv")
    _require_file(csv_path, f"scores.csv (header '{','.join(columns)}')")
    images = os.path.join(root, "images")
    lo, hi = score_range
    examples, problems = [], []
    seen, respeller = _Listed(), _Respeller(images, "scores.csv")
    lines = _text_lines(csv_path)
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
    _require_rows(csv_path, examples or problems, f"a row '{wanted}' per photo under the header")
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
    _require_file(txt, "AVA.txt")
    test_ids, listed = set(), [txt]
    candidates = [os.path.join(root, name) for name in AVA_TEST_LISTS]
    test_list = next((p for p in candidates if os.path.isfile(p)), None)
    if official_split and test_list:
        test_ids = _read_id_list(test_list)
        listed.append(test_list)
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    problems = []
    seen = _Listed()
    respeller = _Respeller(os.path.join(root, "images"), "AVA.txt")
    for line_num, line, undecodable in _text_lines(txt):
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
    _require_rows(txt, rows, "one line per photo (index, image id, 10 votes, 2 tags, challenge)")
    return listing


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


class _Respeller:
    """Finds the file a list means when its name is not on disk as written.

    Lists are often written elsewhere than the photos were saved: macOS stores names in
    Unicode NFD ('Cafe\u0301.jpg' for 'Caf\u00e9.jpg'), a case-insensitive disk lets 'IMG_1.JPG'
    stand for 'img_1.jpg' until the photos move to one that is not, names get stray spaces,
    and Windows writes '\\' between folders. A name not found as written is looked up under
    `images` by its loose spelling (`_loose`): a unique match is used (and logged once for
    the list, `log`), two or more are the row's problem naming them. images/ is walked once,
    and only when a name is not found.
    """

    SHOWN = 3  # examples in the log line

    def __init__(self, images: str, list_name: str):
        self.images, self.list_name = images, list_name
        self.index: dict[str, list[str]] | None = None
        self.respelled: list[tuple[int, str, str]] = []  # (line, as listed, as on disk)

    def find(self, name: str, path: str, line: int) -> tuple[str | None, str | None]:
        """(the file's path under images/ when spelled otherwise, None) or (None, why it is
        ambiguous); (None, None) when `path` is there as written or nothing matches."""
        if os.path.lexists(path) or os.path.lexists(os.path.normpath(path)):
            return None, None  # there, or a missing folder on the way ('sub/../a.jpg')
        if self.index is None:
            self.index = {}
            for relative in _files_under(self.images):
                self.index.setdefault(_loose(relative), []).append(relative)
        matches = sorted(self.index.get(_loose(name), ()))
        if len(matches) == 1:
            self.respelled.append((line, name, matches[0]))
            return matches[0], None
        if matches:
            spelled = " and ".join(repr(m) for m in matches[:4])
            every = "both" if len(matches) == 2 else f"all {len(matches)}"
            return None, (
                f"not in images/ as written, and {spelled} there {every} match it but for "
                "case, Unicode form or spaces: write the name exactly as on disk"
            )
        return None, None

    def log(self) -> None:
        if not self.respelled:
            return
        examples = ", ".join(
            f"line {line}: {listed!r} -> {found!r} ({_how_spelled(listed, found)})"
            for line, listed, found in self.respelled[: self.SHOWN]
        )
        n = len(self.respelled)
        logging.warning(
            "%d name%s in %s matched files spelled differently in %s (e.g. %s); used those",
            n,
            "s" if n > 1 else "",
            self.list_name,
            self.images,
            examples,
        )


def _loose(name: str) -> str:
    """A name as `_Respeller` compares it: '\\' read as '/', each part in Unicode NFC,
    casefolded and stripped of spaces, '.' and empty parts dropped."""
    parts = []
    for part in re.split(r"[\\/]+", name):
        part = unicodedata.normalize("NFC", unicodedata.normalize("NFC", part).casefold()).strip()
        if part == os.pardir and parts:
            parts.pop()
        elif part not in ("", os.curdir):
            parts.append(part)
    return "/".join(parts)


def _how_spelled(listed: str, found: str) -> str:
    """How a listed name and the file it matched differ, for the log."""
    ways = []
    if "\\" in listed:
        ways.append("'\\' for '/'")
    nfc = unicodedata.normalize("NFC", listed) != unicodedata.normalize("NFC", found)
    if listed != unicodedata.normalize("NFC", listed) or found != unicodedata.normalize(
        "NFC", found
    ):
        form = "NFD" if found != unicodedata.normalize("NFC", found) else "NFC"
        ways.append(f"Unicode {form} on disk")
    bare = [p.strip() for p in re.split(r"[\\/]+", unicodedata.normalize("NFC", listed))]
    on_disk = [p.strip() for p in re.split(r"[\\/]+", unicodedata.normalize("NFC", found))]
    if nfc and [p.casefold() for p in bare] == [p.casefold() for p in on_disk] and bare != on_disk:
        ways.append("case")
    if any(p != p.strip() for p in re.split(r"[\\/]+", listed + "/" + found)):
        ways.append("spaces")
    return ", ".join(ways) or "spelling"


def _files_under(folder: str, limit: int = 2_000_000):
    """Paths relative to `folder` of the files under it (not through linked folders, which
    may loop), at most `limit` of them."""
    seen = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            yield os.path.relpath(os.path.join(parent, name), folder)
            seen += 1
            if seen >= limit:
                return


def _read_id_list(path: str) -> set[str]:
    ids = set()
    for line_num, line, undecodable in _text_lines(path):
        if line is None:
            raise BadSource(f"{path} line {line_num}: {undecodable[1]}")
        text = line.strip()
        if not text:
            continue
        if not text.isdigit():
            raise BadSource(f"{path} line {line_num}: {text!r} is not an AVA image id")
        ids.add(text)
    return ids


# Byte order marks, longest first (UTF-32's little-endian mark starts as UTF-16's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _text_lines(path: str) -> list[tuple[int, str | None, tuple[str, str] | None]]:
    """(line number from 1, text, None) of each line of the list file `path`, or
    (number, None, (item, why)) for a line that is not UTF-8 text.

    Lists are read alike (scores.csv, AVA.txt, generic_test.jpgl): UTF-8, with or without a
    byte order mark; UTF-16 or UTF-32 with a mark, or UTF-16 without one (every other byte
    NUL), as spreadsheets and Notepad save "Unicode text", is read too, and logged. Any line
    ending (\n, \r\n, \r) ends a line. Another encoding (Latin-1, cp1252) is not guessed
    at: each line that is not UTF-8 is named with its byte.
    """
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(path)
    encoding = next((e for bom, e in BOMS if data.startswith(bom)), None)
    if encoding is None and len(data) >= 2 and data.count(0) * 3 >= len(data):
        odd, even = data[1::2].count(0), data[0::2].count(0)  # ASCII in UTF-16 without a BOM
        encoding = "utf-16-le" if odd > 2 * even else "utf-16-be" if even > 2 * odd else None
    if encoding in (None, "utf-8-sig"):
        data = data.removeprefix(codecs.BOM_UTF8)
        lines = []
        for num, raw in enumerate(re.split(b"\r\n|\r|\n", data), start=1):
            try:
                lines.append((num, raw.decode("utf-8"), None))
            except UnicodeDecodeError as e:
                item = raw.decode("utf-8", "replace").strip().lstrip("\ufeff")
                why = (
                    f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}; read "
                    f"as Latin-1 the line is {raw.decode('latin-1').strip()!r}): save {name} "
                    "as UTF-8 text"
                )
                lines.append((num, None, (item, why)))
        return _without_boms(_without_last_break(lines), path)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise BadSource(
            f"{path}: not {encoding.upper()} text though it starts as such (byte "
            f"{e.start}): save {name} as UTF-8 text"
        ) from e
    logging.info("%s: read as %s text", path, encoding.upper().removesuffix("-SIG"))
    text = text.removeprefix("\ufeff")
    lines = [(n, t, None) for n, t in enumerate(LINE_BREAK.split(text), 1)]
    return _without_boms(_without_last_break(lines), path)


def _without_boms(lines: list, path: str) -> list:
    """`lines` with a byte order mark at the start of any line removed, logged once.

    Lists joined into one (`cat a.csv b.csv`) keep each file's mark at the start of its
    first line; read as text it would become part of a photo's name or the header's.
    """
    marked = [n for n, t, _ in lines if t is not None and t.startswith("\ufeff")]
    if not marked:
        return lines
    shown = ", ".join(str(n) for n in marked[:5]) + (", ..." if len(marked) > 5 else "")
    logging.warning(
        "%s: %d line%s start%s with a byte order mark (files joined?), line%s %s: read without it",
        path,
        len(marked),
        "s" if len(marked) > 1 else "",
        "" if len(marked) > 1 else "s",
        "s" if len(marked) > 1 else "",
        shown,
    )
    return [(n, t.lstrip("\ufeff") if t is not None else t, u) for n, t, u in lines]


def _without_last_break(lines: list) -> list:
    """`lines` less the empty piece after the file's last line break."""
    return lines[:-1] if len(lines) > 1 and lines[-1][1] == "" else lines


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise BadSource(f"{path}: missing; the data set needs {what} there")


def _require_rows(path: str, rows, what: str) -> None:
    """Stops when the list at `path` has no row at all (a header alone, blank lines): said as
    such, not as a split left without photos further on."""
    if not rows:
        raise BadSource(f"{path} lists no photos: add {what}")


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
