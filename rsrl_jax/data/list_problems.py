"""One message for a problem of a whole photo list, instead of one per row.

A list whose rows are bad the same way (a wrong delimiter, scores on another scale, not
integers) or whose photos are mostly not where it says would be told row by row, with advice
to skip bad rows, and then skipped whole. These functions see the parsed list
(`listing.SourceList`) and word the problem once, with what to do; the builder decides
whether it stops the run (`data.prepared`).
"""

import decimal
import os

from rsrl_jax.data.listing import AVA_FIELDS, OTHER_DELIMITERS, Example, Problem, SourceList


def systematic_problem(listing: SourceList, score_range=(1, 10)) -> tuple[str, bool] | None:
    """(message, whether no row is usable) for a list whose rows are bad the same way, or
    all bad; else None.

    "The same way" means one kind of problem (Problem.kind) for more than half the rows
    (and at least 2): a wrong delimiter, scores on another scale or not integers. Told
    row by row, with advice to skip bad rows, such a file would be skipped whole. Also a
    list none of whose rows is usable in several ways gets one message counting them.
    """
    problems = listing.problems
    examples = [e for split in listing.splits.values() for e in split]
    rows = len(problems) + len(examples)
    if not problems:
        return None
    groups: dict[str, list[Problem]] = {}
    for p in problems:  # a repeat names its own two lines: never one problem of the file
        if p.kind != "duplicate":
            groups.setdefault(p.kind.split(":")[0], []).append(p)
    if not groups:
        return None
    kind, members = max(groups.items(), key=lambda group: len(group[1]))
    list_name = _list_name(members[0])
    if len(members) >= 2 and 2 * len(members) > rows:
        every = len(members) == rows
        share = f"every one of the {rows} rows" if every else f"{len(members)} of the {rows} rows"
        has = "has" if every else "have"
        what = _systematic_kind(kind, members, examples, list_name, tuple(score_range))
        return f"{share} of {list_name} {has} {what}", not examples
    if len(problems) == rows:
        counts = ", ".join(
            f"{len(m)} {_kind_name(k, m[0])}"
            for k, m in sorted(groups.items(), key=lambda g: -len(g[1]))
        )
        message = (
            f"none of the {rows} rows of {list_name} is usable ({counts}); the first: "
            f"{problems[0].message()}"
        )
        return message, True
    return None


def _list_name(item: Problem | Example) -> str:
    return item.where.rsplit(" line ", 1)[0]


def _kind_name(kind: str, first: Problem) -> str:
    names = {
        "fields": "with the wrong number of fields",
        "integer": "with a score that is not an integer",
        "range": "with a score outside data.score_range",
        "duplicate": "repeated",
        "header": "repeating the header line",
    }
    return names.get(kind, f"with '{first.reason}'")


def _systematic_kind(kind, members, examples, list_name, score_range) -> str:
    """The end of "every one of the N rows of LIST has ...": what, and what to do."""
    details = [m.kind.split(":", 1)[1] for m in members if ":" in m.kind]
    if kind == "fields":
        counts = sorted({int(d) for d in details})
        n = counts[0]
        what = f"{n} field{'s' if n != 1 else ''}" if len(counts) == 1 else "the wrong fields"
        ava = list_name == "AVA.txt"
        delimiter = _other_delimiter([m.item for m in members], ava)
        if ava:
            rule = f"AVA.txt must be space-separated with {AVA_FIELDS} fields a line"
        else:
            rule = "scores.csv must be comma-separated with header filename,score"
        if delimiter is not None:
            return f"{what}: is the file delimited by {delimiter}? {rule}"
        return f"{what}: {rule} (e.g. {members[0].message()})"
    if kind == "range":  # every score here is an exact integer, however written
        scores = [decimal.Decimal(d) for d in details] + [
            decimal.Decimal(e.score) for e in examples
        ]
        low, high = _integer_text(min(scores)), _integer_text(max(scores))
        lo, hi = score_range
        return (
            f"a score outside data.score_range [{lo}, {hi}] (scores found: {low}..{high}): if "
            f"those are the scores, set --config.data.score_range='({low},{high})'"
        )
    if kind == "integer":
        examples_text = ", ".join(
            f"line {m.where.rsplit(' ', 1)[1]}: {d!r}"
            for m, d in zip(members[:3], details[:3], strict=False)
        )
        return (
            f"a score that is not an integer (e.g. {examples_text}): scores must be integers "
            "within data.score_range; round or bin them first"
        )
    return f"the same problem: {members[0].reason} (e.g. {members[0].message()})"


def _integer_text(value: decimal.Decimal) -> str:
    """'50' for Decimal('5E+1'); a huge one as written (int() would build all its digits)."""
    return str(int(value)) if value.adjusted() < 18 else str(value)


def _other_delimiter(items: list[str], ava: bool) -> str | None:
    """How the rows seem delimited when not as the list's format says, or None."""
    for delimiter, said in OTHER_DELIMITERS.items():
        if delimiter == "," and not ava:
            continue
        if sum(delimiter in item for item in items) * 2 > len(items):
            return said
    return None


def missing_photos_problem(listing: SourceList, root: str) -> tuple[str, bool] | None:
    """(message, whether every photo is missing) when more than half the listed photos (at
    least 2) are not on disk; else None.

    Says where they seem to be: under another extension or case, in a subfolder of
    images/, or elsewhere under `root`. Checked before any photo is decoded.
    """
    examples = [e for split in listing.splits.values() for e in split]
    missing = [e for e in examples if not os.path.exists(e.path)]
    if len(missing) < 2 or 2 * len(missing) <= len(examples):
        return None
    if len(missing) == len(examples):
        share, verb = f"every one of the {len(examples)}", "is"
    else:
        share, verb = f"{len(missing)} of the {len(examples)}", "are"
    images = os.path.join(root, "images")
    list_name = _list_name(missing[0])
    message = (
        f"{share} photos listed in {list_name} {verb} missing from {images}{os.sep} "
        f"(e.g. {missing[0].where}: {missing[0].key!r})"
    )
    hint = _where_the_photos_are(missing[:20], root, list_name)
    return (f"{message}; {hint}" if hint else message), len(missing) == len(examples)


def where_the_listed_photos_are(listing: SourceList, root: str) -> str | None:
    """Where the photos of `listing` seem to be when not under images/ (beside the list,
    another folder of `root`), for a list whose images/ folder is missing; else None."""
    examples = [e for split in listing.splits.values() for e in split]
    missing = [e for e in examples if not os.path.exists(e.path)]
    return _where_the_photos_are(missing[:20], root, _list_name(missing[0])) if missing else None


def also_bad_rows(listing: SourceList, error_mode: bool) -> str:
    """' (also N bad rows in LIST: the first ...)' to end a message of the whole list that
    stops an error-mode run, so that the rows are not news after it is fixed; else ''."""
    problems = by_line(listing.problems)
    if not error_mode or not problems:
        return ""
    n = len(problems)
    rows = f"{n} bad row{'s' if n > 1 else ''} in {_list_name(problems[0])}"
    first = "the first: " if n > 1 else ""
    return f" (also {rows}: {first}{problems[0].message()})"


def missing_photos(listing: SourceList, root: str) -> list[Problem]:
    """A problem for each listed photo that is not on disk (one `lexists` a photo), worded
    as decoding words it, so that error mode names them with the bad rows."""
    problems = []
    for e in (e for split in listing.splits.values() for e in split):
        if not os.path.lexists(e.path):
            reason = f"{e.path}: missing file{beside_the_list(e, root)}"
            problems.append(Problem(e.key, e.where, reason, "photo:missing file"))
    return problems


def beside_the_list(example: Example, root: str) -> str:
    """' (it is beside scores.csv in ROOT ...)' when the missing photo of `example` is
    there instead of in images/; else ''."""
    if not os.path.isfile(os.path.join(root, os.path.basename(example.path))):
        return ""
    return (
        f" (it is beside {_list_name(example)} in {root}, not in images/: move it into "
        f"{os.path.dirname(example.path)}{os.sep})"
    )


def by_line(problems: list[Problem]) -> list[Problem]:
    """`problems` in list order: by file, then line (those without a line last)."""
    return sorted(problems, key=lambda p: line_order(p.where))


def line_order(where: str) -> tuple[str, int]:
    """The sort key of a problem's `where` ('scores.csv line 14' -> ('scores.csv', 14)):
    skipped items are listed and logged in the order of their lists' lines, whichever check
    (the list's or decoding's) found them."""
    name, _, number = where.rpartition(" line ")
    if not number.isdigit():
        return where, 1 << 62
    return name, int(number)


def _where_the_photos_are(missing: list[Example], root: str, list_name: str) -> str | None:
    """Where `missing` photos seem to be: renamed beside their path, or elsewhere in `root`."""
    images = os.path.join(root, "images")
    ava = list_name == "AVA.txt"
    naming = (
        "AVA photos must be images/<image id>.jpg"
        if ava
        else (f"names in {list_name} must match the files, extension and case included")
    )
    renamed = []
    for e in missing:
        folder, name = os.path.split(e.path)
        stem = os.path.splitext(name)[0].lower()
        try:
            near = [f for f in os.listdir(folder) if os.path.splitext(f)[0].lower() == stem]
        except OSError:
            near = []
        if near:
            renamed.append((os.path.basename(e.path), near[0]))
    if 2 * len(renamed) > len(missing):
        listed, found = renamed[0]
        return f"they are there under another name: {listed!r} listed, {found!r} found ({naming})"
    found = {}
    for path in _walk_files(root, limit=200_000):
        found.setdefault(os.path.basename(path).lower(), path)
    e = next((e for e in missing if os.path.basename(e.path).lower() in found), None)
    if e is None:
        return None
    path = found[os.path.basename(e.path).lower()]
    relative = os.path.relpath(path, images)
    if os.path.dirname(path) == root:
        return (
            f"the photos are beside {list_name} in {root}, not in {images}{os.sep}: move them "
            f"into {images}{os.sep}"
        )
    if ava:
        return f"{os.path.basename(e.path)!r} is at {path}: {naming}; move the photos there"
    where = f"{e.key!r} is at {path}: filenames are relative to {images}{os.sep}"
    if relative.startswith(os.pardir):
        return f"{where}; move the photos there"
    return f"{where}, so that one is {relative!r}"


def _walk_files(root: str, limit: int):
    """Paths of the files under `root`, at most `limit` of them (a bounded search)."""
    seen = 0
    for folder, _, files in os.walk(root):
        for name in files:
            yield os.path.join(folder, name)
            seen += 1
            if seen >= limit:
                return
