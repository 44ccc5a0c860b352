"""A folder of JPEG photos with a scores.csv trains through the CLI with 2 stratified folds."""

import json
import os

import numpy as np
import photo_factory as pf
from PIL import Image

from conftest import run_cli
from rsrl_jax.data import synthetic

NUM_PHOTOS = 40
# Copies under other names, each kept in one part of every fold: a byte copy of a JPEG, and
# a PNG saved again with other compression (the same pixels, other bytes)
COPIES = {"IMG_0000 (1).jpg": "IMG_0000.jpg", "IMG_0001 copy.png": "IMG_0001.png"}


def write_photo_folder(root) -> dict[str, int]:
    """40 camera-like JPEGs (4:3, larger than stored), two of them copied (`COPIES`), and
    one truncated photo; returns scores."""
    os.makedirs(root / "images")
    photos = synthetic.generate(NUM_PHOTOS, 64, seed=3)
    scores = {}
    for i, (image, score) in enumerate(zip(photos.images, photos.scores, strict=True)):
        name = f"IMG_{i:04d}.jpg"
        Image.fromarray(image).resize((160, 120)).save(root / "images" / name, quality=90)
        scores[name] = int(score)
    scores["IMG_0001.png"] = scores.pop("IMG_0001.jpg")
    Image.fromarray(photos.images[1]).save(root / "images" / "IMG_0001.png", compress_level=9)
    Image.fromarray(photos.images[1]).save(root / "images" / "IMG_0001 copy.png", compress_level=1)
    (root / "images" / "IMG_0000 (1).jpg").write_bytes(
        (root / "images" / "IMG_0000.jpg").read_bytes()
    )
    scores.update({copy: scores[first] for copy, first in COPIES.items()})
    pf.save_truncated_jpeg(str(root / "images" / "broken.jpg"))
    rows = [f"{n},{s}" for n, s in scores.items()] + ["broken.jpg,4"]
    (root / "scores.csv").write_text("filename,score\n" + "\n".join(rows) + "\n")
    return scores


def test_folder_trains_with_k_folds(tmp_path):
    scores = write_photo_folder(tmp_path / "photos")
    workdir = tmp_path / "run"
    overrides = {
        "data.name": "folder",
        "data.dir": tmp_path / "photos",
        "data.cache_dir": tmp_path / "cache",
        "data.on_bad_example": "skip",
        "data.stored_size": 72,  # stored larger than seen: random crops in training
        "protocol.folds": 2,
        "protocol.val_fraction": 0.2,
        "rsrl.rounds": 2,
        "rsrl.thresholds": "(0.6,0.6,0.6)",
        "train.first_round_epochs": 1,
        "train.epochs_per_round": 1,
        "train.batch_size": 16,
        "train.eval_batch_size": 32,
        "model.width": 0.25,
        "model.pretrained": "",  # the demo's shipped backbone is for its own network size
        "model.fc_dim": 64,
    }
    result = run_cli(workdir, overrides)

    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["fold"], r["round"]) for r in records] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    # Real photos: no noiseless rater, so no record of what the selection removed.
    assert not any("selection" in r for r in records)
    assert "mislabelled" not in (workdir / "report" / "report.md").read_text()
    # Every photo is a test photo exactly once over the folds, with its class counts.
    classes = json.loads((workdir / "classes.json").read_text())
    want = np.bincount(list(scores.values()), minlength=11)
    assert classes["class_scores"] == [s for s in range(11) if want[s]]
    tested = sum(r["test"]["num_examples"] for r in records if r["round"] == 1)
    assert tested == NUM_PHOTOS + len(COPIES)
    # Each copy is in the part of its first in every fold (the run's recorded splits), the
    # log says so in one line, and duplicates.json lists the groups.
    with np.load(workdir / "data_identity.npz") as saved:
        keys = bytes(saved["keys"]).decode().split("\0")[:-1]
        parts = {name: saved[name] for name in saved.files if name.startswith("fold")}
    for fold in range(2):
        part_of = {}
        for part in ("train", "val", "test"):
            part_of.update({keys[i]: part for i in parts[f"fold{fold}_{part}"]})
        assert all(part_of[copy] == part_of[first] for copy, first in COPIES.items())
    assert (
        "4 photos are byte- or pixel-identical copies in 2 groups (kept together in every "
        f"split); listed in {workdir / 'duplicates.json'}"
    ) in result.stderr
    report = json.loads((workdir / "duplicates.json").read_text())
    assert {tuple(g["keys"]) for g in report["groups"]} == {
        (first, copy) for copy, first in COPIES.items()
    }
    # The skipped photo is on record, in the workdir and the log.
    (skipped,) = [json.loads(line) for line in (workdir / "skipped.jsonl").read_text().splitlines()]
    assert skipped["item"] == "broken.jpg" and "truncated" in skipped["reason"]
    assert "broken.jpg" in result.stderr
    # The summary gives each round's mean and std over the two folds.
    summary = json.loads((workdir / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    for r in summary["rounds"]:
        for part in ("val", "test"):
            f1 = [x[part]["macro_f1"] for x in records if x["round"] == r["round"]]
            assert r[part]["macro_f1"]["mean"] == np.mean(f1)
            assert r[part]["macro_f1"]["std"] == np.std(f1)
            assert set(r[part]["per_class"]) == {str(s) for s in classes["class_scores"]}
