"""Data messages that say what is wrong with the data as a whole, not only with its first row.

A score written as pandas writes it (`5.0`) is the integer it stands for. A list whose rows
are bad the same way (another delimiter, another score scale, photos elsewhere or under
another extension) is named as one problem of the file, in error and in skip mode, rather
than row by row with advice to skip what would then be everything. A data set that cannot
train a classifier is refused; classes too small for the protocol are warned about. A first
build prints nothing about downloading.
"""

import logging
import os

import numpy as np
import photo_factory as pf
import pytest

from conftest import tiny_config
from rsrl_jax import config as config_lib
from rsrl_jax.config import base_config, validate
from rsrl_jax.data import builders, datasets, sources, splits
from rsrl_jax.data.listing import BadSource
from rsrl_jax.errors import ConfigError, DataError


def make_folder(tmp_path, csv_text: str) -> str:
    os.makedirs(tmp_path / "images", exist_ok=True)
    (tmp_path / "scores.csv").write_text(csv_text)
    return str(tmp_path)


@pytest.mark.parametrize("text", ["5", "5.0", " 5 ", "+5", "5.00", "5e0", "50e-1", "0.5e1"])
def test_a_score_written_as_an_exact_decimal_is_that_integer(tmp_path, text):
    root = make_folder(tmp_path, f"filename,score\na.jpg,{text}\n")
    listing = sources.read_folder(root, (1, 10))
    assert [(e.key, e.score) for e in listing.splits["train"]] == [("a.jpg", 5)]
    assert type(listing.splits["train"][0].score) is int and listing.problems == []


@pytest.mark.parametrize("text", ["5.5", "4.999", "nan", "inf", "5_0", "0x5", "five", "", "1e"])
def test_a_score_that_is_not_an_exact_integer_is_a_bad_row_naming_it(tmp_path, text):
    root = make_folder(tmp_path, f"filename,score\na.jpg,{text}\nb.jpg,5\n")
    listing = sources.read_folder(root, (1, 10))
    (problem,) = listing.problems
    assert problem.where == "scores.csv line 2"
    assert problem.reason == f"score {text!r} is not an integer"


def test_a_huge_decimal_score_is_out_of_range_not_a_crash(tmp_path):
    root = make_folder(tmp_path, "filename,score\na.jpg,1e999999999\nb.jpg,-2.0\nc.jpg,3\n")
    listing = sources.read_folder(root, (1, 10))
    reasons = [p.reason for p in listing.problems]
    assert reasons == [
        "score 1e999999999 outside data.score_range [1, 10]",
        "score -2.0 outside data.score_range [1, 10]",
    ]


# --- a problem of the whole file, in both modes ---------------------------------------------


def folder_config(root, cache, on_bad="error"):
    c = base_config()
    c.data.name = "folder"
    c.data.dir = str(root)
    c.data.image_size = 16
    c.data.cache_dir = str(cache)
    c.data.on_bad_example = on_bad
    return c


def write_photos(root, n, ext=".jpg", folder="images"):
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / folder, exist_ok=True)
    for i in range(n):
        pf.save_rgb_jpeg(str(root / folder / f"p{i:03d}{ext}"), (10 * i % 255, 90, 60))
    return [f"p{i:03d}.jpg" for i in range(n)]


def write_scores(root, rows, header="filename,score"):
    (root / "scores.csv").write_text(header + "\n" + "\n".join(rows) + "\n")


def load_both_modes(tmp_path, root):
    """The error raised by datasets.load in error mode and in skip mode (both must raise)."""
    messages = []
    for mode in ("error", "skip"):
        config = folder_config(root, tmp_path / "cache", mode)
        with pytest.raises(BadSource) as raised:
            datasets.load(config, str(tmp_path / f"run_{mode}"))
        messages.append(str(raised.value))
    return messages


@pytest.mark.parametrize("delimiter, said", [(";", "';'"), ("\t", "a tab")])
def test_rows_written_with_another_delimiter_are_named_as_such(tmp_path, delimiter, said):
    names = write_photos(tmp_path, 120)
    write_scores(tmp_path, [f"{n}{delimiter}{1 + i % 5}" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert (
            f"every one of the 120 rows of scores.csv has 1 field: is the file delimited by "
            f"{said}? scores.csv must be comma-separated with header filename,score"
        ) in message
        assert "on_bad_example=skip" not in message


@pytest.mark.parametrize("delimiter, said", [(";", "';'"), ("\t", "a tab"), ("|", "'|'")])
def test_a_header_written_with_another_delimiter_is_named_as_such(tmp_path, delimiter, said):
    root = make_folder(tmp_path, f"filename{delimiter}score\na.jpg{delimiter}3\n")
    with pytest.raises(BadSource) as raised:
        sources.read_folder(root, (1, 10))
    assert "scores.csv line 1: header must be 'filename,score', got " in str(raised.value)
    assert (
        f"is the file delimited by {said}? scores.csv must be comma-separated with header "
        "filename,score"
    ) in str(raised.value)


def test_a_missing_header_is_named_as_such(tmp_path):
    root = make_folder(tmp_path, "a.jpg,3\nb.jpg,4\n")
    with pytest.raises(BadSource, match="line 1 looks like a photo's row"):
        sources.read_folder(root, (1, 10))


def test_scores_on_another_scale_are_named_as_such(tmp_path):
    names = write_photos(tmp_path, 120)
    scores = np.random.default_rng(0).integers(0, 101, 120)
    scores[:2] = (0, 100)
    write_scores(tmp_path, [f"{n},{s}" for n, s in zip(names, scores, strict=True)])
    bad = int(np.sum((scores < 1) | (scores > 10)))
    config = folder_config(tmp_path, tmp_path / "cache")
    with pytest.raises(BadSource) as raised:
        datasets.load(config)
    assert (
        f"{bad} of the 120 rows of scores.csv have a score outside data.score_range [1, 10] "
        "(scores found: 0..100): if those are the scores, set --config.data.score_range='(0,100)'"
    ) in str(raised.value)
    assert "on_bad_example=skip" not in str(raised.value)


def test_every_score_out_of_range_stops_in_both_modes(tmp_path, caplog):
    names = write_photos(tmp_path, 30)
    write_scores(tmp_path, [f"{n},{20 + 2 * i}" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert (
            "every one of the 30 rows of scores.csv has a score outside data.score_range "
            "[1, 10] (scores found: 20..78)"
        ) in message


def test_most_rows_bad_the_same_way_in_skip_mode_warns_and_goes_on(tmp_path, caplog):
    names = write_photos(tmp_path, 12)
    rows = [f"{n},{s}" for n, s in zip(names, [3, 4, 5, 3] + [50] * 8, strict=True)]
    write_scores(tmp_path, rows)
    config = folder_config(tmp_path, tmp_path / "cache", "skip")
    with caplog.at_level(logging.WARNING):
        data = datasets.load(config, str(tmp_path / "run"))
    assert len(data) == 4
    assert (
        "8 of the 12 rows of scores.csv have a score outside data.score_range [1, 10] "
        "(scores found: 3..50)"
    ) in caplog.text


def test_huge_scores_everywhere_are_named_without_spelling_out_their_digits(tmp_path):
    names = write_photos(tmp_path, 3)
    scores = ["1e999999999", "20.0", "5e1"]
    write_scores(tmp_path, [f"{n},{s}" for n, s in zip(names, scores, strict=True)])
    with pytest.raises(BadSource) as raised:
        datasets.load(folder_config(tmp_path, tmp_path / "cache"))
    assert "(scores found: 20..1E+999999999)" in str(raised.value)


def test_every_score_a_fraction_is_named_as_such(tmp_path):
    names = write_photos(tmp_path, 10)
    write_scores(tmp_path, [f"{n},0.{i + 1}5" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert (
            "every one of the 10 rows of scores.csv has a score that is not an integer "
            "(e.g. line 2: '0.15', line 3: '0.25', line 4: '0.35')"
        ) in message


def test_every_row_bad_in_several_ways_names_no_skip_advice(tmp_path):
    write_photos(tmp_path, 2)
    write_scores(tmp_path, ["p000.jpg,high", "p001.jpg,50", "../x.jpg,3"])
    for message in load_both_modes(tmp_path, tmp_path):
        assert "none of the 3 rows of scores.csv is usable" in message
        assert "on_bad_example=skip" not in message


def test_photos_in_another_folder_are_named_as_such(tmp_path):
    names = write_photos(tmp_path, 40, folder="photos")  # images/ is there, but empty
    write_scores(tmp_path, [f"{n},{1 + i % 3}" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert (
            f"every one of the 40 photos listed in scores.csv is missing from "
            f"{tmp_path / 'images'}/ (e.g. scores.csv line 2: 'p000.jpg')"
        ) in message
        assert f"'p000.jpg' is at {tmp_path / 'photos' / 'p000.jpg'}" in message


def test_photos_in_a_subfolder_of_images_are_named_as_such(tmp_path):
    names = write_photos(tmp_path, 10, folder="images/2019")
    write_scores(tmp_path, [f"{n},{1 + i % 3}" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert "every one of the 10 photos listed in scores.csv is missing" in message
        assert "filenames are relative to" in message and "'2019/p000.jpg'" in message


def test_photos_with_another_extension_are_named_as_such(tmp_path):
    names = write_photos(tmp_path, 10, ext=".jpeg")
    write_scores(tmp_path, [f"{n},{1 + i % 3}" for i, n in enumerate(names)])
    for message in load_both_modes(tmp_path, tmp_path):
        assert "every one of the 10 photos listed in scores.csv is missing" in message
        assert "another name: 'p000.jpg' listed, 'p000.jpeg' found" in message


def test_every_photo_undecodable_in_skip_mode_is_named_as_such(tmp_path):
    names = [f"p{i}.jpg" for i in range(6)]
    os.makedirs(tmp_path / "images")
    for n in names:
        pf.save_not_a_photo(str(tmp_path / "images" / n))
    write_scores(tmp_path, [f"{n},{1 + i % 3}" for i, n in enumerate(names)])
    config = folder_config(tmp_path, tmp_path / "cache", "skip")
    with pytest.raises(builders.BadExample) as raised:
        datasets.load(config, str(tmp_path / "run"))
    assert (
        "no usable photo: every one of the 6 photos is unusable: not a photo in a known format"
    ) in str(raised.value)


def test_ava_lines_with_another_delimiter_are_named_as_such(tmp_path):
    os.makedirs(tmp_path / "images")
    lines = [f"{i},{1000 + i},0,0,0,2,6,2,0,0,0,0,10,20,1396" for i in range(5)]
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    config = folder_config(tmp_path, tmp_path / "cache")
    config.data.name = "ava"
    with pytest.raises(BadSource) as raised:
        datasets.load(config)
    assert (
        "every one of the 5 rows of AVA.txt has 1 field: is the file delimited by ','? "
        "AVA.txt must be space-separated"
    ) in str(raised.value)


@pytest.mark.parametrize(
    ("name", "listing", "text"),
    [
        ("folder", "scores.csv", "filename,score\n"),
        ("folder", "scores.csv", "filename,score\n\n \n"),
        ("ava", "AVA.txt", "\n"),
    ],
)
def test_a_list_without_rows_says_it_lists_no_photos(tmp_path, name, listing, text):
    os.makedirs(tmp_path / "images")
    (tmp_path / listing).write_text(text)
    config = folder_config(tmp_path, tmp_path / "cache")
    config.data.name = name
    for mode in ("error", "skip"):
        config.data.on_bad_example = mode
        with pytest.raises(BadSource) as raised:
            datasets.load(config)
        assert str(raised.value).startswith(f"{tmp_path / listing} lists no photos: add ")
    assert not (tmp_path / "cache").exists()  # said before anything is prepared


def test_an_embeddings_file_without_rows_says_it_lists_no_photos(tmp_path):
    from rsrl_jax.data import embeddings

    path = str(tmp_path / "e.npz")
    np.savez(path, embeddings=np.zeros((0, 4), np.float32), scores=np.zeros(0, int))
    with pytest.raises(DataError, match=r"e\.npz lists no photos: 'embeddings' has 0 rows"):
        embeddings.read(path, (1, 10))


def test_ava_photos_in_a_subfolder_are_named_as_such(tmp_path):
    os.makedirs(tmp_path / "images" / "images")
    for i in range(4):
        pf.save_rgb_jpeg(str(tmp_path / "images" / "images" / f"{1000 + i}.jpg"))
    lines = [f"{i} {1000 + i} 0 0 0 2 6 2 0 0 0 0 10 20 1396" for i in range(4)]
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    config = folder_config(tmp_path, tmp_path / "cache")
    config.data.name = "ava"
    with pytest.raises(BadSource) as raised:
        datasets.load(config)
    assert "every one of the 4 photos listed in AVA.txt is missing" in str(raised.value)
    assert (
        f"'1000.jpg' is at {tmp_path / 'images' / 'images' / '1000.jpg'}: AVA photos must be "
        "images/<image id>.jpg; move the photos there"
    ) in str(raised.value)


def test_a_few_bad_rows_keep_their_own_message(tmp_path):
    names = write_photos(tmp_path, 6)
    write_scores(tmp_path, [f"{n},{1 + i % 3}" for i, n in enumerate(names)] + ["x.jpg,5.5"])
    config = folder_config(tmp_path, tmp_path / "cache")
    with pytest.raises(builders.BadExample) as raised:
        datasets.load(config)
    message = str(raised.value)
    assert "scores.csv line 8: 'x.jpg': score '5.5' is not an integer" in message
    assert "on_bad_example=skip" in message


# --- config fields the chosen data set ignores ---------------------------------------------------


def test_a_photo_folder_given_with_synthetic_data_is_refused():
    config = tiny_config({"data.dir": "'/my/photos'"})
    with pytest.raises(ConfigError) as raised:
        validate(config)
    message = str(raised.value)
    assert message.startswith("config.data.dir='/my/photos': ")
    assert "data.name='synthetic'" in message and "--config.data.name=folder" in message


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("folder", "num_examples", 500),
        ("ava", "label_noise", 0.3),
        ("ava", "score_range", (2, 9)),
        ("folder", "ava_bins", (5.0,)),
        ("folder", "ava_official_split", False),
        ("synthetic", "on_bad_example", "skip"),
        ("synthetic", "max_pixels", 1000),
        ("synthetic", "score_range", (0, 4)),
    ],
)
def test_a_field_the_data_set_ignores_is_warned_about(tmp_path, caplog, name, field, value):
    config = base_config()
    config.data.name = name
    config.data.dir = str(tmp_path) if name != "synthetic" else ""
    config.data[field] = value
    with caplog.at_level(logging.WARNING):
        validate(config)
    (line,) = [r.getMessage() for r in caplog.records if "is ignored" in r.getMessage()]
    assert line.startswith(f"config.data.{field}={value!r} is ignored: ")
    assert f"data.name={name!r}" in line


def test_the_configs_set_no_field_their_data_set_ignores():
    from configs import ava, demo, xiheaa

    for module in (ava, demo, xiheaa):
        assert config_lib.ignored_data_fields(module.get_config()) == []
    assert config_lib.ignored_data_fields(tiny_config()) == []


# --- classes the protocol cannot use -----------------------------------------------------------


def test_one_class_is_refused(tmp_path):
    names = write_photos(tmp_path, 8)
    write_scores(tmp_path, [f"{n},5" for n in names])
    config = folder_config(tmp_path, tmp_path / "cache")
    data = datasets.load(config)
    with pytest.raises(DataError, match=r"one class \(score 5, all 8 photos\): a classifier needs"):
        config_lib.check_classes(data, config)


def test_too_few_classes_for_the_majority_is_refused(tmp_path):
    names = write_photos(tmp_path, 8)
    write_scores(tmp_path, [f"{n},{4 + i % 2}" for i, n in enumerate(names)])
    config = folder_config(tmp_path, tmp_path / "cache")
    data = datasets.load(config)
    with pytest.raises(ValueError, match=r"config.rsrl.num_majority=3: must be below .* \(2"):
        config_lib.check_classes(data, config)
    config.rsrl.num_majority = 1
    config_lib.check_classes(data, config)


def test_classes_too_small_for_the_folds_are_warned_about():
    labels = np.array([0] * 20 + [1] * 20 + [2] * 3 + [3] * 1)
    protocol = base_config().protocol  # 5 folds, val_fraction 0.1
    fold_splits = splits.protocol_splits(labels, protocol, seed=0)
    warnings = splits.protocol_warnings(labels, (3, 4, 5, 9), protocol, fold_splits)
    assert "score 5 has 3 photos, fewer than protocol.folds=5: 2 folds test none" in warnings[0]
    assert "score 9 has 1 photo, fewer than protocol.folds=5: 4 folds test none" in warnings[1]
    fold_of_9 = next(f for f, s in enumerate(fold_splits) if 43 in s.test)
    assert f"fold {fold_of_9}: no training photo of score 9" in "\n".join(warnings)
    assert any("no validation photo of score" in w for w in warnings)


def test_an_empty_validation_part_is_warned_about():
    labels = np.repeat(np.arange(4), 10)
    protocol = base_config().protocol
    protocol.folds, protocol.val_fraction = 2, 0.1
    fold_splits = splits.protocol_splits(labels, protocol, seed=0)
    warnings = splits.protocol_warnings(labels, (1, 2, 3, 4), protocol, fold_splits)
    assert any("validation part is empty" in w and "protocol.val_fraction" in w for w in warnings)


def test_a_protocol_that_fits_the_data_has_no_warning():
    labels = np.repeat(np.arange(4), 50)
    protocol = base_config().protocol
    fold_splits = splits.protocol_splits(labels, protocol, seed=0)
    assert splits.protocol_warnings(labels, (1, 2, 3, 4), protocol, fold_splits) == []


# --- a first build says nothing about downloading -----------------------------------------------


def test_a_first_build_prints_nothing_about_downloading(tmp_path, capfd):
    config = tiny_config({"data.num_examples": 12, "data.cache_dir": repr(str(tmp_path))})
    datasets.load(config)
    out, err = capfd.readouterr()
    assert "ownload" not in out + err
    assert "Subsequent calls" not in out + err
