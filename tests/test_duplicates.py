"""The same photo under two names never straddles the splits; near-duplicates are reported.

A small folder holds distinct photos, a byte-identical copy (`x.jpg`, `x (1).jpg`), a PNG
saved again with other compression (same pixels, other bytes) and a resized, re-encoded
JPEG (a near-duplicate). Decoding only (`datasets.load`), no training.
"""

import io
import json
import logging
import os
import shutil
import types

import numpy as np
import pytest
from PIL import Image, ImageOps

from rsrl_jax import workdir_files
from rsrl_jax.config import base_config
from rsrl_jax.data import builders, datasets, duplicates, hash_pairs, photo_decode, splits
from rsrl_jax.run.recorder import Recorder

SIZE = 16


def photo(seed: int) -> Image.Image:
    """A smooth random photo (its pHash is far from another seed's)."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((160, 120), Image.Resampling.BICUBIC)


def write_folder(root, copy_score=3, distinct=12):
    """`distinct` photos p0..; x.jpg and its byte copy; a.png and its pixel copy; n.jpg
    and a half-size re-encoded copy. Returns the scores by name."""
    images = root / "images"
    os.makedirs(images)
    scores = {}
    for i in range(distinct):
        photo(100 + i).save(images / f"p{i}.jpg", quality=90)
        scores[f"p{i}.jpg"] = 3 + i % 3
    photo(1).save(images / "x.jpg", quality=90)
    shutil.copyfile(images / "x.jpg", images / "x (1).jpg")
    photo(2).save(images / "a.png", compress_level=9)
    photo(2).save(images / "a_again.png", compress_level=1)
    photo(3).save(images / "n.jpg", quality=95)
    buf = io.BytesIO()
    photo(3).resize((80, 60), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=70)
    (images / "n_small.jpg").write_bytes(buf.getvalue())
    scores.update({"x.jpg": 3, "x (1).jpg": copy_score, "a.png": 4, "a_again.png": 4})
    scores.update({"n.jpg": 5, "n_small.jpg": 5})
    rows = "".join(f"{name},{score}\n" for name, score in scores.items())
    (root / "scores.csv").write_text("filename,score\n" + rows)
    return scores


def config_for(tmp_path, on_bad="error", group_near=False):
    c = base_config()
    c.data.name = "folder"
    c.data.dir = str(tmp_path / "photos")
    c.data.image_size = SIZE
    c.data.cache_dir = str(tmp_path / "cache")
    c.data.on_bad_example = on_bad
    c.data.group_near_duplicates = group_near
    return c


def positions(data, *names):
    keys = list(data.keys)
    return [keys.index(n) for n in names]


def assert_groups_whole(fold_splits, groups):
    """Every group lies in one part of every split (or in none)."""
    for split in fold_splits:
        part = np.full(len(groups), -1)
        for p, members in enumerate((split.train, split.val, split.test)):
            part[members] = p
        for g in np.unique(groups):
            assert len(np.unique(part[groups == g])) == 1, (g, part[groups == g])


def test_copies_are_one_group_and_split_together(tmp_path, caplog):
    write_folder(tmp_path / "photos")
    data = datasets.load(config_for(tmp_path))
    found = data.duplicates
    x, x1, a, a2, n, n2 = positions(
        data, "x.jpg", "x (1).jpg", "a.png", "a_again.png", "n.jpg", "n_small.jpg"
    )
    assert data.fingerprints[x] == data.fingerprints[x1]
    assert data.fingerprints[a] != data.fingerprints[a2]  # other bytes, the same pixels
    assert found.groups[x1] == x and found.groups[a2] == a
    assert found.copy_counts() == (4, 2)
    assert found.groups[n2] == n2  # a near-duplicate is reported, not grouped by default
    assert [(i, j) for i, j, _ in found.near_pairs] == [(n, n2)]
    assert found.near_pairs[0][2] <= 2
    assert sorted(set(found.groups.tolist())) == sorted(set(range(len(data))) - {x1, a2})

    protocol = base_config().protocol
    for folds, seed in ((5, 0), (3, 1), (1, 2)):
        protocol.folds = folds
        fold_splits = splits.protocol_splits(data.labels, protocol, seed, None, data.groups)
        assert_groups_whole(fold_splits, found.groups)
        for split in fold_splits:
            everything = np.concatenate([split.train, split.val, split.test])
            assert sorted(everything) == list(range(len(data)))

    caplog.set_level(logging.INFO)
    duplicates.record(Recorder(str(tmp_path / "run"), is_writer=True), data, fold_splits)
    where = tmp_path / "run" / workdir_files.DUPLICATES
    assert (
        "4 photos are byte- or pixel-identical copies in 2 groups (kept together in every "
        f"split); listed in {where}"
    ) in caplog.text
    assert "1 near-duplicate pairs (perceptual hashes within 4 of 64 bits" in caplog.text
    report = json.loads(where.read_text())
    groups = {tuple(g["keys"]): [link["why"] for link in g["links"]] for g in report["groups"]}
    assert groups == {("x.jpg", "x (1).jpg"): ["bytes"], ("a.png", "a_again.png"): ["pixels"]}
    assert all(g["split_together"] for g in report["groups"])
    assert report["groups"][0]["parts"][0]["x.jpg"] == report["groups"][0]["parts"][0]["x (1).jpg"]
    (near,) = report["near_duplicates"]
    assert near["keys"] == ["n.jpg", "n_small.jpg"] and near["grouped"] is False
    assert "lie across the recorded splits" not in caplog.text


def apart_splits(data, test, train):
    """One fold that puts `test` in test and `train` in train, the rest in train: a run
    recorded before its copies (or near-duplicates) were grouped."""
    keys = list(data.keys)
    test = [keys.index(k) for k in test]
    rest = [i for i in range(len(keys)) if i not in test]
    return [splits.Split(train=np.array(rest[1:]), val=np.array(rest[:1]), test=np.array(test))]


@pytest.mark.parametrize("group_near", [False, True])
def test_recorded_splits_that_part_a_group_are_told(tmp_path, caplog, group_near):
    write_folder(tmp_path / "photos")
    data = datasets.load(config_for(tmp_path, group_near=group_near))
    fold_splits = apart_splits(data, ["x.jpg", "n.jpg"], ["x (1).jpg", "n_small.jpg"])
    caplog.set_level(logging.INFO)
    duplicates.record(Recorder(str(tmp_path / "run"), is_writer=True), data, fold_splits)
    groups = 2 if group_near else 1
    kind = "copies and near-duplicates" if group_near else "copies"
    assert (
        f"{groups} groups of {kind} lie across the recorded splits of this run (e.g. 'x.jpg' "
        "in test and 'x (1).jpg' in train of fold 0): its test figures may be inflated; a "
        "new --workdir splits them together"
    ) in caplog.text
    assert "kept together in every split" not in caplog.text
    assert "split together" not in caplog.text
    assert "(1 of them not together in this run's recorded splits)" in caplog.text
    if group_near:
        assert "grouped (data.group_near_duplicates=True), but 1 of them not together" in (
            caplog.text
        )
    report = json.loads((tmp_path / "run" / workdir_files.DUPLICATES).read_text())
    together = {tuple(g["keys"]): g["split_together"] for g in report["groups"]}
    assert together[("x.jpg", "x (1).jpg")] is False
    assert together[("a.png", "a_again.png")] is True
    (x_group,) = [g for g in report["groups"] if "x.jpg" in g["keys"]]
    assert x_group["parts"] == [{"x.jpg": "test", "x (1).jpg": "train"}]
    (near,) = report["near_duplicates"]
    assert near["grouped"] is group_near and near["split_together"] is False


def test_near_duplicates_are_grouped_when_asked(tmp_path):
    write_folder(tmp_path / "photos")
    data = datasets.load(config_for(tmp_path, group_near=True))
    n, n2 = positions(data, "n.jpg", "n_small.jpg")
    assert data.groups[n2] == n
    protocol = base_config().protocol
    assert_groups_whole(
        splits.protocol_splits(data.labels, protocol, 0, None, data.groups), data.groups
    )
    report = duplicates.Duplicates.report(data.duplicates, data.keys)
    near_group = [g for g in report["groups"] if "n.jpg" in g["keys"]]
    assert near_group[0]["links"][0]["why"] == "near"


def test_a_copy_with_another_score_is_a_bad_example(tmp_path, caplog):
    write_folder(tmp_path / "photos", copy_score=5)
    with pytest.raises(builders.BadExample) as raised:
        datasets.load(config_for(tmp_path))
    message = str(raised.value)
    assert message.startswith("scores.csv line 15: 'x (1).jpg': the same photo")
    assert "as 'x.jpg' (scores.csv line 14) scored 3, but scored 5 here" in message

    # A bad row after the copy: found before decoding, listed after it (list order).
    with open(tmp_path / "photos" / "scores.csv", "a") as f:
        f.write("late.jpg,11\n")
    caplog.set_level(logging.INFO)
    data = datasets.load(config_for(tmp_path, on_bad="skip"), str(tmp_path / "run"))
    assert "x (1).jpg" not in list(data.keys) and "x.jpg" in list(data.keys)
    with open(tmp_path / "run" / workdir_files.SKIPPED) as f:
        skipped = [json.loads(line) for line in f]
    assert [s["where"] for s in skipped] == ["scores.csv line 15", "scores.csv line 20"]
    assert skipped[0]["item"] == "x (1).jpg" and "same file bytes" in skipped[0]["reason"]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    assert [m.split(":")[0] for m in logged] == [
        "skipped scores.csv line 15",
        "skipped scores.csv line 20",
    ]


def test_data_without_copies_split_as_before():
    labels = np.random.default_rng(0).integers(0, 4, 200)
    protocol = base_config().protocol
    for folds in (5, 1):
        protocol.folds = folds
        before = splits.protocol_splits(labels, protocol, 3)
        after = splits.protocol_splits(labels, protocol, 3, None, np.arange(200))
        for b, a in zip(before, after, strict=True):
            for part in ("train", "val", "test"):
                np.testing.assert_array_equal(getattr(b, part), getattr(a, part))
    found = duplicates.find(np.array([f"{i:016x}" for i in range(200)]))
    assert found.trivial


def test_a_copy_of_an_official_test_photo_never_trains():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    official_test = np.array([False, False, False, False, False, False, True, True])
    groups = np.array([0, 1, 2, 3, 0, 5, 6, 1])  # 4 copies 0 (train); 7 (test) copies 1
    protocol = base_config().protocol
    protocol.val_fraction = 0.3
    (split,) = splits.protocol_splits(labels, protocol, 0, official_test, groups)
    assert list(split.test) == [6, 7]  # the official test set as listed
    assert 1 not in [*split.train, *split.val]  # a copy of test photo 7
    assert (0 in split.train) == (4 in split.train) and (0 in split.val) == (4 in split.val)
    assert list(splits.left_out(official_test, groups)) == [1]


def test_near_pairs_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64)
    for _ in range(60):  # near copies: a few bits flipped
        i, j = rng.integers(400, size=2)
        flips = rng.choice(64, rng.integers(0, 7), replace=False)
        hashes[j] = hashes[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    i, j, d = hash_pairs.near_pairs(hashes, 4)
    assert (d == np.bitwise_count(hashes[i] ^ hashes[j])).all() and (i < j).all()
    _, first = np.unique(hashes, return_index=True)
    values = hashes[np.sort(first)]
    brute = np.bitwise_count(values[:, None] ^ values[None, :])
    assert (d > 0).sum() == ((brute > 0) & (brute <= 4)).sum() // 2
    assert (d == 0).sum() == len(hashes) - len(values)  # equal hashes: one link each


def test_a_large_jpeg_and_a_lossless_copy_of_its_pixels_are_one_photo(tmp_path):
    """libjpeg decodes a JPEG much larger than the stored square at a reduced scale; the
    fingerprint and pHash are of the full-size pixels, as a PNG or BMP saved from them has."""
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: the copy is saved upright, as most tools save it
    photo(4).resize((640, 480)).save(tmp_path / "big.jpg", quality=90, exif=exif)
    with Image.open(tmp_path / "big.jpg") as im:
        upright = ImageOps.exif_transpose(im)
    upright.save(tmp_path / "big.png")
    upright.save(tmp_path / "big.bmp")
    stored, pixels, phash = zip(
        *(
            photo_decode.decode_photo_and_hashes(str(tmp_path / n), SIZE)
            for n in ("big.jpg", "big.png", "big.bmp")
        ),
        strict=True,
    )
    assert stored[0].shape == (SIZE, SIZE, 3)
    assert pixels[0] == pixels[1] == pixels[2] and phash[0] == phash[1] == phash[2]
    found = duplicates.find(["a", "b", "c"], pixels, phash)
    assert found.groups.tolist() == [0, 0, 0] and found.near_pairs == []
    # the stored square is still resized from libjpeg's reduced decode (as before)
    with Image.open(tmp_path / "big.jpg") as im:
        im.draft("RGB", (SIZE, SIZE))
        assert im.size == (80, 60)


def test_a_copy_of_an_official_test_photo_is_told_where_it_lies(tmp_path, caplog):
    """Left out of training by the run's splits: logged as left out; in training (splits
    recorded before grouping): told as a group across the splits, not as left out."""
    found = duplicates.find(["t", "u", "t", "v"])  # 2 copies test photo 0
    data = types.SimpleNamespace(
        duplicates=found,
        keys=["a.jpg", "b.jpg", "a (1).jpg", "c.jpg"],
        official_test=np.array([True, False, False, False]),
    )
    caplog.set_level(logging.INFO)
    grouped = splits.protocol_splits(
        np.array([0, 1, 0, 1]), base_config().protocol, 0, data.official_test, found.groups
    )
    duplicates.record(Recorder(str(tmp_path / "new"), is_writer=True), data, grouped)
    assert "1 copies of official test photos are listed for training: left out" in caplog.text
    assert "lie across" not in caplog.text
    caplog.clear()
    old = [splits.Split(train=np.array([1, 2]), val=np.array([3]), test=np.array([0]))]
    duplicates.record(Recorder(str(tmp_path / "old"), is_writer=True), data, old)
    assert "left out of training" not in caplog.text
    assert "(e.g. 'a.jpg' in test and 'a (1).jpg' in train of fold 0)" in caplog.text
    report = json.loads((tmp_path / "old" / workdir_files.DUPLICATES).read_text())
    assert report["left_out_of_training"] == []
