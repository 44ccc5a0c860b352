"""A folder run is tied to its data: a run stopped after round 1 resumes only on its own photos
(in any row order), and changed data stop the resume before any work, naming the change."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import read_records, tiny_config
from rsrl_jax.data import identity, synthetic
from rsrl_jax.engine import rsrl
from rsrl_jax.errors import ConfigError, DataError
from rsrl_jax.run import checkpoints

NUM_PHOTOS = 30
# Six classes, as the tiny synthetic runs of other tests have: the same network shapes, so a
# test session compiles them once.
SCORES = (2, 3, 3, 4, 4, 4, 5, 5, 6, 7)


def write_folder(root) -> list[tuple[str, int]]:
    """30 small JPEGs and their scores.csv; returns the (filename, score) rows."""
    os.makedirs(root / "images")
    photos = synthetic.generate(NUM_PHOTOS + 6, 64, seed=3)
    rows = []
    for i, image in enumerate(photos.images):
        name = f"IMG_{i:04d}.jpg"
        Image.fromarray(image).save(root / "images" / name, quality=90)
        rows.append((name, SCORES[i % len(SCORES)]))
    write_scores(root, rows[:NUM_PHOTOS])
    return rows  # the last 6 are on disk, not listed: photos a user may add


def write_scores(root, rows) -> None:
    (root / "scores.csv").write_text("filename,score\n" + "".join(f"{n},{s}\n" for n, s in rows))


def folder_config(root, **overrides):
    overrides = {k: repr(v) if isinstance(v, str) else v for k, v in overrides.items()}
    return tiny_config(
        {
            "data.name": "'folder'",
            "data.dir": repr(str(root)),
            "data.cache_dir": repr(str(root.parent / "cache")),
            "log.progress": False,
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(workdir, photo folder, rows) of a finished 2-round folder run.

    The photos are copied from `base/pristine` (data.dir is part of the config, so every
    test resumes on this same folder, put back as it was by `stopped_after_round_1`).
    """
    base = tmp_path_factory.mktemp("identity")
    rows = write_folder(base / "pristine")
    shutil.copytree(base / "pristine", base / "photos")
    rsrl.run(folder_config(base / "photos"), str(base / "reference"))
    return base / "reference", base / "photos", rows


def stopped_after_round_1(reference, tmp_path):
    """A copy of the reference run as a kill after round 1 leaves it, and its photo folder
    as the reference run had it."""
    workdir, photos, rows = reference
    shutil.copytree(workdir, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "fold_0" / "round_02")
    shutil.rmtree(photos)
    shutil.copytree(photos.parent / "pristine", photos)  # new inodes: decoded again
    return tmp_path / "run", photos, list(rows)


def split_keys(workdir):
    recorded = identity.recorded_identity(str(workdir))
    return [[list(recorded.keys[getattr(s, p)]) for p in identity.PARTS] for s in recorded.folds]


def round_params(workdir, round_):
    mngr = checkpoints.manager(str(workdir), 0, read_only=True)
    return checkpoints.restore_round(mngr, round_)[0]


def test_a_reordered_scores_csv_resumes_identically(reference, tmp_path):
    workdir, photos, rows = stopped_after_round_1(reference, tmp_path)
    listed = rows[:NUM_PHOTOS]
    write_scores(photos, listed[::-1][:10] + listed[:20])  # same photos, another order
    rsrl.run(folder_config(photos), str(workdir))
    ref = reference[0]
    assert (workdir / "metrics.jsonl").read_bytes() == (ref / "metrics.jsonl").read_bytes()
    assert split_keys(workdir) == split_keys(ref)
    mine, theirs = (jax.tree.leaves(round_params(w, 2)) for w in (workdir, ref))
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def rescore_four(rows) -> list[tuple[str, int, int]]:
    """Swaps the scores of two photos of one class with two of another (class counts stay)."""
    by_score = {}
    for i, (_, score) in enumerate(rows[:NUM_PHOTOS]):
        by_score.setdefault(score, []).append(i)
    a, b = [s for s, members in sorted(by_score.items()) if len(members) >= 2][:2]
    swaps = [(i, b) for i in by_score[a][:2]] + [(i, a) for i in by_score[b][:2]]
    changes = [(rows[i][0], rows[i][1], new) for i, new in swaps]
    for i, new in swaps:
        rows[i] = (rows[i][0], new)
    return sorted(changes)


def test_re_scored_photos_stop_the_resume_and_force_keeps_the_splits(reference, tmp_path, caplog):
    workdir, photos, rows = stopped_after_round_1(reference, tmp_path)
    changes = rescore_four(rows)
    write_scores(photos, rows[:NUM_PHOTOS])
    before = (workdir / "metrics.jsonl").read_bytes()
    prepared_before = sorted(os.listdir(photos.parent / "cache"))
    with pytest.raises(DataError) as e:
        rsrl.run(folder_config(photos), str(workdir))
    # Told from scores.csv alone, before any photo was decoded into a new prepared folder.
    assert sorted(os.listdir(photos.parent / "cache")) == prepared_before
    named = ", ".join(f"{n} {a}->{b}" for n, a, b in sorted(changes, key=lambda c: c[0]))
    assert f"the data differ from the run's: 4 re-scored ({named}); " in str(e.value)
    assert "use another --workdir for new data" in str(e.value)
    # Stopped before any work: nothing trained, nothing rewritten.
    assert checkpoints.saved_rounds(str(workdir), 0) == [1]
    assert (workdir / "metrics.jsonl").read_bytes() == before

    caplog.set_level("WARNING")
    rsrl.run(folder_config(photos, resume="force"), str(workdir))
    for name, a, b in changes:
        assert f"resume=force: {name!r} re-scored {a} -> {b}; its split stays" in caplog.text
    assert split_keys(workdir) == split_keys(reference[0])  # test photos stay test photos
    assert [(r["fold"], r["round"]) for r in read_records(workdir)] == [(0, 1), (0, 2)]
    recorded = identity.recorded_identity(str(workdir))
    assert dict(zip(recorded.keys, recorded.scores.tolist(), strict=True)) == dict(rows[:30])


def add_six(photos, rows):
    write_scores(photos, rows)  # the 6 photos on disk are now listed too
    return [n for n, _ in rows[NUM_PHOTOS:]], "6 added"


def remove_three(photos, rows):
    write_scores(photos, rows[3:NUM_PHOTOS])
    return [n for n, _ in rows[:3]], "3 removed"


def change_one(photos, rows):
    name = rows[7][0]
    Image.new("RGB", (64, 64), (200, 10, 10)).save(photos / "images" / name, quality=90)
    return [name], "1 changed in content"


@pytest.mark.parametrize("change", [add_six, remove_three, change_one])
def test_changed_photos_stop_the_resume_naming_them(reference, tmp_path, change):
    workdir, photos, rows = stopped_after_round_1(reference, tmp_path)
    names, kind = change(photos, rows)
    for resume in ("auto", "force"):
        if resume == "force" and kind.endswith("changed in content"):
            continue  # the same photos: force goes on (as with re-scores, above)
        with pytest.raises(DataError) as e:
            rsrl.run(folder_config(photos, resume=resume), str(workdir))
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        assert f"the data differ from the run's: {kind} ({shown}); " in str(e.value)
        if resume == "force":
            assert "--config.resume=force cannot resume it either" in str(e.value)
    assert checkpoints.saved_rounds(str(workdir), 0) == [1]
    assert json.loads((workdir / "classes.json").read_text()) == json.loads(
        (reference[0] / "classes.json").read_text()
    )


def test_a_refused_rerun_leaves_the_runs_files_as_they_were(reference, tmp_path):
    """A config change is refused before the data are read: skipped.jsonl (written by a
    skip-mode run) and metrics.jsonl stay the finished run's."""
    workdir, photos, _ = stopped_after_round_1(reference, tmp_path)
    (workdir / "skipped.jsonl").write_text('{"item": "x.jpg", "where": "line 9", "reason": "r"}\n')
    files = {name: (workdir / name).read_bytes() for name in ("skipped.jsonl", "metrics.jsonl")}
    with pytest.raises(ConfigError, match="data.on_bad_example"):
        rsrl.run(folder_config(photos, **{"data.on_bad_example": "skip"}), str(workdir))
    assert {name: (workdir / name).read_bytes() for name in files} == files
