"""Lists as people write them: broken CSV rows, columns by name, encodings, photos put beside
the list, and names spelled on disk otherwise than in the list.

Each broken row names its own line and never takes other rows with it; error mode names
every bad row in one message; a name matched to a file spelled otherwise is used and logged,
two candidates are one line naming both. Mostly the lists alone (no photo is decoded).
"""

import codecs
import logging
import os
import unicodedata

import photo_factory as pf
import pytest

from rsrl_jax.config import base_config, validate
from rsrl_jax.data import builders, datasets, list_problems, prepared, sources
from rsrl_jax.data.listing import BadSource
from rsrl_jax.errors import ConfigError


def folder(tmp_path, lines, names=(), header="filename,score", encoding="utf-8"):
    """DIR with scores.csv (`header` and `lines`) and placeholder files `names` in images/."""
    os.makedirs(tmp_path / "images", exist_ok=True)
    for name in names:
        path = tmp_path / "images" / name
        os.makedirs(path.parent, exist_ok=True)
        path.write_bytes(b"x")
    text = "\n".join([header, *lines]) + "\n"
    (tmp_path / "scores.csv").write_bytes(text.encode(encoding))
    return str(tmp_path)


def config_for(root, on_bad="error", **data):
    c = base_config()
    c.data.name = "folder"
    c.data.dir = str(root)
    c.data.image_size = 16
    c.data.cache_dir = str(os.path.join(root, "cache"))
    c.data.on_bad_example = on_bad
    for field, value in data.items():
        c.data[field] = value
    return c


def twenty_eight_rows():
    names = [f"p{i:02d}.jpg" for i in range(28)]
    rows = [f"{n},{1 + i % 5}" for i, n in enumerate(names)]
    rows[4] = '"p04.jpg,5'  # line 6: a quote that never closes
    return names, rows


# --- broken CSV rows -----------------------------------------------------------------------------


def test_an_unclosed_quote_names_its_line_and_takes_no_other_row(tmp_path):
    names, rows = twenty_eight_rows()
    root = folder(tmp_path, rows, names)
    with pytest.raises(builders.BadExample) as raised:
        prepared.make_builder(config_for(root))
    message = str(raised.value)
    assert message.startswith(
        "scores.csv line 6: '\"p04.jpg,5': a quote opened on this line is never closed"
    )
    assert "line 7" not in message and "on_bad_example=skip" in message
    # Skip mode: that row alone is left out, recorded; the 27 others are used.
    builder, _ = prepared.make_builder(config_for(root, "skip"))
    listing = builder.listing
    assert [p.where for p in listing.problems] == ["scores.csv line 6"]
    assert [e.key for e in listing.splits["train"]] == [n for n in names if n != "p04.jpg"]


@pytest.mark.parametrize(
    "row, why",
    [
        ('"a.jpg"x,5', "a quote in the middle of a field"),
        ('a.jpg,"5', "a quote opened on this line is never closed"),
        ("a\0.jpg,5", "holds a NUL byte"),
        ("a.jpg,5,", "expected 2 fields 'filename,score', got 3"),
        (" ,5", "empty filename"),
    ],
)
def test_each_broken_row_names_its_own_line(tmp_path, row, why):
    root = folder(tmp_path, ["b.jpg,3", row, "c.jpg,4"], ["a.jpg", "b.jpg", "c.jpg"])
    listing = sources.read_folder(root, (1, 10))
    (problem,) = listing.problems
    assert problem.where == "scores.csv line 3" and why in problem.reason
    assert [e.key for e in listing.splits["train"]] == ["b.jpg", "c.jpg"]


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_any_line_ending_is_read(tmp_path, newline):
    os.makedirs(tmp_path / "images")
    text = newline.join(["filename,score", "a.jpg,3", '"b,c.jpg",4', ""])
    (tmp_path / "scores.csv").write_bytes(text.encode())
    listing = sources.read_folder(str(tmp_path), (1, 10))
    assert [(e.key, e.where) for e in listing.splits["train"]] == [
        ("a.jpg", "scores.csv line 2"),
        ("b,c.jpg", "scores.csv line 3"),
    ]


def test_every_bad_row_is_named_in_one_message(tmp_path):
    names = [f"p{i:02d}.jpg" for i in range(60)]
    rows = [f"{n},{1 + i % 5}" for i, n in enumerate(names)]
    bad = [f"x{i}.jpg,{'high' if i % 2 else 11}" for i in range(25)]
    root = folder(tmp_path, rows + bad, names)
    with pytest.raises(builders.BadExample) as raised:
        prepared.make_builder(config_for(root))
    message = str(raised.value)
    assert message.startswith("25 bad rows in scores.csv: scores.csv line 62: 'x0.jpg': score 11")
    assert "scores.csv line 81: 'x19.jpg'" in message and "'x20.jpg'" not in message
    assert "(the first 20 shown); fix them, or set config.data.on_bad_example=skip" in message
    assert "\n" not in message


def test_bad_rows_and_missing_photos_are_named_together(tmp_path):
    root = folder(tmp_path, ["a.jpg,3", "gone.jpg,4", "b.jpg,x"], ["a.jpg", "b.jpg"])
    with pytest.raises(builders.BadExample) as raised:
        prepared.make_builder(config_for(root))
    message = str(raised.value)
    assert message.startswith("2 bad rows in scores.csv: scores.csv line 3: 'gone.jpg': ")
    assert "gone.jpg: missing file; scores.csv line 4: 'b.jpg': score 'x' is not an int" in message


def test_every_bad_photo_is_named_in_one_message(tmp_path):
    os.makedirs(tmp_path / "images")
    for i, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):  # distinct: copies would be grouped
        pf.save_rgb_jpeg(str(tmp_path / "images" / name), value=(90, 160, 60 + 40 * i))
    for name in ("x.jpg", "y.jpg"):
        pf.save_not_a_photo(str(tmp_path / "images" / name))
    rows = ["a.jpg,3", "x.jpg,4", "b.jpg,5", "y.jpg,3", "c.jpg,4"]
    (tmp_path / "scores.csv").write_text("filename,score\n" + "\n".join(rows) + "\n")
    with pytest.raises(builders.BadExample) as raised:
        datasets.load(config_for(tmp_path))
    message = str(raised.value)
    assert message.startswith("2 bad photos in scores.csv: scores.csv line 3: 'x.jpg': ")
    assert "scores.csv line 5: 'y.jpg': " in message


# --- columns by name ---------------------------------------------------------------------------


def test_columns_are_read_by_name_in_any_order(tmp_path):
    header = "id,Filename , photographer,SCORE"
    root = folder(tmp_path, ["1,a.jpg,Ann,3", '2,b.jpg,"Bo, Jr.",7'], ["a.jpg", "b.jpg"], header)
    listing = sources.read_folder(root, (1, 10))
    assert [(e.key, e.score) for e in listing.splits["train"]] == [("a.jpg", 3), ("b.jpg", 7)]
    assert not listing.problems


def test_named_columns_are_configurable(tmp_path):
    root = folder(tmp_path, ["4,a.jpg,x"], ["a.jpg"], header="rating,photo,note")
    config = config_for(root, filename_column="photo", score_column="rating")
    builder, _ = prepared.make_builder(config)
    assert [(e.key, e.score) for e in builder.listing.splits["train"]] == [("a.jpg", 4)]
    with pytest.raises(BadSource) as raised:
        prepared.make_builder(config_for(root))
    assert str(raised.value).endswith(
        "scores.csv line 1: header must be 'filename,score', got 'rating,photo,note': no column "
        "'filename' and 'score' (columns found: 'rating', 'photo', 'note'); the columns are "
        "found by name in any order, others ignored: rename it in the header, or set "
        "--config.data.filename_column and --config.data.score_column"
    )


def test_one_column_for_both_is_refused():
    config = config_for("/photos", filename_column="score")
    config.data.image_size = 224
    with pytest.raises(ConfigError, match="data.score_column='score': must be another column"):
        validate(config)


# --- encodings ---------------------------------------------------------------------------------


def ava_text(ids):
    return "".join(f"{i} {image_id} 0 0 0 2 6 2 0 0 0 0 10 20 1396\n" for i, image_id in ids)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_ava_lists_in_any_unicode_encoding_are_read(tmp_path, encoding):
    os.makedirs(tmp_path / "images")
    (tmp_path / "AVA.txt").write_bytes(ava_text([(1, 1001), (2, 1002)]).encode(encoding))
    (tmp_path / "generic_test.jpgl").write_bytes("1002\n".encode(encoding))
    listing = sources.read_ava(str(tmp_path))
    assert [e.key for e in listing.splits["train"]] == ["1001"]
    assert [e.key for e in listing.splits["test"]] == ["1002"] and not listing.problems


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_scores_csv_in_a_unicode_encoding_is_read(tmp_path, encoding):
    root = folder(tmp_path, ["café.jpg,3"], ["café.jpg"], encoding=encoding)
    assert [e.key for e in sources.read_folder(root, (1, 10)).splits["train"]] == ["café.jpg"]


def test_a_line_in_another_encoding_names_its_line_and_byte(tmp_path):
    root = folder(tmp_path, ["a.jpg,3", "café.jpg,4"], ["a.jpg"], encoding="latin-1")
    listing = sources.read_folder(root, (1, 10))
    (problem,) = listing.problems
    assert problem.message() == (
        "scores.csv line 3: 'caf\ufffd.jpg,4': not UTF-8 text (byte 0xe9 at column 4; read as "
        "Latin-1 the line is 'café.jpg,4'): save scores.csv as UTF-8 text"
    )
    os.makedirs(tmp_path / "ava" / "images")
    text = ava_text([(1, 1001)]) + "2 1002 0 0 0 2 6 2 0 0 0 0 10 20 é\n"
    (tmp_path / "ava" / "AVA.txt").write_bytes(text.encode("latin-1"))
    (problem,) = sources.read_ava(str(tmp_path / "ava")).problems
    assert problem.where == "AVA.txt line 2" and "byte 0xe9 at column 34" in problem.reason


# --- lists joined into one --------------------------------------------------------------------


def test_a_repeated_header_line_is_named_as_such(tmp_path):
    bom = "\ufeff"  # each joined file's mark, at the start of its first line
    lines = ["a.jpg,3", f"{bom}filename,score", "b.jpg,4", " Score , FILENAME ", f"{bom}c.jpg,5"]
    root = folder(tmp_path, lines, ["a.jpg", "b.jpg", "c.jpg"])
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [p.message() for p in listing.problems] == [
        f"scores.csv line {n}: {text!r}: a repeated header line (files joined?): delete it"
        for n, text in ((3, "filename,score"), (5, "Score , FILENAME"))
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_byte_order_mark_at_the_start_of_any_line_is_dropped_and_logged(
    tmp_path, caplog, encoding
):
    os.makedirs(tmp_path / "images")
    for image_id in (1001, 1002, 1003):
        (tmp_path / "images" / f"{image_id}.jpg").write_bytes(b"x")
    joined = ava_text([(1, 1001)]) + "\ufeff" + ava_text([(2, 1002), (3, 1003)])
    (tmp_path / "AVA.txt").write_bytes(("\ufeff" + joined).encode(encoding))
    (tmp_path / "generic_test.jpgl").write_bytes("1001\n\ufeff1003\n".encode(encoding))
    with caplog.at_level(logging.WARNING):
        listing = sources.read_ava(str(tmp_path))
    assert not listing.problems
    assert [e.key for e in listing.splits["train"]] == ["1002"]
    assert [e.key for e in listing.splits["test"]] == ["1001", "1003"]
    said = [r.getMessage() for r in caplog.records if "byte order mark" in r.getMessage()]
    assert said == [  # the test list is read first
        f"{tmp_path / 'generic_test.jpgl'}: 1 line starts with a byte order mark (files "
        "joined?), line 2: read without it",
        f"{tmp_path / 'AVA.txt'}: 1 line starts with a byte order mark (files joined?), line 2: "
        "read without it",
    ]


# --- photos beside the list --------------------------------------------------------------------


@pytest.mark.parametrize("data", ["folder", "ava"])
def test_photos_beside_the_list_without_an_images_folder_are_named_as_such(tmp_path, data):
    root, ids = tmp_path, [1001, 1002]
    if data == "folder":
        (root / "scores.csv").write_text("filename,score\n1001.jpg,3\n1002.jpg,4\n")
        read, list_name = (lambda: sources.read_folder(str(root), (1, 10))), "scores.csv"
    else:
        (root / "AVA.txt").write_text(ava_text(enumerate(ids)))
        read, list_name = (lambda: sources.read_ava(str(root))), "AVA.txt"
    images = root / "images"
    with pytest.raises(BadSource) as raised:  # no photo anywhere
        read()
    assert str(raised.value) == f"{images}: missing; the photos go in this folder"
    for i in ids:
        (root / f"{i}.jpg").write_bytes(b"x")
    with pytest.raises(BadSource) as raised:
        read()
    beside = (
        f"the photos are beside {list_name} in {root}, not in {images}/: move them into {images}/"
    )
    assert str(raised.value) == f"{images}: missing; {beside}"
    images.write_bytes(b"")  # a file where the folder should be
    with pytest.raises(BadSource) as raised:
        read()
    assert str(raised.value) == f"{images}: not a folder; {beside}"
    images.unlink()
    os.makedirs(root / "photos")
    for i in ids:
        os.rename(root / f"{i}.jpg", root / "photos" / f"{i}.jpg")
    with pytest.raises(BadSource) as raised:
        read()
    assert str(raised.value).startswith(
        f"{images}: missing; '1001.jpg' is at {root / 'photos' / '1001.jpg'}: "
    )


def test_photos_beside_scores_csv_are_named_as_such(tmp_path):
    names = [f"p{i}.jpg" for i in range(4)]
    root = folder(tmp_path, [f"{n},3" for n in names])
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    with pytest.raises(BadSource) as raised:
        prepared.make_builder(config_for(root))
    assert str(raised.value).endswith(
        f"the photos are beside scores.csv in {root}, not in {root}/images/: move them into "
        f"{root}/images/"
    )
    # One photo of several: its own problem says so.
    (tmp_path / "images").rmdir()
    root = folder(tmp_path, [f"{n},3" for n in names], names[1:])
    (problem,) = list_problems.missing_photos(sources.read_folder(root, (1, 10)), root)
    assert problem.reason == (
        f"{root}/images/p0.jpg: missing file (it is beside scores.csv in {root}, not in "
        f"images/: move it into {root}/images/)"
    )


def test_photos_elsewhere_are_named_before_the_bad_rows(tmp_path):
    names = [f"p{i}.jpg" for i in range(4)]
    root = folder(tmp_path, [f"{n},3" for n in names] + ["filename,score", "x.jpg,11"])
    os.makedirs(tmp_path / "photos")
    for n in names + ["x.jpg"]:
        (tmp_path / "photos" / n).write_bytes(b"x")
    with pytest.raises(BadSource) as raised:  # not 5 rows of 'missing file'
        prepared.make_builder(config_for(root))
    assert str(raised.value) == (
        f"every one of the 4 photos listed in scores.csv is missing from {root}/images/ (e.g. "
        f"scores.csv line 2: 'p0.jpg'); 'p0.jpg' is at {root}/photos/p0.jpg: filenames are "
        f"relative to {root}/images/; move the photos there (also 2 bad rows in scores.csv: the "
        "first: scores.csv line 6: 'filename,score': a repeated header line (files joined?): "
        "delete it)"
    )


# --- names spelled otherwise on disk -----------------------------------------------------------

NFD = unicodedata.normalize("NFD", "Café.jpg")


def test_names_spelled_otherwise_on_disk_are_matched_and_logged(tmp_path, caplog):
    on_disk = [NFD, "img_1.jpg", "b.jpg ", "sub/a.jpg", "plain.jpg"]
    listed = ["Café.jpg,3", "IMG_1.JPG,4", "b.jpg,5", "sub\\a.jpg,3", "plain.jpg,4"]
    root = folder(tmp_path, listed, on_disk)
    with caplog.at_level(logging.WARNING):
        listing = sources.read_folder(root, (1, 10))
    assert not listing.problems
    examples = listing.splits["train"]
    assert [e.key for e in examples] == [NFD, "img_1.jpg", "b.jpg ", "sub/a.jpg", "plain.jpg"]
    assert examples[0].path == os.path.join(root, "images", NFD)
    (line,) = [r.getMessage() for r in caplog.records if "spelled differently" in r.getMessage()]
    assert line.startswith("4 names in scores.csv matched files spelled differently in ")
    assert f"line 2: 'Café.jpg' -> {NFD!r} (Unicode NFD on disk)" in line
    assert "line 3: 'IMG_1.JPG' -> 'img_1.jpg' (case)" in line
    assert "line 4: 'b.jpg' -> 'b.jpg ' (spaces)" in line and line.endswith("; used those")


def test_two_spellings_of_one_photo_are_a_repeat(tmp_path):
    root = folder(tmp_path, ["img_1.jpg,3", "IMG_1.JPG,4"], ["img_1.jpg"])
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["img_1.jpg"]
    (problem,) = listing.problems
    assert (
        problem.message()
        == "scores.csv line 3: 'IMG_1.JPG': the same photo as line 2 ('img_1.jpg')"
    )


def test_a_name_matching_two_files_names_both(tmp_path):
    root = folder(tmp_path, ["A.JPG,3", "b.jpg,4"], ["A.jpg", "a.jpg", "b.jpg"])
    listing = sources.read_folder(root, (1, 10))
    (problem,) = listing.problems
    assert problem.message() == (
        "scores.csv line 2: 'A.JPG': not in images/ as written, and 'A.jpg' and 'a.jpg' there "
        "both match it but for case, Unicode form or spaces: write the name exactly as on disk"
    )


def test_ava_photos_spelled_otherwise_are_matched(tmp_path):
    os.makedirs(tmp_path / "images")
    (tmp_path / "images" / "1001.JPG").write_bytes(b"x")
    (tmp_path / "AVA.txt").write_bytes(codecs.BOM_UTF8 + ava_text([(1, 1001)]).encode())
    (example,) = sources.read_ava(str(tmp_path)).splits["train"]
    assert (example.key, example.path) == ("1001", str(tmp_path / "images" / "1001.JPG"))
