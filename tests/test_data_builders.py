"""TFDS builders: folder, AVA and synthetic photos decoded once into array_record files.

Each builder runs on a small generated folder holding the photos people really have (CMYK,
grayscale, 16-bit, palette with alpha, WebP, EXIF-rotated) and bad ones (truncated, empty,
missing, not a photo, bad list rows): error mode names the culprit, skip mode records all.
"""

import hashlib
import json
import os

import numpy as np
import photo_factory as pf
import pytest

from rsrl_jax import workdir_files
from rsrl_jax.config import base_config
from rsrl_jax.data import builders, datasets, photo_file, prepared, splits, synthetic

SIZE = 16
GOOD_SCORES = {name: 3 + i % 3 for i, name in enumerate(pf.GOOD)}  # scores 3, 4, 5


def config_for(name, root, cache, on_bad="error"):
    c = base_config()
    c.data.name = name
    c.data.dir = str(root)
    c.data.image_size = SIZE
    c.data.cache_dir = str(cache)
    c.data.on_bad_example = on_bad
    return c


def write_folder(root, bad_photos=True, bad_rows=True):
    names = list(pf.GOOD) + (list(pf.BAD) if bad_photos else [])
    pf.write_photos(os.path.join(root, "images"), names)
    rows = [f"{name},{GOOD_SCORES.get(name, 4)}" for name in names]
    if bad_photos:
        rows.append("missing.jpg,4")
    if bad_rows:
        rows += ["plain.jpg,5", "gray.png,high", "cmyk.jpg,12"]  # duplicate, text, range
    with open(os.path.join(root, "scores.csv"), "w") as f:
        f.write("filename,score\n" + "\n".join(rows) + "\n")
    return names


def read_skipped(workdir):
    with open(os.path.join(workdir, workdir_files.SKIPPED)) as f:
        return [json.loads(line) for line in f]


def check_good_photos(data, keys):
    """The accepted photos come back in list order, upright RGB, with their scores."""
    assert list(data.keys) == keys
    assert data.images.shape == (len(keys), SIZE, SIZE, 3) and data.images.dtype == np.uint8
    scores = np.asarray(data.class_scores)[data.labels]
    assert list(scores) == [GOOD_SCORES[k] for k in keys]
    assert data.class_scores == (3, 4, 5)  # the scores present, nothing hard-coded
    photo = dict(zip(keys, data.images, strict=True))
    assert pf.red_corner_is_top_left(photo["rotated.jpg"])
    np.testing.assert_allclose(photo["cmyk.jpg"][0, 0], (255, 0, 0), atol=3)
    np.testing.assert_allclose(photo["gray.png"][0, 0], (77, 77, 77), atol=2)
    np.testing.assert_allclose(photo["gray16.png"][0, 0], (156, 156, 156), atol=2)
    np.testing.assert_array_equal(photo["float.tif"], np.full((SIZE, SIZE, 3), 153))  # 0.6 * 255
    np.testing.assert_allclose(photo["palette_alpha.png"][-1, -1], (255, 255, 255), atol=2)


def test_folder_skip_mode_records_every_skipped_item(tmp_path):
    write_folder(tmp_path / "photos")
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache", on_bad="skip")
    data = datasets.load(config, str(tmp_path / "run"))
    check_good_photos(data, list(pf.GOOD))
    skipped = read_skipped(tmp_path / "run")
    got = {(s["item"], s["where"]) for s in skipped}
    n = len(pf.GOOD) + len(pf.BAD)
    want = {(name, f"scores.csv line {2 + len(pf.GOOD) + i}") for i, name in enumerate(pf.BAD)}
    want |= {
        ("missing.jpg", f"scores.csv line {n + 2}"),
        ("plain.jpg", f"scores.csv line {n + 3}"),
        ("gray.png", f"scores.csv line {n + 4}"),
        ("cmyk.jpg", f"scores.csv line {n + 5}"),
    }
    assert got == want and len(skipped) == len(want)
    reasons = {s["item"]: s["reason"] for s in skipped if s["item"] in pf.BAD}
    for name, (_, words) in pf.BAD.items():
        assert words in reasons[name] and name in reasons[name]

    # A second run reuses the prepared records (no decoding) and reproduces the skip list.
    builder, _ = prepared.make_builder(config)
    records = [p for p in os.listdir(builder.data_dir) if "array_record" in p]
    mtimes = [os.path.getmtime(os.path.join(builder.data_dir, p)) for p in records]
    again = datasets.load(config, str(tmp_path / "run2"))
    np.testing.assert_array_equal(again.images, data.images)
    assert read_skipped(tmp_path / "run2") == skipped
    assert mtimes == [os.path.getmtime(os.path.join(builder.data_dir, p)) for p in records]


def test_folder_error_mode_names_the_csv_line(tmp_path):
    write_folder(tmp_path / "photos")
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache")
    first_bad_row = len(pf.GOOD) + len(pf.BAD) + 3  # the duplicate plain.jpg
    with pytest.raises(builders.BadExample, match=f"scores.csv line {first_bad_row}: 'plain.jpg'"):
        datasets.load(config, str(tmp_path / "run"))


def test_folder_error_mode_names_the_bad_photo(tmp_path):
    write_folder(tmp_path / "photos", bad_rows=False)
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache")
    line = len(pf.GOOD) + 2
    with pytest.raises(
        builders.BadExample, match=f"scores.csv line {line}: 'truncated.jpg'.*trunc"
    ):
        datasets.load(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / workdir_files.SKIPPED)
    # Nothing half-built is left to be mistaken for a prepared data set.
    builder, _ = prepared.make_builder(config)
    assert not builder.is_prepared()


def test_folder_clean_error_mode_and_cache_key(tmp_path):
    write_folder(tmp_path / "photos", bad_photos=False, bad_rows=False)
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache")
    check_good_photos(datasets.load(config, str(tmp_path / "run")), list(pf.GOOD))
    key = prepared.make_builder(config)[0].data_dir
    config.data.stored_size = SIZE + 4  # another stored size: another prepared set
    assert prepared.make_builder(config)[0].data_dir != key
    config.data.stored_size = 0
    assert prepared.make_builder(config)[0].data_dir == key
    photo = tmp_path / "photos" / "images" / "plain.jpg"
    pf.save_rgb_jpeg(str(photo), value=(10, 20, 30))  # a photo changed: prepared again
    os.utime(photo, ns=(1, 1))
    assert prepared.make_builder(config)[0].data_dir != key
    data = datasets.load(config, str(tmp_path / "run2"))
    np.testing.assert_allclose(
        data.images[list(data.keys).index("plain.jpg")][0, 0], (10, 20, 30), atol=3
    )


def write_ava(root):
    """Six AVA photos (CMYK, grayscale PNG content, EXIF-rotated; missing, truncated, empty)
    and one bad AVA.txt line; the official test list names two of them."""
    os.makedirs(root / "images")
    votes = {
        "1001": [0, 0, 0, 2, 6, 2, 0, 0, 0, 0],  # mean 5 -> 5, EXIF-rotated JPEG
        "1002": [0, 0, 0, 0, 0, 2, 6, 2, 0, 0],  # 7, CMYK JPEG
        "1003": [0, 0, 0, 0, 2, 2, 0, 0, 0, 0],  # 5.5 -> 6, a grayscale PNG named .jpg
        "1004": [0, 0, 0, 2, 6, 2, 0, 0, 0, 0],  # missing photo
        "1005": [0, 0, 0, 0, 0, 2, 6, 2, 0, 0],  # truncated photo
        "1006": [0, 0, 0, 0, 0, 2, 6, 2, 0, 0],  # zero-byte photo
    }
    writers = {
        "1001": pf.save_exif_rotated_jpeg,
        "1002": pf.save_cmyk_jpeg,
        "1003": pf.save_gray_png,
        "1005": pf.save_truncated_jpeg,
        "1006": pf.save_empty,
    }
    for image_id, writer in writers.items():
        writer(str(root / "images" / f"{image_id}.jpg"))
    lines = [
        f"{i} {k} {' '.join(map(str, v))} 10 20 1396" for i, (k, v) in enumerate(votes.items())
    ]
    lines.insert(2, "9 1009 1 2 3")  # line 3: too few fields
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "generic_test.jpgl").write_text("1002\n1003\n")


def test_ava_skip_mode_and_official_split(tmp_path):
    write_ava(tmp_path / "ava")
    config = config_for("ava", tmp_path / "ava", tmp_path / "cache", on_bad="skip")
    data = datasets.load(config, str(tmp_path / "run"))
    assert list(data.keys) == ["1001", "1002", "1003"]
    assert list(np.asarray(data.class_scores)[data.labels]) == [5, 7, 6]
    assert list(data.official_test) == [False, True, True]
    assert pf.red_corner_is_top_left(data.images[0])
    np.testing.assert_allclose(data.images[1][0, 0], (255, 0, 0), atol=3)
    np.testing.assert_allclose(data.images[2][0, 0], (77, 77, 77), atol=2)
    skipped = {(s["item"], s["where"]) for s in read_skipped(tmp_path / "run")}
    assert skipped == {
        ("1009", "AVA.txt line 3"),
        ("1004", "AVA.txt line 5"),
        ("1005", "AVA.txt line 6"),
        ("1006", "AVA.txt line 7"),
    }
    # The protocol then tests on the official list: one split, test = generic_test.jpgl.
    (split,) = splits.protocol_splits(data.labels, config.protocol, 0, data.official_test)
    assert list(split.test) == [1, 2] and sorted([*split.train, *split.val]) == [0]


def test_ava_error_mode_names_the_line(tmp_path):
    write_ava(tmp_path / "ava")
    config = config_for("ava", tmp_path / "ava", tmp_path / "cache")
    with pytest.raises(builders.BadExample, match="AVA.txt line 3: '1009'"):
        datasets.load(config)
    (tmp_path / "ava" / "AVA.txt").write_text(
        "1 1002 0 0 0 2 6 2 0 0 0 0 10 20 1396\n2 1004 0 0 0 2 6 2 0 0 0 0 10 20 1396\n"
    )
    with pytest.raises(builders.BadExample, match="AVA.txt line 2: '1004'.*missing"):
        datasets.load(config)


def test_synthetic_builder_matches_the_generator(tmp_path):
    config = config_for("synthetic", "", tmp_path / "cache")
    config.data.num_examples = 12
    config.data.image_size = 32
    data = datasets.load(config, str(tmp_path / "run"))
    want = synthetic.generate(12, 32, config.seed, config.data.label_noise)
    np.testing.assert_array_equal(data.images, want.images)
    np.testing.assert_array_equal(data.masks, want.masks)
    np.testing.assert_array_equal(np.asarray(data.class_scores)[data.labels], want.scores)
    assert not os.path.exists(tmp_path / "run" / workdir_files.SKIPPED)


def test_photos_are_memory_mapped_from_one_file_written_once(tmp_path):
    config = config_for("synthetic", "", tmp_path / "cache")
    config.data.num_examples = 12
    config.data.image_size = 32
    data = datasets.load(config)
    builder, _ = prepared.make_builder(config)
    path = os.path.join(builder.data_dir, "train" + photo_file.PHOTOS_FILE_SUFFIX)
    assert isinstance(data.images, np.memmap) and data.images.filename == os.path.realpath(path)
    assert not [f for f in os.listdir(builder.data_dir) if f.endswith(".tmp")]
    (tmp_path / "killed").write_text("")  # stands for a write killed halfway (another pid)
    os.replace(tmp_path / "killed", path + ".12345.tmp")
    want = synthetic.generate(12, 32, config.seed, config.data.label_noise).images
    batch = np.array([7, 2, 2, 11])
    assert type(data.images[batch]) is np.ndarray  # a batch is an ordinary array in memory
    np.testing.assert_array_equal(data.images[batch], want[batch])
    written = os.stat(path).st_mtime_ns
    again = datasets.load(config)  # reuses the file
    assert os.stat(path).st_mtime_ns == written
    np.testing.assert_array_equal(again.images, want)
    for field in ("labels", "keys", "masks"):  # read back from the file beside the photos
        np.testing.assert_array_equal(getattr(again, field), getattr(data, field))
    assert again.class_scores == data.class_scores
    # A file of the wrong shape (another build's) is written again, not trusted.
    np.save(path, np.zeros((3, 32, 32, 3), np.uint8))
    np.testing.assert_array_equal(datasets.load(config).images, want)
    assert not [f for f in os.listdir(builder.data_dir) if f.endswith(".tmp")]
    with open(path, "wb") as f:  # nor is one that is not a .npy at all
        f.write(b"not a photo file")
    np.testing.assert_array_equal(datasets.load(config).images, want)


def test_photos_stay_in_memory_where_the_prepared_folder_cannot_be_written(tmp_path, monkeypatch):
    config = config_for("synthetic", "", tmp_path / "cache")
    config.data.num_examples = 12
    config.data.image_size = 32

    def read_only_filesystem(filename, *args, **kwargs):
        raise OSError(30, "Read-only file system", filename)

    monkeypatch.setattr(np.lib.format, "open_memmap", read_only_filesystem)
    data = datasets.load(config)
    assert not isinstance(data.images, np.memmap)
    want = synthetic.generate(12, 32, config.seed, config.data.label_noise).images
    np.testing.assert_array_equal(data.images, want)


def test_skip_mode_with_no_usable_photo_stops_and_says_why(tmp_path):
    pf.write_photos(str(tmp_path / "photos" / "images"), ["empty.jpg", "text.jpg"])
    (tmp_path / "photos" / "scores.csv").write_text("filename,score\nempty.jpg,3\ntext.jpg,4\n")
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache", on_bad="skip")
    with pytest.raises(builders.BadExample, match=r"no usable photo.*2 skipped.*'empty.jpg'"):
        datasets.load(config, str(tmp_path / "run"))


def test_one_photo_listed_under_two_spellings_is_one_photo(tmp_path):
    pf.write_photos(str(tmp_path / "photos" / "images"), ["plain.jpg", "gray.png"])
    os.symlink("plain.jpg", tmp_path / "photos" / "images" / "link.jpg")
    rows = ["plain.jpg,3", "gray.png,4", "./plain.jpg,5", "sub/../gray.png,4", "link.jpg,3"]
    (tmp_path / "photos" / "scores.csv").write_text("filename,score\n" + "\n".join(rows) + "\n")
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache")
    with pytest.raises(
        builders.BadExample,
        match=r"scores.csv line 4: './plain.jpg': the same photo as line 2 \('plain.jpg'\)",
    ):
        datasets.load(config, str(tmp_path / "run"))
    config.data.on_bad_example = "skip"
    data = datasets.load(config, str(tmp_path / "run"))
    assert list(data.keys) == ["plain.jpg", "gray.png"]  # each first listing kept
    skipped = [(s["where"], s["item"]) for s in read_skipped(tmp_path / "run")]
    assert skipped == [
        ("scores.csv line 4", "./plain.jpg"),
        ("scores.csv line 5", "sub/../gray.png"),
        ("scores.csv line 6", "link.jpg"),
    ]
    reasons = [s["reason"] for s in read_skipped(tmp_path / "run")]
    assert reasons == [
        "the same photo as line 2 ('plain.jpg')",
        "the same photo as line 3 ('gray.png')",
        "the same photo as line 2 ('plain.jpg'): both lead to one file on disk",
    ]


def test_each_photo_carries_a_content_fingerprint(tmp_path):
    """SHA-256 of the photo file's bytes (of the pixels for synthetic photos), first 16 hex
    digits, computed once at decoding and read back from the file beside the photos."""
    write_folder(tmp_path / "photos", bad_photos=False, bad_rows=False)
    config = config_for("folder", tmp_path / "photos", tmp_path / "cache")
    data = datasets.load(config)
    images = tmp_path / "photos" / "images"
    want = [hashlib.sha256((images / k).read_bytes()).hexdigest()[:16] for k in data.keys]
    assert list(data.fingerprints) == want
    assert list(datasets.load(config).fingerprints) == want  # reused: from the labels file
    config = config_for("synthetic", "", tmp_path / "cache")
    config.data.num_examples, config.data.image_size = 5, 32
    data, again = datasets.load(config), datasets.load(config)
    pixels = synthetic.generate(5, 32, config.seed, config.data.label_noise).images
    want = [hashlib.sha256(p.tobytes()).hexdigest()[:16] for p in pixels]
    assert list(data.fingerprints) == want and list(again.fingerprints) == want


def test_a_photo_rewritten_with_its_old_mtime_is_prepared_again(tmp_path):
    """`touch -r`, `cp -p`, `rsync -a`: same size and mtime, other content. The prepared
    data's key also holds the inode and ctime, which no user tool sets back."""
    root = tmp_path / "photos"
    pf.write_photos(str(root / "images"), ["plain.jpg", "gray.png"])
    (root / "scores.csv").write_text("filename,score\nplain.jpg,3\ngray.png,4\n")
    config = config_for("folder", root, tmp_path / "cache")
    before = prepared.make_builder(config)[0].data_dir
    photo = root / "images" / "plain.jpg"
    stat = photo.stat()
    content = bytearray(photo.read_bytes())
    content[-3] ^= 0xFF  # same size
    photo.write_bytes(bytes(content))
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert photo.stat().st_size == stat.st_size and photo.stat().st_mtime_ns == stat.st_mtime_ns
    assert prepared.make_builder(config)[0].data_dir != before
