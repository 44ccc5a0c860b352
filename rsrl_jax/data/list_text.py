"""A list file's lines as text (scores.csv, AVA.txt, generic_test.jpgl): the encodings
read, byte order marks, line breaks; and the list that is missing or holds no row.
"""

import codecs
import os
import re

from absl import logging

from rsrl_jax.data.listing import BadSource

LINE_BREAK = re.compile("\r\n|\r|\n")


# Byte order marks, longest first (UTF-32's little-endian mark starts as UTF-16's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def text_lines(path: str) -> list[tuple[int, str | None, tuple[str, str] | None]]:
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


def require_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise BadSource(f"{path}: missing; the data set needs {what} there")


def require_rows(path: str, rows, what: str) -> None:
    """Stops when the list at `path` has no row at all (a header alone, blank lines): said as
    such, not as a split left without photos further on."""
    if not rows:
        raise BadSource(f"{path} lists no photos: add {what}")
