"""Parsing scores.csv and AVA.txt: usable rows become examples, bad rows problems with lines."""

import os

import numpy as np
import pytest

from rsrl_jax.data import sources
from rsrl_jax.data.listing import BadSource


def make_folder(tmp_path, csv_text: str) -> str:
    os.makedirs(tmp_path / "images", exist_ok=True)
    (tmp_path / "scores.csv").write_text(csv_text)
    return str(tmp_path)


def test_folder_rows_and_problems(tmp_path):
    root = make_folder(
        tmp_path,
        "filename,score\n"
        "a.jpg,3\n"  # line 2
        "sub/b.png, 9\n"
        "\n"  # blank line 4: ignored
        "c.jpg,seven\n"  # 5
        "d.jpg,11\n"  # 6: out of range
        "a.jpg,4\n"  # 7: duplicate
        "../e.jpg,5\n"  # 8: outside images/
        "f.jpg,5,extra\n"  # 9
        ",5\n"  # 10
        "g.jpg,4.5\n",  # 11
    )
    listing = sources.read_folder(root, (1, 10))
    (examples,) = listing.splits.values()
    assert [(e.key, e.score, e.where) for e in examples] == [
        ("a.jpg", 3, "scores.csv line 2"),
        ("sub/b.png", 9, "scores.csv line 3"),
    ]
    assert examples[1].path == os.path.join(root, "images", "sub/b.png")
    got = [(p.where, p.item) for p in listing.problems]
    assert got == [
        ("scores.csv line 5", "c.jpg"),
        ("scores.csv line 6", "d.jpg"),
        ("scores.csv line 7", "a.jpg"),
        ("scores.csv line 8", "../e.jpg"),
        ("scores.csv line 9", "f.jpg"),
        ("scores.csv line 10", ",5"),
        ("scores.csv line 11", "g.jpg"),
    ]
    reasons = [p.reason for p in listing.problems]
    assert "not an integer" in reasons[0] and "outside data.score_range [1, 10]" in reasons[1]
    assert "duplicate filename (first listed on line 2)" in reasons[2]
    assert "inside images/" in reasons[3] and "2 fields" in reasons[4]
    assert "empty filename" in reasons[5] and "not an integer" in reasons[6]


def test_folder_score_range_is_configurable(tmp_path):
    root = make_folder(tmp_path, "filename,score\na.jpg,0\nb.jpg,1\n")
    listing = sources.read_folder(root, (0, 0))
    assert [e.key for e in listing.splits["train"]] == ["a.jpg"]
    assert [p.item for p in listing.problems] == ["b.jpg"]


@pytest.mark.parametrize("header", ["file,score", "filename;score", "name,rating", ""])
def test_folder_wrong_header_stops(tmp_path, header):
    root = make_folder(tmp_path, f"{header}\na.jpg,3\n")
    with pytest.raises(BadSource, match="scores.csv line 1: header must be"):
        sources.read_folder(root, (1, 10))


def test_folder_header_tolerates_bom_case_and_spaces(tmp_path):
    root = make_folder(tmp_path, "\ufeffFilename, Score\na.jpg,3\n")
    assert len(sources.read_folder(root, (1, 10)).splits["train"]) == 1


def test_folder_missing_parts(tmp_path):
    with pytest.raises(BadSource, match="scores.csv"):
        sources.read_folder(str(tmp_path), (1, 10))
    (tmp_path / "scores.csv").write_text("filename,score\n")
    with pytest.raises(BadSource, match="images"):
        sources.read_folder(str(tmp_path), (1, 10))


def ava_line(index, image_id, votes, tags=(1, 2), challenge=1396):
    return " ".join(str(v) for v in (index, image_id, *votes, *tags, challenge))


def test_ava_score_is_rounded_mean_vote():
    assert sources.ava_score(np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])) == 6  # mean 5.5 -> 6
    assert sources.ava_score(np.array([0, 0, 0, 3, 1, 0, 0, 0, 0, 0])) == 4  # 4.25
    assert sources.ava_score(np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 1])) == 7  # 6.5 -> 7
    assert sources.ava_score(np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0]), (5.0,)) == 1
    assert sources.ava_score(np.array([0, 0, 0, 3, 1, 0, 0, 0, 0, 0]), (5.0,)) == 0
    assert sources.ava_score(np.array([0, 0, 0, 3, 1, 0, 0, 0, 0, 0]), (3.0, 4.25, 7.0)) == 2


def test_ava_lines(tmp_path):
    os.makedirs(tmp_path / "images")
    lines = [
        ava_line(1, 953619, [0, 1, 5, 17, 38, 36, 15, 6, 5, 1]),  # mean 5.64 -> 6
        ava_line(2, 953958, [10, 7, 15, 26, 26, 21, 10, 8, 1, 2]),  # mean 4.70 -> 5
        "",
        ava_line(3, 954184, [0] * 10),  # line 4: no votes
        "4 954113 0 1 2",  # line 5: too few fields
        ava_line(5, 953619, [1] * 10),  # line 6: duplicate id
        ava_line(6, 955000, [0, 0, 0, 0, 0, 0, 0, 0, 2, 2]),  # mean 9.5 -> 10
    ]
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    listing = sources.read_ava(str(tmp_path))
    assert list(listing.splits) == ["train"]
    assert [(e.key, e.score, e.where) for e in listing.splits["train"]] == [
        ("953619", 6, "AVA.txt line 1"),
        ("953958", 5, "AVA.txt line 2"),
        ("955000", 10, "AVA.txt line 7"),
    ]
    assert listing.splits["train"][0].path == os.path.join(tmp_path, "images", "953619.jpg")
    assert [(p.where, p.item) for p in listing.problems] == [
        ("AVA.txt line 4", "954184"),
        ("AVA.txt line 5", "954113"),
        ("AVA.txt line 6", "953619"),
    ]
    assert "no votes" in listing.problems[0].reason
    assert "15 fields" in listing.problems[1].reason
    assert "duplicate" in listing.problems[2].reason


def test_ava_official_test_list_is_honoured(tmp_path):
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "aesthetics_image_lists")
    ids = [101, 102, 103, 104]
    text = "\n".join(ava_line(i, image_id, [1] * 10) for i, image_id in enumerate(ids))
    (tmp_path / "AVA.txt").write_text(text)
    (tmp_path / "aesthetics_image_lists" / "generic_test.jpgl").write_text("104\n102\n999\n")
    listing = sources.read_ava(str(tmp_path))
    assert [e.key for e in listing.splits["train"]] == ["101", "103"]
    assert [e.key for e in listing.splits["test"]] == ["102", "104"]
    # Turned off, or absent: one list, for the k-fold protocol.
    off = sources.read_ava(str(tmp_path), official_split=False)
    assert list(off.splits) == ["train"] and len(off.splits["train"]) == 4
    (tmp_path / "aesthetics_image_lists" / "generic_test.jpgl").write_text("7\n")
    with pytest.raises(BadSource, match="none of its 1 ids"):
        sources.read_ava(str(tmp_path))
    (tmp_path / "aesthetics_image_lists" / "generic_test.jpgl").write_text("102\nabc\n")
    with pytest.raises(BadSource, match="generic_test.jpgl line 2"):
        sources.read_ava(str(tmp_path))


SPELLINGS = ["./a.jpg", "sub/../a.jpg", "sub//../a.jpg", "./sub/../a.jpg"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_folder_one_photo_spelled_twice_is_a_repeat(tmp_path, spelling):
    root = make_folder(tmp_path, f"filename,score\na.jpg,3\nb.jpg,4\n{spelling},5\n")
    os.makedirs(tmp_path / "images" / "sub")
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "images" / name).write_bytes(b"x")
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["a.jpg", "b.jpg"]  # the first is kept
    (problem,) = listing.problems
    assert problem.message() == (
        f"scores.csv line 4: {spelling!r}: the same photo as line 2 ('a.jpg')"
    )


def test_folder_keys_are_canonical_paths_under_images(tmp_path):
    root = make_folder(tmp_path, "filename,score\n./sub//c.jpg,3\nsub/x/../d.jpg,4\n..e.jpg,5\n")
    listing = sources.read_folder(root, (1, 10))
    assert not listing.problems  # '..e.jpg' is a name inside images/, not its parent
    assert [e.key for e in listing.splits["train"]] == ["sub/c.jpg", "sub/d.jpg", "..e.jpg"]


def test_folder_links_to_one_file_are_one_photo(tmp_path):
    root = make_folder(tmp_path, "filename,score\na.jpg,3\nlink.jpg,4\nhard.jpg,5\nalias/a.jpg,6\n")
    images = tmp_path / "images"
    (images / "a.jpg").write_bytes(b"x")
    os.symlink("a.jpg", images / "link.jpg")
    os.link(images / "a.jpg", images / "hard.jpg")
    os.symlink(".", images / "alias")
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["a.jpg"]
    assert [(p.where, p.item) for p in listing.problems] == [
        ("scores.csv line 3", "link.jpg"),
        ("scores.csv line 4", "hard.jpg"),
        ("scores.csv line 5", "alias/a.jpg"),
    ]
    for p in listing.problems:
        assert p.reason.startswith("the same photo as line 2 ('a.jpg')"), p.reason


def test_folder_missing_photo_spelled_twice_is_a_repeat(tmp_path):
    root = make_folder(tmp_path, "filename,score\ngone.jpg,3\n./gone.jpg,3\n")
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["gone.jpg"]
    assert [p.where for p in listing.problems] == ["scores.csv line 3"]


def test_ava_ids_of_one_file_are_one_photo(tmp_path):
    os.makedirs(tmp_path / "images")
    (tmp_path / "images" / "1001.jpg").write_bytes(b"x")
    os.symlink("1001.jpg", tmp_path / "images" / "1002.jpg")
    lines = [ava_line(1, 1001, [1] * 10), ava_line(2, 1002, [2] * 10), ava_line(3, 1001, [1] * 10)]
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    listing = sources.read_ava(str(tmp_path))
    assert [e.key for e in listing.splits["train"]] == ["1001"]
    assert [p.message() for p in listing.problems] == [
        "AVA.txt line 2: '1002': the same photo as line 1 ('1001'): both lead to one file on disk",
        "AVA.txt line 3: '1001': duplicate image id (first listed on line 1)",
    ]


def test_folder_two_files_under_one_canonical_key_are_refused(tmp_path):
    # 'sub/../a.jpg' with sub a link elsewhere is another file than 'a.jpg', yet the same key.
    root = make_folder(tmp_path, "filename,score\na.jpg,3\nsub/../a.jpg,4\n")
    os.makedirs(tmp_path / "elsewhere" / "deep")
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere" / "a.jpg").write_bytes(b"y")
    os.symlink(tmp_path / "elsewhere" / "deep", tmp_path / "images" / "sub")
    listing = sources.read_folder(root, (1, 10))
    assert [e.key for e in listing.splits["train"]] == ["a.jpg"]
    (problem,) = listing.problems
    assert problem.where == "scores.csv line 3"
    assert "another file than line 2 ('a.jpg')" in problem.reason
